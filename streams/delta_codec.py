"""The wire format of the deltas topic: one message per team per micro-batch, usage as columns.

A delta is what `ingest` sends `ledger` for one team from one micro-batch: a part per
source partition, each with its rows (see streams/ledger.py for the row layouts), in the
order the ledger is to apply them. One message per team rather than per team and source
partition: each message costs a send, a receive and a table write whatever it carries.

Usage parts carry most events, and as JSON their floats cost more to print and parse than
everything else the ledger does with them (profiled: 12% of the worker). So usage rows
travel as columns of machine numbers, each column one `array` buffer, and the endpoint
names once per part with an index per row. GPU and run parts, and small usage parts (one
event per message, live traffic), travel as plain rows. `decode_delta` reads both, and the
one-part JSON deltas of earlier versions, which may still wait in the topic after an upgrade.

>>> rows = [[offset, "chat", 1.7e9 + offset, 10, 2, 0.5, 0, 42] for offset in range(MIN_PACKED_ROWS)]
>>> parts = decode_delta(encode_delta([("ai.token-usage:0", "usage", rows), ("ai.token-usage:3", "usage", rows[:1])]))
>>> [(source, rows[-1]) for source, rows in parts]
[('ai.token-usage:0', (15, 'chat', 1700000015.0, 10, 2, 0.5, 0, 42)), ('ai.token-usage:3', [0, 'chat', 1700000000.0, 10, 2, 0.5, 0, 42])]
"""

from __future__ import annotations

from array import array
from typing import Any, Sequence

import msgspec
import orjson

from streams.intake import USAGE

#: The array type code of each usage row position; None: the endpoint, sent as an index into names.
USAGE_COLUMN_TYPES = ("q", None, "d", "q", "q", "d", "b", "q")
ENDPOINT = 1
#: Fewer usage rows than this go as plain rows: packing costs about 10 us a delta, JSON about 1 us a row.
MIN_PACKED_ROWS = 16

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


Part = tuple[str, list[Sequence[Any]]]  # (source partition, rows)


def encode_delta(parts: Sequence[tuple[str, str, Sequence[Sequence[Any]]]]) -> bytes:
    """One message for one team: each (source, kind, rows) part, in the order given."""
    return _encoder.encode({"parts": [_encode_part(source, kind, rows) for source, kind, rows in parts]})


def _encode_part(source: str, kind: str, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    if kind == USAGE and len(rows) >= MIN_PACKED_ROWS:
        columns = list(zip(*rows))
        names = list(dict.fromkeys(columns[ENDPOINT]))
        position = {name: i for i, name in enumerate(names)}
        columns[ENDPOINT] = [position[name] for name in columns[ENDPOINT]]
        # Validation keeps every count within 2**53 (events.MAX_COUNT), so each fits its column.
        packed = [array(code or "I", column).tobytes() for code, column in zip(USAGE_COLUMN_TYPES, columns)]
        return {"source": source, "endpoints": names, "columns": packed}
    return {"source": source, "rows": rows}


def decode_delta(value: bytes) -> list[Part]:
    """The parts of a delta, in order; usage rows that travelled as columns come back as tuples."""
    if value[:1] == b"{":  # written as JSON by a worker from before this format (a msgpack map never starts so)
        delta = orjson.loads(value)
        return [(delta["source"], delta["rows"])]
    return [_decode_part(part) for part in _decoder.decode(value)["parts"]]


def _decode_part(part: dict[str, Any]) -> Part:
    if "rows" in part:
        return part["source"], part["rows"]
    columns: list[Any] = []
    for code, packed in zip(USAGE_COLUMN_TYPES, part["columns"]):
        column = array(code or "I")
        column.frombytes(packed)
        columns.append(column.tolist())
    names = part["endpoints"]
    columns[ENDPOINT] = [names[i] for i in columns[ENDPOINT]]
    return part["source"], list(zip(*columns))
