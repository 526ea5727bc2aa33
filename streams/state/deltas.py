"""The wire format of the deltas topic: what `ingest` sends `ledger` for one team.

A delta carries, per source partition, the rows that partition contributed to one
micro-batch (*parts*; row types in streams/input/rows.py), in the order the ledger is to take
them in. One message per team rather than per team and source partition: each message costs
a send, a receive and a table write whatever it carries.

Rows travel as msgpack arrays, as they are: msgpack writes floats as 8 bytes, not text. Usage
rows once travelled as columns (an `array` buffer per number column, the names once per part
with an index per row), from when deltas were JSON and printing floats cost 12% of the worker;
under msgpack the packing was the cost, 0.47 us a row to write against 0.05 for the rows as
they are, and with short names the packed part was the larger too. Long names repeated in every
row make plain rows up to 1.5x the packed size (docs/benchmarks-notes.md). Packed parts of an
earlier version still read.

Every message is bounded: `encode_deltas` splits a team's parts over as many messages as it
takes to keep each under `max_bytes` (aiokafka refuses anything over its request size, and
Faust then skips the batch). Rows keep their order across the split.

>>> rows = [[offset, "chat", 1.7e9 + offset, 10, 2, 0.5, 0, 42, "gpt-4o", "", "", "", "openai"]
...         for offset in range(16)]
>>> [message] = encode_deltas([("ai.token-usage:0", rows), ("ai.token-usage:3", rows[:1])])
>>> for source, decoded in decode_delta(message):
...     print(source, decoded[-1])
ai.token-usage:0 [15, 'chat', 1700000015.0, 10, 2, 0.5, 0, 42, 'gpt-4o', '', '', '', 'openai']
ai.token-usage:3 [0, 'chat', 1700000000.0, 10, 2, 0.5, 0, 42, 'gpt-4o', '', '', '', 'openai']
>>> [len(m) <= 20_000 for m in encode_deltas([("ai.token-usage:0", rows * 100)], max_bytes=20_000)]
[True, True, True, True, True]
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any

import msgspec

from streams.input.rows import ATTRIBUTION

#: An earlier version's packed usage columns: each position's array type code; None, a name (the endpoint,
#: model, user...) sent as an index into the part's names.
USAGE_COLUMN_TYPES = ("q", None, "d", "q", "q", "d", "b", "q", None, None, None, None, None)
#: Usage rows written before they carried attribution (a worker of an earlier version): read as saying nothing.
NO_ATTRIBUTION = ("",) * (len(USAGE_COLUMN_TYPES) - ATTRIBUTION)
#: What a delta may weigh by default: under aiokafka's 1 MiB request limit, with room for the headers.
DEFAULT_MAX_BYTES = 900_000

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()

Part = tuple[str, Sequence[Sequence[Any]]]  # (source partition, rows)


def encode_deltas(parts: Sequence[Part], max_bytes: int = DEFAULT_MAX_BYTES) -> list[bytes]:
    """The parts as few messages as fit under `max_bytes` each, in order."""
    encoded = _encoder.encode({"parts": [{"source": source, "rows": rows} for source, rows in parts]})
    if len(encoded) <= max_bytes:
        return [encoded]
    total = sum(len(rows) for _, rows in parts)
    if total <= 1:
        raise ValueError(f"one row encodes to {len(encoded)} bytes, over {max_bytes}: input limits must bound rows")
    pieces = min(total, len(encoded) // max_bytes + 2)  # rows are roughly the same size: a guess, then checked
    messages: list[bytes] = []
    rest = list(parts)
    for piece in range(pieces, 0, -1):
        first, rest = _split(rest, -(-sum(len(rows) for _, rows in rest) // piece))
        messages.extend(encode_deltas(first, max_bytes))
    return messages


def _split(parts: Sequence[Part], rows_first: int) -> tuple[list[Part], list[Part]]:
    """The first `rows_first` rows as parts, and the rest."""
    first: list[Part] = []
    second: list[Part] = []
    for source, rows in parts:
        take = min(len(rows), rows_first)
        if take:
            first.append((source, rows[:take]))
        if take < len(rows):
            second.append((source, rows[take:]))
        rows_first -= take
    return first, second


#: Fields of a GPU row before GPUs could serve an endpoint (streams/input/rows.py's `GpuRow` less `endpoint`).
GPU_ROW_BEFORE_SERVING = 8


def decode_delta(value: bytes) -> list[Part]:
    """The parts of a delta, in order; usage rows an earlier version packed as columns come back as tuples."""
    return [_decode_part(part) for part in _decoder.decode(value)["parts"]]


def _decode_part(part: dict[str, Any]) -> Part:
    if "rows" in part:
        rows = part["rows"]
        # An earlier version's usage row: 8 fields, a number third (a GPU row has 8 too, with a name there).
        if rows and len(rows[0]) == ATTRIBUTION and not isinstance(rows[0][2], str):
            rows = [(*row, *NO_ATTRIBUTION) for row in rows]
        elif rows and len(rows[0]) == GPU_ROW_BEFORE_SERVING and isinstance(rows[0][2], str):
            rows = [(*row, "") for row in rows]  # an earlier version's GPU row: a training run's, no endpoint
        return part["source"], rows
    names = part.get("names") or part["endpoints"]  # "endpoints": an earlier version's, endpoints only
    columns: list[Iterable[Any]] = []
    for code, packed in zip(USAGE_COLUMN_TYPES, part["columns"], strict=False):
        column = array(code or "I")
        column.frombytes(packed)
        # Read straight from the arrays into the rows' tuples: no list per column on the way.
        columns.append(column if code else map(names.__getitem__, column))
    if len(columns) == ATTRIBUTION:
        columns += [repeat("") for _ in NO_ATTRIBUTION]
    return part["source"], list(zip(*columns, strict=False))
