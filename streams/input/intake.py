"""Stage one of the pipeline: raw messages in, per-team deltas and rejections out.

Pure: no Kafka here. The ingest agent hands over a micro-batch of raw messages; this
module decodes and validates them, prices usage, and groups the accepted events by
(team, source partition); `parts_by_team` turns those into one delta per team, a part
per source partition, ready to be sent to the repartition topic keyed by team.
Rejections keep the original bytes so they can be dead-lettered untouched. `Intake.sources`
says how far each source partition got: its last offset and newest event time, which the
ingest agent reports to the ledger as that partition's progress (streams/state/watermarks.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from streams.input.events import (
    DEFAULT_LIMITS,
    GpuSample,
    InputLimits,
    PlainUsage,
    Rejection,
    RunEvent,
    UsageEvent,
    decode_message,
    decode_plain_usage,
    parse_gpu,
    parse_run,
    parse_usage,
)
from streams.input.kinds import GPU, RUNS, USAGE, position
from streams.input.pricing import estimate_cost
from streams.state.dedup import id_hash

PARSERS = {USAGE: parse_usage, GPU: parse_gpu, RUNS: parse_run}


class RawMessage(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes


class DeadLetter(NamedTuple):
    message: RawMessage
    rejection: Rejection


@dataclass
class Intake:
    """One micro-batch, decoded: deltas by (team, source), rejections, and counts for metrics."""

    deltas: dict[tuple[str, str], list[list[Any]]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    accepted: int = 0
    unpriced: Counter[str] = field(default_factory=Counter)
    sources: dict[str, tuple[int, float | None]] = field(default_factory=dict)  # source -> (last offset, newest ts)


def source_of(message: RawMessage) -> str:
    return f"{message.topic}:{message.partition}"


def decode_events(kind: str, payload: bytes, now: float, future_tolerance_s: float,
                  limits: InputLimits = DEFAULT_LIMITS) -> tuple[list[Any], list[Rejection]]:
    """One message's events and rejections; usage tries the msgspec fast path first."""
    if kind == USAGE:
        plain = decode_plain_usage(payload, now, future_tolerance_s, limits)
        if plain is not None:
            return plain, []
    return decode_message(payload, PARSERS[kind], now, future_tolerance_s, limits)


def usage_row(at: int, event: UsageEvent | PlainUsage, intake: Intake) -> list[Any]:
    cost, unpriced = event.cost_usd, 0
    if cost is None:
        # Validation lets an event without cost_usd through only with both token counts.
        cost = estimate_cost(event.model, event.prompt_tokens or 0, event.completion_tokens or 0, event.provider)
        if cost is None:
            cost, unpriced = 0.0, 1
            intake.unpriced[event.model] += 1
    hashed = id_hash(event.event_id) if event.event_id is not None else 0
    return [at, event.endpoint, event.ts, event.prompt_tokens, event.completion_tokens, cost, unpriced, hashed]


def gpu_row(at: int, event: GpuSample, gpu_prices: Mapping[str, float]) -> list[Any]:
    price = event.price_per_gpu_hour_usd
    if price is None:
        price = gpu_prices.get(event.gpu_type or "", gpu_prices["default"])
    return [at, event.run_id, event.gpu_id, event.ts, event.gpu_type, price, event.interval_s, event.utilization]


def run_row(at: int, event: RunEvent) -> list[Any]:
    return [at, event.run_id, event.status, event.ts, event.estimated_cost_usd, event.ceiling_usd,
            event.gpus, event.gpu_type, event.expected_hours]


def take_in(
    messages: Iterable[RawMessage],
    kind_of_topic: Mapping[str, str],
    now: float,
    future_tolerance_s: float,
    gpu_prices: Mapping[str, float],
    limits: InputLimits = DEFAULT_LIMITS,
) -> Intake:
    """Decode a micro-batch into per-team deltas; never raises on bad input."""
    intake = Intake()
    sources = intake.sources
    for message in messages:
        kind = kind_of_topic[message.topic]
        events, rejections = decode_events(kind, message.value, now, future_tolerance_s, limits)
        intake.dead_letters.extend(DeadLetter(message, rejection) for rejection in rejections)
        source = source_of(message)
        newest = sources[source][1] if source in sources else None
        for index, event in enumerate(events):
            at = position(message.offset, index)
            if kind == USAGE:
                row = usage_row(at, event, intake)
            elif kind == GPU:
                row = gpu_row(at, event, gpu_prices)
            else:
                row = run_row(at, event)
            intake.deltas.setdefault((event.team, source), []).append(row)
            if newest is None or event.ts > newest:
                newest = event.ts
        intake.accepted += len(events)
        sources[source] = (message.offset, newest)
    return intake


def kind_of_source(source: str, kind_of_topic: Mapping[str, str]) -> str:
    return kind_of_topic[source.rsplit(":", 1)[0]]


def parts_by_team(intake: Intake, kind_of_topic: Mapping[str, str]) -> dict[str, list[tuple[str, str, list[Any]]]]:
    """Per team, its (source, kind, rows) parts, in the order the micro-batch first met each source."""
    parts: dict[str, list[tuple[str, str, list[Any]]]] = {}
    for (team, source), rows in intake.deltas.items():
        parts.setdefault(team, []).append((source, kind_of_source(source, kind_of_topic), rows))
    return parts
