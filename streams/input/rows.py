"""Events to rows: the compact lists the deltas carry and the ledger applies.

Layouts (the first field is always the row's position, streams/input/kinds.py):

    usage: [position, endpoint, ts, prompt_tokens, completion_tokens, cost_usd, unpriced, id_hash]
    gpu:   [position, run_id, gpu_id, ts, gpu_type, price_per_gpu_hour, interval_s, utilization]
    runs:  [position, run_id, status, ts, estimated_cost_usd, ceiling_usd, gpus, gpu_type, expected_hours]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import xxhash

from streams.input.events import GpuSample, PlainUsage, RunEvent, UsageEvent
from streams.input.pricing import estimate_cost


def id_hash(event_id: str) -> int:
    """A stable 63-bit hash (fits a JSON integer and a signed 64-bit slot).

    xxh3: 0.13 us an id against blake2b's 0.71 (this machine); a repeat needs no cryptographic hash.
    """
    return xxhash.xxh3_64_intdigest(event_id.encode()) >> 1



@dataclass
class RowContext:
    """What turning an event into a row needs beyond the event: prices, and where to count the unpriced."""

    gpu_prices: Mapping[str, float]
    unpriced: Counter[str] = field(default_factory=Counter)  # model -> calls without a price


def usage_row(at: int, event: UsageEvent | PlainUsage, context: RowContext) -> list[Any]:
    cost, unpriced = event.cost_usd, 0
    if cost is None:
        # Validation lets an event without cost_usd through only with both token counts.
        cost = estimate_cost(event.model, event.prompt_tokens or 0, event.completion_tokens or 0, event.provider)
        if cost is None:
            cost, unpriced = 0.0, 1
            context.unpriced[event.model] += 1
    hashed = id_hash(event.event_id) if event.event_id is not None else 0
    return [at, event.endpoint, event.ts, event.prompt_tokens, event.completion_tokens, cost, unpriced, hashed]


def gpu_row(at: int, event: GpuSample, context: RowContext) -> list[Any]:
    price = event.price_per_gpu_hour_usd
    if price is None:
        price = context.gpu_prices.get(event.gpu_type or "", context.gpu_prices["default"])
    return [at, event.run_id, event.gpu_id, event.ts, event.gpu_type, price, event.interval_s, event.utilization]


def run_row(at: int, event: RunEvent, context: RowContext) -> list[Any]:
    return [at, event.run_id, event.status, event.ts, event.estimated_cost_usd, event.ceiling_usd,
            event.gpus, event.gpu_type, event.expected_hours]
