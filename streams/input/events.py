"""Parse and validate the three input kinds exactly as CONTRACT.md says.

A Kafka message holds one JSON event or an array of them; each element is judged on
its own. `decode_message` never raises on bad input: it returns the accepted events
and a `Rejection` for everything else, so the caller can dead-letter it untouched.

>>> accepted, rejected = decode_message(
...     b'[{"ts": 1700000000, "team": "search", "model": "gpt-4o",'
...     b' "prompt_tokens": 10, "completion_tokens": 2}, {"team": "x"}]',
...     parse_usage, now=1700000000.0)
>>> accepted[0].team, accepted[0].endpoint, accepted[0].prompt_tokens
('search', 'default', 10)
>>> rejected[0].reason, rejected[0].index
('missing_field', 1)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
import orjson

from streams.errors import RejectedEvent
from streams.input.providers import split_model

#: Events further than this ahead of the worker's clock are rejected (clock bugs, ms sent as us).
DEFAULT_FUTURE_TOLERANCE_S = 300.0
RUN_STATUSES = frozenset({"started", "finished", "failed", "cancelled"})
#: The largest count taken: a JSON number carries integers exactly up to here (orjson reads bigger ones as floats).
MAX_COUNT = 2**53
#: Names (team, endpoint, model, run_id, gpu_id, gpu_type, provider): longest accepted, in characters.
MAX_NAME_CHARS = 256
#: The largest amounts of a GPU sample and a run, past which an event is `out_of_range`.
MAX_GPU_HOUR_PRICE_USD = 10_000.0
MAX_INTERVAL_S = 86_400.0
MAX_RUN_USD = 1e12
MAX_RUN_HOURS = 100_000.0
MAX_GPUS = 1_000_000
#: Longest `event_id` accepted: ids travel in deltas and dead letters, so one long id must not make a batch too big.
MAX_EVENT_ID_CHARS = 256
_CONTROL = frozenset(chr(c) for c in (*range(32), 127))
#: The reason for an element that made our own code raise: dead-lettered like any bad input, never a crash loop.
INTERNAL_ERROR = "internal_error"


def unforeseen(exc: BaseException) -> str:
    """An `internal_error`'s detail: the exception's type, never its text (which may quote the input)."""
    return type(exc).__name__


@dataclass(frozen=True)
class InputLimits:
    """What one event may claim; above it, `out_of_range` (keeps every sum finite and every key queryable)."""

    max_event_cost_usd: float = 100_000.0

    @classmethod
    def from_settings(cls, settings: Any) -> InputLimits:
        return cls(max_event_cost_usd=settings.max_event_cost_usd)


DEFAULT_LIMITS = InputLimits()


@dataclass(slots=True)
class UsageEvent:
    ts: float
    team: str
    model: str
    endpoint: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    event_id: str | None
    provider: str | None
    user: str | None = None
    service: str | None = None
    product: str | None = None


@dataclass(slots=True)
class GpuSample:
    ts: float
    team: str
    run_id: str | None  # a training run's GPU
    gpu_id: str
    gpu_type: str | None
    price_per_gpu_hour_usd: float | None
    interval_s: float | None
    utilization: float | None
    endpoint: str | None = None  # or a serving endpoint's (CONTRACT, third round): one of the two


@dataclass(slots=True)
class RunEvent:
    ts: float
    team: str
    run_id: str
    status: str
    estimated_cost_usd: float | None
    ceiling_usd: float | None
    gpus: int | None
    gpu_type: str | None
    expected_hours: float | None


@dataclass(slots=True)
class OutcomeEvent:
    ts: float
    team: str
    endpoint: str
    outcome: str
    count: int
    event_id: str | None


@dataclass(slots=True)
class Rejection:
    """One input that cannot be counted: the bytes to dead-letter and why."""

    reason: str
    detail: str
    payload: bytes
    index: int | None  # position inside an array message; None for the whole message


Event = TypeVar("Event", UsageEvent, GpuSample, RunEvent, OutcomeEvent)
Parser = Callable[[dict[str, Any], float, float, InputLimits], Event]


def parse_ts(value: Any, now: float, future_tolerance_s: float) -> float:
    """Seconds since the epoch from an RFC 3339 string or a number (above 1e11: milliseconds)."""
    if isinstance(value, bool) or value is None:
        raise RejectedEvent("bad_timestamp", f"ts must be RFC 3339 or epoch seconds, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = value / 1000.0 if value > 1e11 else float(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise RejectedEvent("bad_timestamp", f"ts is not RFC 3339: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise RejectedEvent("bad_timestamp", f"ts has no time zone: {value[:40]!r}")
        seconds = parsed.timestamp()
    else:
        raise RejectedEvent("bad_timestamp", f"ts must be RFC 3339 or epoch seconds, got {type(value).__name__}")
    if not seconds > 0 or seconds != seconds:
        raise RejectedEvent("bad_timestamp", f"ts out of range: {value!r}")
    if seconds > now + future_tolerance_s:
        raise RejectedEvent("future_timestamp", f"ts is {seconds - now:.0f}s ahead of the worker's clock")
    return seconds


def _text(obj: dict[str, Any], name: str, required: bool = True, default: str | None = None) -> str | None:
    value = obj.get(name)
    if value is None or value == "":
        if required:
            raise RejectedEvent("missing_field", f"{name} is required")
        return default
    if not isinstance(value, str):
        raise RejectedEvent("wrong_type", f"{name} must be a string, got {type(value).__name__}")
    return _name(name, value)


def _name(name: str, value: str) -> str:
    if len(value) > MAX_NAME_CHARS:
        raise RejectedEvent("out_of_range", f"{name} is {len(value)} characters; at most {MAX_NAME_CHARS}")
    if not _CONTROL.isdisjoint(value):
        raise RejectedEvent("bad_name", f"{name} holds a control character")
    return value


def _count(obj: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = obj.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RejectedEvent("wrong_type", f"{name} must be an integer, got {value!r}"[:200])
        if not math.isfinite(value):  # only OTLP's doubles can carry these; JSON has no spelling for them
            raise RejectedEvent("out_of_range", f"{name} must be a finite integer, got {value!r}")
        if value != int(value):
            raise RejectedEvent("wrong_type", f"{name} must be an integer, got {value!r}"[:200])
        if value < 0:
            raise RejectedEvent("negative_tokens", f"{name} must be >= 0, got {value}")
        if value > MAX_COUNT:
            raise RejectedEvent("out_of_range", f"{name} must be at most 2**53, got {value}"[:200])
        return int(value)
    return None


def _amount(obj: dict[str, Any], name: str, most: float = math.inf, positive: bool = False) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise RejectedEvent("wrong_type", f"{name} must be a number, got {value!r}"[:200])
    if math.isinf(value):
        raise RejectedEvent("out_of_range", f"{name} must be finite")
    if value < 0:
        raise RejectedEvent("negative_value", f"{name} must be >= 0, got {value}")
    if positive and value == 0:
        raise RejectedEvent("out_of_range", f"{name} must be > 0 (leave it out when there is none)")
    if value > most:
        raise RejectedEvent("out_of_range", f"{name} must be at most {most:g}, got {value:g}")
    return float(value)


def _event_id(obj: dict[str, Any]) -> str | None:
    event_id = obj.get("event_id")
    if event_id is not None and (isinstance(event_id, bool) or not isinstance(event_id, (str, int))):
        raise RejectedEvent("wrong_type", "event_id must be a string or an integer")
    if event_id is not None and len(str(event_id)) > MAX_EVENT_ID_CHARS:
        raise RejectedEvent("out_of_range", f"event_id is {len(str(event_id))} characters; "
                            f"at most {MAX_EVENT_ID_CHARS}")
    return None if event_id is None else str(event_id)


def parse_usage(obj: dict[str, Any], now: float, future_tolerance_s: float = DEFAULT_FUTURE_TOLERANCE_S,
                limits: InputLimits = DEFAULT_LIMITS) -> UsageEvent:
    """One token-usage event; raises `RejectedEvent` with the reason for the first check that fails."""
    team = _text(obj, "team")
    model = _text(obj, "model")
    ts = parse_ts(obj.get("ts"), now, future_tolerance_s) if "ts" in obj else None
    if ts is None:
        raise RejectedEvent("missing_field", "ts is required")
    prompt = _count(obj, "prompt_tokens", "input_tokens")
    completion = _count(obj, "completion_tokens", "output_tokens")
    cost = _amount(obj, "cost_usd", limits.max_event_cost_usd)
    if cost is None and (prompt is None or completion is None):
        raise RejectedEvent("missing_field", "prompt_tokens and completion_tokens are required without cost_usd")
    event_id = _event_id(obj)
    provider = _text(obj, "provider", required=False)
    if model is not None and "/" in model:  # CONTRACT: named as the price catalog names it
        model, provider = split_model(model, provider)
    return UsageEvent(
        ts=ts,
        team=team,  # type: ignore[arg-type]
        model=model,  # type: ignore[arg-type]
        endpoint=_text(obj, "endpoint", required=False, default="default"),  # type: ignore[arg-type]
        prompt_tokens=prompt or 0,
        completion_tokens=completion or 0,
        cost_usd=cost,
        event_id=event_id,
        provider=provider,
        user=_text(obj, "user", required=False),
        service=_text(obj, "service", required=False),
        product=_text(obj, "product", required=False),
    )


def parse_gpu(obj: dict[str, Any], now: float, future_tolerance_s: float = DEFAULT_FUTURE_TOLERANCE_S,
              limits: InputLimits = DEFAULT_LIMITS) -> GpuSample:
    """One GPU sample, of a training run (`run_id`) or a serving endpoint (`endpoint`, which wins where both are
    given); raises `RejectedEvent` with a reason code."""
    team = _text(obj, "team")
    endpoint = _text(obj, "endpoint", required=False)
    run_id = None if endpoint is not None else _text(obj, "run_id", required=False)
    if endpoint is None and run_id is None:
        raise RejectedEvent("missing_field", "run_id (a training run's GPU) or endpoint (a serving GPU) is required")
    gpu_id = obj.get("gpu_id")
    if gpu_id is None or gpu_id == "":
        raise RejectedEvent("missing_field", "gpu_id is required")
    if not isinstance(gpu_id, (str, int)) or isinstance(gpu_id, bool):
        raise RejectedEvent("wrong_type", "gpu_id must be a string or an integer")
    if "ts" not in obj:
        raise RejectedEvent("missing_field", "ts is required")
    utilization = _amount(obj, "utilization")
    if utilization is not None and utilization > 100:
        raise RejectedEvent("out_of_range", f"utilization must be 0-100, got {utilization}")
    return GpuSample(
        ts=parse_ts(obj["ts"], now, future_tolerance_s),
        team=team,  # type: ignore[arg-type]
        run_id=run_id,
        gpu_id=_name("gpu_id", str(gpu_id)),
        gpu_type=_text(obj, "gpu_type", required=False),
        price_per_gpu_hour_usd=_amount(obj, "price_per_gpu_hour_usd", MAX_GPU_HOUR_PRICE_USD),
        interval_s=_amount(obj, "interval_s", MAX_INTERVAL_S),
        utilization=utilization,
        endpoint=endpoint,
    )


def parse_run(obj: dict[str, Any], now: float, future_tolerance_s: float = DEFAULT_FUTURE_TOLERANCE_S,
              limits: InputLimits = DEFAULT_LIMITS) -> RunEvent:
    """One training-run lifecycle event; raises `RejectedEvent` with a reason code."""
    team = _text(obj, "team")
    run_id = _text(obj, "run_id")
    status = _text(obj, "status")
    if status not in RUN_STATUSES:
        raise RejectedEvent("bad_status", f"status must be one of {sorted(RUN_STATUSES)}, got {status!r}"[:200])
    if "ts" not in obj:
        raise RejectedEvent("missing_field", "ts is required")
    gpus = _count(obj, "gpus")
    if gpus is not None and gpus > MAX_GPUS:
        raise RejectedEvent("out_of_range", f"gpus must be at most {MAX_GPUS}, got {gpus}")
    return RunEvent(
        ts=parse_ts(obj["ts"], now, future_tolerance_s),
        team=team,  # type: ignore[arg-type]
        run_id=run_id,  # type: ignore[arg-type]
        status=status,
        estimated_cost_usd=_amount(obj, "estimated_cost_usd", MAX_RUN_USD, positive=True),
        ceiling_usd=_amount(obj, "ceiling_usd", MAX_RUN_USD, positive=True),
        gpus=gpus,
        gpu_type=_text(obj, "gpu_type", required=False),
        expected_hours=_amount(obj, "expected_hours", MAX_RUN_HOURS, positive=True),
    )


def parse_outcome(obj: dict[str, Any], now: float, future_tolerance_s: float = DEFAULT_FUTURE_TOLERANCE_S,
                  limits: InputLimits = DEFAULT_LIMITS) -> OutcomeEvent:
    """One business outcome (CONTRACT, third round); raises `RejectedEvent` with a reason code."""
    team = _text(obj, "team")
    outcome = _text(obj, "outcome")
    if "ts" not in obj:
        raise RejectedEvent("missing_field", "ts is required")
    count = _count(obj, "count")
    if count is not None and count < 1:
        raise RejectedEvent("out_of_range", "count must be at least 1 (leave it out for one)")
    return OutcomeEvent(
        ts=parse_ts(obj["ts"], now, future_tolerance_s),
        team=team,  # type: ignore[arg-type]
        endpoint=_text(obj, "endpoint", required=False, default="default"),  # type: ignore[arg-type]
        outcome=outcome,  # type: ignore[arg-type]
        count=1 if count is None else count,
        event_id=_event_id(obj),
    )


# \Z, not $: `$` also matches before a trailing newline, and let "user": "u\n" through.
_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS, pattern="^[^\\x00-\\x1f\\x7f]*\\Z")]
_Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
_Attribution = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS, pattern="^[^\\x00-\\x1f\\x7f]*\\Z")] | None


class PlainUsage(msgspec.Struct):
    """A usage event in its common form, decoded and checked by msgspec in C.

    Accepts only what `parse_usage` accepts, with the same values (epoch seconds up to 1e11,
    integer tokens, non-empty names within the limits), so either path counts an event the
    same way. Anything else (RFC 3339 or millisecond `ts`, a float token count, an integer
    `event_id`, a bad field) makes the whole message take `decode_message`, which words the
    rejection.
    """

    ts: Annotated[float, msgspec.Meta(gt=0, le=1e11)]
    team: _Text
    model: _Text
    prompt_tokens: _Count | None = None
    completion_tokens: _Count | None = None
    cost_usd: Annotated[float, msgspec.Meta(ge=0)] | None = None
    endpoint: _Text = "default"
    event_id: Annotated[str, msgspec.Meta(max_length=MAX_EVENT_ID_CHARS)] | None = None
    provider: _Attribution = None
    user: _Attribution = None
    service: _Attribution = None
    product: _Attribution = None
    input_tokens: _Count | None = None  # other names producers use for the two counts
    output_tokens: _Count | None = None


_UnescapedText = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS)]
_UnescapedAttribution = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS)] | None


class _UnescapedPlainUsage(PlainUsage):
    """`PlainUsage` for a payload with no backslash and no DEL byte: none of its strings can hold a control
    character (JSON spells U+0000-U+001F only as escapes), so the per-string pattern, run by Python's
    `re` on every name and 60% of decoding (3.0 us an event against 1.2), can be skipped."""

    team: _UnescapedText
    model: _UnescapedText
    endpoint: _UnescapedText = "default"
    provider: _UnescapedAttribution = None
    user: _UnescapedAttribution = None
    service: _UnescapedAttribution = None
    product: _UnescapedAttribution = None


_plain_usage_decoder = msgspec.json.Decoder(list[PlainUsage] | PlainUsage)
_unescaped_usage_decoder = msgspec.json.Decoder(list[_UnescapedPlainUsage] | _UnescapedPlainUsage)


def decode_plain_usage(payload: bytes, now: float, future_tolerance_s: float = DEFAULT_FUTURE_TOLERANCE_S,
                       limits: InputLimits = DEFAULT_LIMITS) -> list[PlainUsage] | None:
    """Every event of a usage message when all of them are plain; None sends it down `decode_message`.

    Found by profiling: orjson plus the per-field checks cost 1.7 us an event; this 1.1 us on `make bench`'s
    events (3.0 before the unescaped decoder).
    """
    unescaped = b"\\" not in payload and b"\x7f" not in payload
    try:
        decoder: msgspec.json.Decoder[Any] = _unescaped_usage_decoder if unescaped else _plain_usage_decoder
        document = decoder.decode(payload)
    except Exception:  # noqa: BLE001 - bad JSON or UTF-8, a field that fails: the full path says which and why
        return None
    events = document if isinstance(document, list) else [document]
    latest, most = now + future_tolerance_s, limits.max_event_cost_usd
    for event in events:
        if event.ts > latest or (event.cost_usd is not None and event.cost_usd > most):
            return None
        if event.prompt_tokens is None or event.completion_tokens is None:
            if event.prompt_tokens is None:
                event.prompt_tokens = event.input_tokens
            if event.completion_tokens is None:
                event.completion_tokens = event.output_tokens
            if event.prompt_tokens is None or event.completion_tokens is None:
                return None
        if not event.provider:
            event.provider = None
        if "/" in event.model:  # as parse_usage names it: a known provider's prefix moved to `provider`
            event.model, event.provider = split_model(event.model, event.provider)
    return events


def decode_message(
    payload: bytes,
    parse: Parser,
    now: float,
    future_tolerance_s: float = DEFAULT_FUTURE_TOLERANCE_S,
    limits: InputLimits = DEFAULT_LIMITS,
) -> tuple[list[Any], list[Rejection]]:
    """Split one Kafka message into accepted events and rejections; never raises on bad input."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        reason = "not_utf8" if "utf-8" in str(exc).lower() else "not_json"
        return [], [Rejection(reason, str(exc)[:200], payload, None)]
    if isinstance(document, dict):
        elements, is_array = [document], False
    elif isinstance(document, list):
        elements, is_array = document, True
    else:
        detail = f"expected an object or an array, got {type(document).__name__}"
        return [], [Rejection("not_object", detail, payload, None)]
    accepted: list[Any] = []
    rejected: list[Rejection] = []
    for index, element in enumerate(elements):
        try:
            if not isinstance(element, dict):
                raise RejectedEvent("not_object", f"expected an object, got {type(element).__name__}")
            accepted.append(parse(element, now, future_tolerance_s, limits))
        except RejectedEvent as exc:
            original = orjson.dumps(element) if is_array else payload
            rejected.append(Rejection(exc.reason, exc.detail, original, index if is_array else None))
        except Exception as exc:  # noqa: BLE001 - a value our checks did not foresee: this element only
            original = orjson.dumps(element) if is_array else payload
            rejected.append(Rejection(INTERNAL_ERROR, unforeseen(exc), original, index if is_array else None))
    return accepted, rejected
