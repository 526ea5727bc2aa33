"""The wire format of the deltas topic: usage rows as packed binary columns.

A delta is what `ingest` sends `ledger` for one team and source partition (see
streams/ledger.py for the row layouts). Usage deltas carry most events, and as JSON their
floats cost more to print and parse than everything else the ledger does with them
(profiled: 12% of the worker). So usage rows travel as columns of machine numbers, each
column one `array` buffer, and the endpoint names once per delta with an index per row.
GPU and run deltas, and small usage deltas (one event per message, live traffic), travel as
plain rows. Both shapes are msgpack maps; `decode_delta` reads either, and
the JSON deltas of earlier versions, which may still wait in the topic after an upgrade.

>>> rows = [[offset, "chat", 1.7e9 + offset, 10, 2, 0.5, 0, 42] for offset in range(MIN_PACKED_ROWS)]
>>> source, decoded = decode_delta(encode_delta("ai.token-usage:0", "usage", rows))
>>> source, decoded[-1]
('ai.token-usage:0', (15, 'chat', 1700000015.0, 10, 2, 0.5, 0, 42))
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


def encode_delta(source: str, kind: str, rows: Sequence[Sequence[Any]]) -> bytes:
    if kind == USAGE and len(rows) >= MIN_PACKED_ROWS:
        columns = list(zip(*rows))
        names = list(dict.fromkeys(columns[ENDPOINT]))
        position = {name: i for i, name in enumerate(names)}
        columns[ENDPOINT] = [position[name] for name in columns[ENDPOINT]]
        # Validation keeps every count within 2**53 (events.MAX_COUNT), so each fits its column.
        packed = [array(code or "I", column).tobytes() for code, column in zip(USAGE_COLUMN_TYPES, columns)]
        return _encoder.encode({"source": source, "endpoints": names, "columns": packed})
    return _encoder.encode({"source": source, "rows": rows})


def decode_delta(value: bytes) -> tuple[str, list[Sequence[Any]]]:
    """(source partition, rows); usage rows come back as tuples."""
    if value[:1] == b"{":  # written as JSON by a worker from before this format (a msgpack map never starts so)
        delta = orjson.loads(value)
        return delta["source"], delta["rows"]
    delta = _decoder.decode(value)
    if "rows" in delta:
        return delta["source"], delta["rows"]
    columns: list[Any] = []
    for code, packed in zip(USAGE_COLUMN_TYPES, delta["columns"]):
        column = array(code or "I")
        column.frombytes(packed)
        columns.append(column.tolist())
    names = delta["endpoints"]
    columns[ENDPOINT] = [names[i] for i in columns[ENDPOINT]]
    return delta["source"], list(zip(*columns))
