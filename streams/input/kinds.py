"""The input kinds, in one registry; where a row came from; and the order rows are applied in.

`KINDS` lists every kind of input: its topic setting, its parser, how an event becomes a row
(streams/input/rows.py) and where its rows go in the release order. Intake, replay, the
worker's topics and the CLI's topic list read it; the ledger applies each kind's rows
(streams/state/ledger.py, `APPLY`). docs/architecture.md lists what a new kind touches.

Every accepted event becomes a *row* (named tuples in streams/input/rows.py) whose first field is its
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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from streams.input.events import InputLimits, parse_gpu, parse_outcome, parse_run, parse_usage
from streams.input.rows import (
    GpuRow,
    OutcomeRow,
    RowContext,
    RunRow,
    UsageRow,
    UsageTuple,
    gpu_row,
    outcome_row,
    run_row,
    usage_row,
)

Row = UsageRow | UsageTuple | GpuRow | RunRow | OutcomeRow

USAGE, GPU, RUNS, OUTCOMES = "usage", "gpu", "runs", "outcomes"
#: At equal event times a run's lifecycle goes first, then GPU samples, then usage, then outcomes (an outcome
#: is the result of the calls before it).
RUNS_ORDER, GPU_ORDER, USAGE_ORDER, OUTCOMES_ORDER = 0, 1, 2, 3
RUN_STATUS_ORDER = {"started": 0, "finished": 1, "failed": 2, "cancelled": 3}

#: Bits of a position that hold the index inside the message (arrays of up to 16M events).
INDEX_BITS = 24


def position(offset: int, index: int) -> int:
    return offset << INDEX_BITS | index


def offset_of(position: int) -> int:
    return position >> INDEX_BITS


def _number(value: Any) -> Any:
    return -1 if value is None else value  # every number in a row is >= 0, so -1 sorts None first


# The keys unpack rather than read attributes: rows come back from the wire as plain tuples or
# lists in the same layout, and the ledger takes them as they are (naming each one costs 0.2-0.4 us).

def usage_key(row: UsageRow | UsageTuple) -> tuple[Any, ...]:
    (_position, endpoint, ts, prompt_tokens, completion_tokens, cost_usd, unpriced, id_hash,
     model, user, service, product, provider) = row
    return (ts, USAGE_ORDER, endpoint, prompt_tokens, completion_tokens, cost_usd, id_hash, unpriced,
            model, user, service, product, provider)


def gpu_key(row: GpuRow) -> tuple[Any, ...]:
    _position, run_id, gpu_id, ts, gpu_type, price_per_gpu_hour, interval_s, utilization, endpoint = row
    return (ts, GPU_ORDER, run_id, endpoint, gpu_id, price_per_gpu_hour, _number(interval_s), _number(utilization),
            gpu_type or "")


def run_key(row: RunRow) -> tuple[Any, ...]:
    _position, run_id, status, ts, estimated_cost_usd, ceiling_usd, gpus, gpu_type, expected_hours = row
    return (ts, RUNS_ORDER, run_id, RUN_STATUS_ORDER[status], _number(estimated_cost_usd), _number(ceiling_usd),
            _number(gpus), gpu_type or "", _number(expected_hours))


def outcome_key(row: OutcomeRow) -> tuple[Any, ...]:
    _position, endpoint, ts, outcome, count, hashed = row
    return (ts, OUTCOMES_ORDER, endpoint, outcome, count, hashed)


@dataclass(frozen=True)
class InputKind:
    """One kind of input event, from its topic to its place in the release order."""

    name: str  # in rows, deltas and metrics
    order: int  # its place among kinds at equal event times: the release key's second field
    topic_setting: str  # the Settings field naming its topic
    # (decoded JSON object, now, future tolerance in seconds, limits) -> its event; raises RejectedEvent
    parse: Callable[[dict[str, Any], float, float, InputLimits], Any]
    row_type: type[UsageRow | GpuRow | RunRow | OutcomeRow]  # its fields, in order (rows travel as arrays)
    to_row: Callable[[int, Any, RowContext], Row]  # (position, event, context) -> row
    release_key: Callable[[Any], tuple[Any, ...]]  # (row) -> (event time, kind order, content...)
    time_field: int  # where its rows hold the event time (the release key's first field)

    def topic(self, settings: Any) -> str:
        return str(getattr(settings, self.topic_setting))


#: Every input kind.
KINDS: dict[str, InputKind] = {kind.name: kind for kind in (
    InputKind(USAGE, USAGE_ORDER, "usage_topic", parse_usage, UsageRow, usage_row, usage_key, 2),
    InputKind(GPU, GPU_ORDER, "gpu_topic", parse_gpu, GpuRow, gpu_row, gpu_key, 3),
    InputKind(RUNS, RUNS_ORDER, "runs_topic", parse_run, RunRow, run_row, run_key, 3),
    InputKind(OUTCOMES, OUTCOMES_ORDER, "outcomes_topic", parse_outcome, OutcomeRow, outcome_row, outcome_key, 2),
)}
KIND_OF_ORDER = {kind.order: name for name, kind in KINDS.items()}


def release_key(kind: str, row: Row) -> tuple[Any, ...]:
    """The total order rows are applied in (see the module docstring)."""
    return KINDS[kind].release_key(row)


Item = TypeVar("Item")


def sort_in_release_order(items: list[Item], time_of: Callable[[Item], float],
                          key_of: Callable[[Item], tuple[Any, ...]]) -> None:
    """Sort items (rows with whatever travels with them) in release order, in place.

    `time_of` gives an item's event time, the first field of `key_of`'s release key. Items with
    distinct times (nearly always) are sorted by time alone, a float sort in C; the full key, a
    tuple per row built in Python (5% of the ledger's time), is built only when two share a time.
    """
    times = list(map(time_of, items))
    if len(set(times)) == len(times):
        # By the times already read: `sort(key=time_of)` would call `time_of` once more for every item.
        items[:] = [items[at] for at in sorted(range(len(items)), key=times.__getitem__)]
    else:
        items.sort(key=key_of)


def kind_of_topic(settings: Any) -> dict[str, str]:
    """Input topic -> kind, from the settings; the OTLP spans topic, when set, carries usage."""
    topics = {kind.topic(settings): name for name, kind in KINDS.items()}
    if getattr(settings, "otlp_topic", None):
        topics[settings.otlp_topic] = USAGE
    return topics
