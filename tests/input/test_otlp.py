"""OpenTelemetry GenAI spans, in the bytes the SDK's OTLP encoder makes, as usage events."""

from __future__ import annotations

import time

import pytest

from streams.input.otlp import SpanFields, decode_spans, spans_of
from tests.otel_spans import otlp_json, otlp_proto, record_spans

CALLS = [
    {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
     "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300},
    {"gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-3-5-sonnet", "gen_ai.system": "anthropic",
     "gen_ai.usage.input_tokens": 800, "gen_ai.usage.output_tokens": 90},
]


@pytest.mark.parametrize("encode", [otlp_proto, otlp_json])
def test_genai_spans_become_events_and_other_spans_are_skipped(encode):
    request = record_spans(CALLS)
    events, rejections, skipped = decode_spans(encode(request), SpanFields(), time.time(), 300.0)
    assert rejections == [] and skipped == 2  # the two HTTP spans around the calls
    assert [(e.team, e.endpoint, e.model, e.provider, e.prompt_tokens, e.completion_tokens) for e in events] == [
        ("search", "chat-api", "gpt-4o-2024-08-06", "openai", 1200, 300),
        ("search", "chat-api", "claude-3-5-sonnet", "anthropic", 800, 90)]
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert events[0].event_id == f"otel-{span.trace_id.hex()}-{span.span_id.hex()}"
    assert events[0].ts == pytest.approx(span.end_time_unix_nano / 1e9)


def test_both_encodings_read_the_same_spans():
    request = record_spans(CALLS)
    assert spans_of(otlp_proto(request)) == spans_of(otlp_json(request))


def test_team_and_endpoint_come_from_the_configured_attributes():
    request = record_spans([dict(CALLS[0], **{"app.feature": "summaries", "cost.center": "ads"})], team=None)
    events, rejections, _ = decode_spans(otlp_proto(request), SpanFields(team="cost.center", endpoint="app.feature"),
                                         time.time(), 300.0)
    assert rejections == [] and (events[0].team, events[0].endpoint) == ("ads", "summaries")


def test_a_genai_span_with_no_team_is_rejected_and_bytes_that_are_no_otlp_too():
    events, rejections, _ = decode_spans(otlp_proto(record_spans(CALLS[:1], team=None)), SpanFields(),
                                         time.time(), 300.0)
    # The LLM span ends first: index 0.
    assert events == [] and [(r.reason, r.index) for r in rejections] == [("missing_field", 0)]
    assert b"gen_ai.usage.input_tokens" in rejections[0].payload
    _, rejections, _ = decode_spans(b"\xff\x00 not a protobuf", SpanFields(), time.time(), 300.0)
    assert [r.reason for r in rejections] == ["not_otlp"]
