"""The input kinds, where a row came from, and the order rows are applied in.

Every accepted event becomes a *row* (layouts in streams/state/ledger.py) whose first field is its
*position*: the source offset and the event's index inside that message, in one integer, so
that a message split over several deltas (a 50,000-event array) is still taken in exactly once.

Rows are applied in `release_key` order: event time, then kind (at equal times a run starts
before its samples count), then the row's own content. The live worker (after the watermark)
and `spendwatch replay` sort by the same key, so the same events give the same sequence
whatever order Kafka delivered them in, and equal keys only ever tie identical rows.

>>> position(574, 3) > position(573, 10_000), offset_of(position(574, 3))
(True, 574)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

USAGE, GPU, RUNS = "usage", "gpu", "runs"
KIND_ORDER = {RUNS: 0, GPU: 1, USAGE: 2}
RUN_STATUS_ORDER = {"started": 0, "finished": 1, "failed": 2, "cancelled": 3}

#: Bits of a position that hold the index inside the message (arrays of up to 16M events).
INDEX_BITS = 24


def position(offset: int, index: int) -> int:
    return offset << INDEX_BITS | index


def offset_of(position: int) -> int:
    return position >> INDEX_BITS


def _number(value: Any) -> Any:
    return -1 if value is None else value  # every number in a row is >= 0, so -1 sorts None first


def release_key(kind: str, row: Sequence[Any]) -> tuple[Any, ...]:
    """The total order rows are applied in (see the module docstring)."""
    if kind == USAGE:  # [position, endpoint, ts, prompt, completion, cost, unpriced, id_hash]
        return (row[2], 2, row[1], row[3], row[4], row[5], row[7], row[6])
    if kind == GPU:  # [position, run_id, gpu_id, ts, gpu_type, price, interval_s, utilization]
        return (row[3], 1, row[1], row[2], row[5], _number(row[6]), _number(row[7]), row[4] or "")
    # [position, run_id, status, ts, estimated_cost_usd, ceiling_usd, gpus, gpu_type, expected_hours]
    return (row[3], 0, row[1], RUN_STATUS_ORDER[row[2]], _number(row[4]), _number(row[5]), _number(row[6]),
            row[7] or "", _number(row[8]))


def event_time(kind: str, row: Sequence[Any]) -> float:
    return float(row[2] if kind == USAGE else row[3])
