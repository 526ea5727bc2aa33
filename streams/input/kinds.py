"""The input kinds, in one registry; where a row came from; and the order rows are applied in.

`KINDS` lists every kind of input: its topic setting, its parser, how an event becomes a row
(streams/input/rows.py) and where its rows go in the release order. Intake, replay, the
worker's topics and the CLI's topic list read it; the ledger applies each kind's rows
(streams/state/ledger.py, `APPLY`). docs/architecture.md lists what a new kind touches.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from streams.input.events import InputLimits, parse_gpu, parse_run, parse_usage
from streams.input.rows import RowContext, gpu_row, run_row, usage_row

USAGE, GPU, RUNS = "usage", "gpu", "runs"
#: At equal event times a run's lifecycle goes first, then GPU samples, then usage.
RUNS_ORDER, GPU_ORDER, USAGE_ORDER = 0, 1, 2
RUN_STATUS_ORDER = {"started": 0, "finished": 1, "failed": 2, "cancelled": 3}

#: Bits of a position that hold the index inside the message (arrays of up to 16M events).
INDEX_BITS = 24


def position(offset: int, index: int) -> int:
    return offset << INDEX_BITS | index


def offset_of(position: int) -> int:
    return position >> INDEX_BITS


def _number(value: Any) -> Any:
    return -1 if value is None else value  # every number in a row is >= 0, so -1 sorts None first


def usage_key(row: Sequence[Any]) -> tuple[Any, ...]:
    return (row[2], USAGE_ORDER, row[1], row[3], row[4], row[5], row[7], row[6])


def gpu_key(row: Sequence[Any]) -> tuple[Any, ...]:
    return (row[3], GPU_ORDER, row[1], row[2], row[5], _number(row[6]), _number(row[7]), row[4] or "")


def run_key(row: Sequence[Any]) -> tuple[Any, ...]:
    return (row[3], RUNS_ORDER, row[1], RUN_STATUS_ORDER[row[2]], _number(row[4]), _number(row[5]), _number(row[6]),
            row[7] or "", _number(row[8]))


@dataclass(frozen=True)
class InputKind:
    """One kind of input event, from its topic to its place in the release order."""

    name: str  # in rows, deltas and metrics
    order: int  # its place among kinds at equal event times: the release key's second field
    topic_setting: str  # the Settings field naming its topic
    # (decoded JSON object, now, future tolerance in seconds, limits) -> its event; raises RejectedEvent
    parse: Callable[[dict[str, Any], float, float, InputLimits], Any]
    to_row: Callable[[int, Any, RowContext], list[Any]]  # (position, event, context) -> row
    release_key: Callable[[Sequence[Any]], tuple[Any, ...]]  # (event time, kind order, content...)

    def topic(self, settings: Any) -> str:
        return str(getattr(settings, self.topic_setting))


#: Every input kind.
KINDS: dict[str, InputKind] = {kind.name: kind for kind in (
    InputKind(USAGE, USAGE_ORDER, "usage_topic", parse_usage, usage_row, usage_key),
    InputKind(GPU, GPU_ORDER, "gpu_topic", parse_gpu, gpu_row, gpu_key),
    InputKind(RUNS, RUNS_ORDER, "runs_topic", parse_run, run_row, run_key),
)}
KIND_OF_ORDER = {kind.order: name for name, kind in KINDS.items()}


def release_key(kind: str, row: Sequence[Any]) -> tuple[Any, ...]:
    """The total order rows are applied in (see the module docstring)."""
    return KINDS[kind].release_key(row)



def kind_of_topic(settings: Any) -> dict[str, str]:
    """Input topic -> kind, from the settings."""
    return {kind.topic(settings): name for name, kind in KINDS.items()}
