"""OpenTelemetry GenAI spans, as the Collector's `kafka` exporter writes them, as token-usage events.

The exporter writes one batch of traces a message: `otlp_proto` (an ExportTraceServiceRequest,
its default; decoded with the official `opentelemetry-proto` types) or `otlp_json` (OTLP/JSON:
camelCase names, hex trace and span ids, 64-bit integers as strings). A message that parses
as JSON is taken as `otlp_json`, anything else as `otlp_proto`.

Every span that carries GenAI usage becomes one event (semantic conventions for GenAI):

| event field | from |
| --- | --- |
| `prompt_tokens`, `completion_tokens` | `gen_ai.usage.input_tokens`, `.output_tokens` (older: `.prompt_tokens`, |
|                                      | `.completion_tokens`) |
| `model` | `gen_ai.response.model`, else `gen_ai.request.model` |
| `provider` | `gen_ai.provider.name`, else the older `gen_ai.system` |
| `ts` | the span's end time |
| `event_id` | trace id and span id (a re-sent batch counts once) |
| `team`, `endpoint` | the span's, else its resource's, attributes named by `SpanFields` (e.g. `team`, `service.name`) |

A span with no GenAI usage is skipped, not dead-lettered: most spans in a trace are not LLM calls.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from streams.errors import RejectedEvent
from streams.input.events import DEFAULT_LIMITS, INTERNAL_ERROR, InputLimits, Rejection, parse_usage, unforeseen

INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")


@dataclass(frozen=True)
class SpanFields:
    """Which attributes name the team and the endpoint (a span's own first, then its resource's)."""

    team: str = "team"
    endpoint: str = "service.name"


@dataclass(frozen=True)
class Span:
    resource: dict[str, Any]
    attributes: dict[str, Any]
    trace_id: str  # hex
    span_id: str  # hex
    name: str
    end_unix_nano: int

    def as_json(self) -> bytes:
        """What a dead letter keeps of the span: everything the mapping read."""
        return orjson.dumps({"traceId": self.trace_id, "spanId": self.span_id, "name": self.name,
                             "endTimeUnixNano": str(self.end_unix_nano), "attributes": self.attributes,
                             "resource": self.resource})


def _proto_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "int_value", "double_value", "bool_value") else None


def _proto_spans(payload: bytes) -> Iterator[Span]:
    request = ExportTraceServiceRequest.FromString(payload)
    for resource_spans in request.resource_spans:
        resource = {a.key: _proto_value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield Span(resource, {a.key: _proto_value(a.value) for a in span.attributes},
                           span.trace_id.hex(), span.span_id.hex(), span.name, span.end_time_unix_nano)


def _json_value(value: dict[str, Any]) -> Any:
    for name in ("stringValue", "boolValue", "doubleValue"):
        if name in value:
            return value[name]
    if "intValue" in value:
        return _json_int(value["intValue"], value["intValue"])  # OTLP/JSON writes 64-bit integers as strings
    return None


def _json_int(value: Any, otherwise: Any) -> Any:
    """An OTLP/JSON integer (a string or a number); `otherwise` when it is neither, for the span's own checks."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return otherwise


def _json_id(value: Any) -> str:
    """OTLP/JSON ids are hex; protobuf's own JSON mapping would give base64, accepted too."""
    text = str(value or "")
    try:
        bytes.fromhex(text)
        return text.lower()
    except ValueError:
        try:
            return base64.b64decode(text, validate=True).hex()
        except (binascii.Error, ValueError):
            return text


def _attributes(items: Any) -> dict[str, Any]:
    return {a["key"]: _json_value(a.get("value") or {}) for a in items or [] if isinstance(a, dict) and "key" in a}


def _json_spans(document: Any) -> Iterator[Span]:
    if not isinstance(document, dict):
        raise ValueError("OTLP/JSON is an object with resourceSpans")
    for resource_spans in document.get("resourceSpans") or []:
        resource = _attributes((resource_spans.get("resource") or {}).get("attributes"))
        for scope_spans in resource_spans.get("scopeSpans") or []:
            for span in scope_spans.get("spans") or []:
                yield Span(resource, _attributes(span.get("attributes")), _json_id(span.get("traceId")),
                           _json_id(span.get("spanId")), str(span.get("name", "")),
                           _json_int(span.get("endTimeUnixNano") or 0, 0))


def spans_of(payload: bytes) -> list[Span]:
    """Every span of one message, in either encoding; ValueError when it is neither."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        try:
            return list(_proto_spans(payload))
        except DecodeError as exc:
            raise ValueError(f"neither otlp_json nor otlp_proto: {exc}") from None
    try:
        return list(_json_spans(document))
    except (AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"not OTLP/JSON traces: {exc}") from None


def _first(span: Span, names: tuple[str, ...], resource_too: bool = False) -> Any:
    for name in names:
        if span.attributes.get(name) is not None:
            return span.attributes[name]
        if resource_too and span.resource.get(name) is not None:
            return span.resource[name]
    return None


def usage_event(span: Span, fields: SpanFields) -> dict[str, Any] | None:
    """The token-usage event a span stands for; None when it carries no GenAI usage."""
    prompt, completion = _first(span, INPUT_TOKENS), _first(span, OUTPUT_TOKENS)
    if prompt is None and completion is None:
        return None
    event = {
        "ts": span.end_unix_nano / 1e9,
        "event_id": f"otel-{span.trace_id}-{span.span_id}",
        "team": _first(span, (fields.team,), resource_too=True),
        "endpoint": _first(span, (fields.endpoint,), resource_too=True),
        "model": _first(span, ("gen_ai.response.model", "gen_ai.request.model")),
        "provider": _first(span, ("gen_ai.provider.name", "gen_ai.system")),
        "prompt_tokens": prompt if prompt is not None else 0,
        "completion_tokens": completion if completion is not None else 0,
    }
    return {name: value for name, value in event.items() if value is not None}


def decode_spans(payload: bytes, fields: SpanFields, now: float, future_tolerance_s: float,
                 limits: InputLimits = DEFAULT_LIMITS) -> tuple[list[Any], list[Rejection], int]:
    """One message's usage events, rejections (a span at a time) and how many spans had no usage."""
    try:
        spans = spans_of(payload)
    except ValueError as exc:
        return [], [Rejection("not_otlp", str(exc)[:200], payload, None)], 0
    events: list[Any] = []
    rejections: list[Rejection] = []
    skipped = 0
    for index, span in enumerate(spans):
        try:
            event = usage_event(span, fields)
            if event is None:
                skipped += 1
                continue
            events.append(parse_usage(event, now, future_tolerance_s, limits))
        except RejectedEvent as exc:
            rejections.append(Rejection(exc.reason, exc.detail, _span_bytes(span, payload), index))
        except Exception as exc:  # noqa: BLE001 - a span value no check foresaw: this span only, never the batch
            rejections.append(Rejection(INTERNAL_ERROR, unforeseen(exc), _span_bytes(span, payload), index))
    return events, rejections, skipped


def _span_bytes(span: Span, payload: bytes) -> bytes:
    """The span for its dead letter; the whole message when the span's values have no JSON spelling."""
    try:
        return span.as_json()
    except (TypeError, ValueError, OverflowError):
        return payload
