"""Events to rows: the compact named tuples the deltas carry and the ledger applies.

Each kind's row type is a `NamedTuple` that names its fields in order; readers take rows by
those names (unpacking them in that order), since rows also come back from the wire (msgpack
arrays, streams/state/deltas.py) as plain tuples or lists. The first field is always the row's
position (streams/input/kinds.py).

Usage rows, 99% of all rows, are built as plain tuples in `UsageRow`'s order: `UsageRow(...)`
costs 0.43 us more a row than a tuple here (0.57 against 0.14), 7% of taking an event in;
`UsageRow._make(row)` names one when a reader wants attributes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import xxhash

from streams.errors import RejectedEvent
from streams.input.events import GpuSample, OutcomeEvent, PlainUsage, RunEvent, UsageEvent
from streams.input.pricing import estimate_cost


def id_hash(event_id: str) -> int:
    """A stable 63-bit hash (fits a JSON integer and a signed 64-bit slot).

    xxh3: 0.13 us an id against blake2b's 0.71 (this machine); a repeat needs no cryptographic hash.
    """
    return xxhash.xxh3_64_intdigest(event_id.encode()) >> 1


# A usage row as built: `UsageRow`'s order.
UsageTuple = tuple[int, str, float, int, int, float, int, int, str, str, str, str, str]


#: Where a usage row's attribution begins (and how long a usage row was before it had one).
ATTRIBUTION = 8


class UsageRow(NamedTuple):
    position: int
    endpoint: str
    ts: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float  # estimated from the price catalog when the event had none
    unpriced: int  # 1: no price known for the model, counted at $0
    id_hash: int  # of the event_id; 0: the event had none
    # Attribution, "" where the event did not say: detectors/attribution.py's DIMENSIONS, in order.
    model: str
    user: str
    service: str
    product: str
    provider: str


class GpuRow(NamedTuple):
    position: int
    run_id: str  # "" for a serving GPU
    gpu_id: str
    ts: float
    gpu_type: str | None
    price_per_gpu_hour: float  # the event's, or the catalog's for its GPU type
    interval_s: float | None
    utilization: float | None
    endpoint: str  # the serving endpoint; "" for a training run's GPU


class RunRow(NamedTuple):
    position: int
    run_id: str
    status: str
    ts: float
    estimated_cost_usd: float | None
    ceiling_usd: float | None
    gpus: int | None
    gpu_type: str | None
    expected_hours: float | None


class OutcomeRow(NamedTuple):
    position: int
    endpoint: str
    ts: float
    outcome: str
    quantity: int  # the event's `count` (a NamedTuple field may not be called count: tuples have a count())
    id_hash: int  # of the event_id, in a space of its own (an outcome's id never repeats a call's); 0: none


@dataclass
class RowContext:
    """What turning an event into a row needs beyond the event: prices, the cap on what one call may cost
    (InputLimits.max_event_cost_usd), and where to count the unpriced."""

    gpu_prices: Mapping[str, float]
    unpriced: Counter[str] = field(default_factory=Counter)  # model -> calls without a price
    max_event_cost_usd: float = math.inf


def usage_row(at: int, event: UsageEvent | PlainUsage, context: RowContext) -> UsageTuple:
    cost, unpriced = event.cost_usd, 0
    if cost is None:
        # Validation lets an event without cost_usd through only with both token counts.
        cost = estimate_cost(event.model, event.prompt_tokens or 0, event.completion_tokens or 0, event.provider)
        if cost is None:
            cost, unpriced = 0.0, 1
            context.unpriced[event.model] += 1
        elif not cost <= context.max_event_cost_usd:
            # The cap holds for what we compute as for what a producer states: 2**53 tokens of a
            # priced model would otherwise count as $1e11 and trip every budget.
            raise RejectedEvent("out_of_range", f"estimated cost {cost:.6g} USD is over the per-event cap "
                                f"{context.max_event_cost_usd:g} (SPENDWATCH_MAX_EVENT_COST_USD)")
    hashed = id_hash(event.event_id) if event.event_id is not None else 0
    return (at, event.endpoint, event.ts, event.prompt_tokens or 0, event.completion_tokens or 0, cost, unpriced,
            hashed, event.model, event.user or "", event.service or "", event.product or "", event.provider or "")


def gpu_row(at: int, event: GpuSample, context: RowContext) -> GpuRow:
    price = event.price_per_gpu_hour_usd
    if price is None:
        price = context.gpu_prices.get(event.gpu_type or "", context.gpu_prices["default"])
    return GpuRow(at, event.run_id or "", event.gpu_id, event.ts, event.gpu_type, price, event.interval_s,
                  event.utilization, event.endpoint or "")


def run_row(at: int, event: RunEvent, context: RowContext) -> RunRow:
    return RunRow(at, event.run_id, event.status, event.ts, event.estimated_cost_usd, event.ceiling_usd,
                  event.gpus, event.gpu_type, event.expected_hours)


def outcome_row(at: int, event: OutcomeEvent, context: RowContext) -> OutcomeRow:
    hashed = id_hash("outcome\x1f" + event.event_id) if event.event_id is not None else 0
    return OutcomeRow(at, event.endpoint, event.ts, event.outcome, event.count, hashed)
