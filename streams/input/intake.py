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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

from streams.errors import RejectedEvent
from streams.input.cloudevents import from_binary, is_envelope, unwrap
from streams.input.events import (
    DEFAULT_LIMITS,
    INTERNAL_ERROR,
    InputLimits,
    Rejection,
    decode_message,
    decode_plain_usage,
    parse_usage,
    unforeseen,
)
from streams.input.kinds import KINDS, USAGE, Row, position
from streams.input.otlp import SpanFields, decode_spans
from streams.input.rows import RowContext


class RawMessage(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes
    headers: Mapping[str, bytes] | None = None  # only where the message has any (CloudEvents' binary mode)


class DeadLetter(NamedTuple):
    message: RawMessage
    rejection: Rejection


@dataclass
class Intake:
    """One micro-batch, decoded: deltas by (team, source), rejections, and counts for metrics."""

    deltas: dict[tuple[str, str], list[Row]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    accepted: int = 0
    skipped: int = 0  # spans without GenAI usage: not events, not rejections
    unpriced: Counter[str] = field(default_factory=Counter)
    sources: dict[str, tuple[int, float | None]] = field(default_factory=dict)  # source -> (last offset, newest ts)


def micro_batches(messages: Sequence[RawMessage], most_messages: int, most_bytes: int) -> Iterator[list[RawMessage]]:
    """Consecutive runs of at most `most_messages` messages and `most_bytes` of values (one message at least).

    Both bounds, because messages range from one event (a proxy's callback, ~300 bytes) to arrays
    of thousands: a count alone that suits one makes the other's batches too small or too big.

    >>> def sized(*sizes): return [RawMessage("t", 0, i, b"x" * n) for i, n in enumerate(sizes)]
    >>> [[m.offset for m in batch] for batch in micro_batches(sized(1, 1, 1, 5, 9, 1), 2, 8)]
    [[0, 1], [2, 3], [4], [5]]
    """
    batch: list[RawMessage] = []
    size = 0
    for message in messages:
        if batch and (len(batch) >= most_messages or size + len(message.value) > most_bytes):
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += len(message.value)
    if batch:
        yield batch


def source_of(message: RawMessage) -> str:
    return f"{message.topic}:{message.partition}"


def parse_usage_or_cloudevent(obj: dict[str, Any], now: float, future_tolerance_s: float,
                              limits: InputLimits) -> Any:
    """A usage event, plain or in a CloudEvents structured-mode envelope."""
    return parse_usage(unwrap(obj) if is_envelope(obj) else obj, now, future_tolerance_s, limits)


def decode_events(kind: str, payload: bytes, now: float, future_tolerance_s: float,
                  limits: InputLimits = DEFAULT_LIMITS,
                  headers: Mapping[str, bytes] | None = None) -> tuple[list[Any], list[Rejection]]:
    """One message's events and rejections; usage tries the msgspec fast path first."""
    if kind != USAGE:
        return decode_message(payload, KINDS[kind].parse, now, future_tolerance_s, limits)
    if headers:
        try:
            payload = from_binary(headers, payload) or payload
        except RejectedEvent as exc:
            return [], [Rejection(exc.reason, exc.detail, payload, None)]
    plain = decode_plain_usage(payload, now, future_tolerance_s, limits)
    if plain is not None:
        return plain, []
    return decode_message(payload, parse_usage_or_cloudevent, now, future_tolerance_s, limits)


def take_in(
    messages: Iterable[RawMessage],
    kind_of_topic: Mapping[str, str],
    now: float,
    future_tolerance_s: float,
    gpu_prices: Mapping[str, float],
    limits: InputLimits = DEFAULT_LIMITS,
    otlp_topics: Mapping[str, SpanFields] | None = None,
) -> Intake:
    """Decode a micro-batch into per-team deltas; never raises on bad input.

    `otlp_topics`: topics of OpenTelemetry spans (streams/input/otlp.py), with where each finds team and endpoint.
    """
    intake = Intake()
    context = RowContext(gpu_prices, intake.unpriced, limits.max_event_cost_usd)
    sources = intake.sources
    for message in messages:
        kind = kind_of_topic[message.topic]
        to_row = KINDS[kind].to_row
        try:
            if otlp_topics and message.topic in otlp_topics:
                events, rejections, skipped = decode_spans(message.value, otlp_topics[message.topic], now,
                                                           future_tolerance_s, limits)
                intake.skipped += skipped
            else:
                events, rejections = decode_events(kind, message.value, now, future_tolerance_s, limits,
                                                   message.headers)
        except Exception as exc:  # noqa: BLE001 - a message our decoders did not foresee: dead-letter it, go on
            events, rejections = [], [Rejection(INTERNAL_ERROR, unforeseen(exc), message.value, None)]
        intake.dead_letters.extend(DeadLetter(message, rejection) for rejection in rejections)
        source = source_of(message)
        newest = sources[source][1] if source in sources else None
        refused = 0
        for index, event in enumerate(events):
            try:
                row = to_row(position(message.offset, index), event, context)
            except Exception as exc:  # noqa: BLE001 - RejectedEvent (a computed cost over the cap) or unforeseen
                intake.dead_letters.append(DeadLetter(message, row_rejection(exc, event)))
                refused += 1
                continue
            intake.deltas.setdefault((event.team, source), []).append(row)
            if newest is None or event.ts > newest:
                newest = event.ts
        intake.accepted += len(events) - refused
        sources[source] = (message.offset, newest)
    return intake


def row_rejection(exc: Exception, event: Any) -> Rejection:
    """Why an accepted event could not become a row, with the event as decoded (the message may hold thousands)."""
    reason, detail = (exc.reason, exc.detail) if isinstance(exc, RejectedEvent) else (INTERNAL_ERROR, unforeseen(exc))
    try:
        payload = msgspec.json.encode(event)
    except Exception:  # noqa: BLE001 - a value JSON cannot spell: the reason still goes out, without the event
        payload = b"{}"
    return Rejection(reason, detail, payload, None)


def kind_of_source(source: str, kind_of_topic: Mapping[str, str]) -> str:
    return kind_of_topic[source.rsplit(":", 1)[0]]


def parts_by_team(intake: Intake) -> dict[str, list[tuple[str, list[Row]]]]:
    """Per team, its (source, rows) parts, in the order the micro-batch first met each source."""
    parts: dict[str, list[tuple[str, list[Row]]]] = {}
    for (team, source), rows in intake.deltas.items():
        parts.setdefault(team, []).append((source, rows))
    return parts
