"""Every boundary where outside bytes become our values, fuzzed: an input parses or is rejected, nothing else.

Inputs are generated near the valid shape (the contract's field names with values of every JSON
type, numbers at and past their limits, non-finite doubles where the encoding can carry them) and
as raw bytes. A parser may only accept or raise its own rejection; the intake's `internal_error`
guard must never be what catches a generated input, since that guard is for what nobody foresaw.

`make test` runs a bounded, derandomized number of examples per boundary (`SPENDWATCH_FUZZ_EXAMPLES`,
default 150); `make fuzz` runs 100,000 each with fresh randomness.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.parse
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from alerting.silences import _parse_silence
from alerting.slack_clicks import BUTTONS, _parse_click
from streams.errors import RejectedEvent
from streams.input.cloudevents import from_binary, unwrap
from streams.input.commands import parse_command
from streams.input.dcgm import gpu_samples
from streams.input.events import INTERNAL_ERROR, parse_usage
from streams.input.intake import RawMessage, take_in
from streams.input.litellm import split_batch, usage_event
from streams.input.otlp import SpanFields, decode_spans

EXAMPLES = int(os.environ.get("SPENDWATCH_FUZZ_EXAMPLES", "150"))
NOW = 1_796_000_000.0
fuzz = settings(max_examples=EXAMPLES, deadline=None, derandomize="SPENDWATCH_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], database=None)
TOPICS = {"usage": "usage", "gpu": "gpu", "runs": "runs"}

# Numbers at and past every limit the contract names: 2**53 tokens, 1e11 (ms vs s), 2**63 and 2**64.
edge_ints = st.sampled_from([0, 1, -1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), 10**11, 10**30])
numbers = st.one_of(st.integers(), edge_ints, st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([0.5, 1e11, 1e12, 1e308, -0.0, 5e-324]))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20),
                    st.sampled_from(["", "gpt-4o", "openai/gpt-4o", "2026-12-07T00:00:00Z", "9999-12-31T23:59:59+14:00",
                                     "0001-01-01T00:00:00-12:00", "\n", "a" * 300, "started", "H100"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8),
                                                                                                 inner, max_size=3),
                           max_leaves=6)
times = st.one_of(st.just(NOW - 60), st.floats(min_value=-1e20, max_value=1e20, allow_nan=False), json_values,
                  st.datetimes().map(lambda d: d.isoformat() + "Z"))

USAGE_FIELDS = ("team", "model", "endpoint", "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens",
                "cost_usd", "event_id", "provider", "user", "service", "product", "latency_ms")
GPU_FIELDS = ("team", "run_id", "gpu_id", "gpu_type", "price_per_gpu_hour_usd", "interval_s", "utilization",
              "power_w", "memory_used_mb", "node", "endpoint")
RUN_FIELDS = ("team", "run_id", "status", "estimated_cost_usd", "ceiling_usd", "gpus", "gpu_type", "expected_hours")


def near(fields: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the kind's field names (each present or not) holding values of any JSON type."""
    return st.fixed_dictionaries({}, optional={"ts": times, **{name: json_values for name in fields}})


def as_message(elements: Any) -> bytes:
    """JSON as a producer might write it: the standard library spells any integer, and NaN and Infinity."""
    return json.dumps(elements).encode()


def mutated(payload: bytes, data: st.DataObject) -> bytes:
    """The payload with a run of bytes replaced: broken UTF-8, truncation, stray structure."""
    if not payload:
        return data.draw(st.binary(max_size=64))
    start = data.draw(st.integers(0, len(payload) - 1))
    end = data.draw(st.integers(start, len(payload)))
    return payload[:start] + data.draw(st.binary(max_size=16)) + payload[end:]


def intake_of(messages: list[RawMessage], otlp: bool = False) -> Any:
    topics = {**TOPICS, "spans": "usage"}
    return take_in(messages, topics, NOW, 300.0, {"default": 2.0, "H100": 4.0},
                   otlp_topics={"spans": SpanFields()} if otlp else None)


def empty_array(payload: bytes) -> bool:
    """`[]`, however spaced: the one message that holds nothing to count or to refuse."""
    try:
        return bool(orjson.loads(payload) == [])
    except orjson.JSONDecodeError:
        return False


def assert_foreseen(intake: Any) -> None:
    """Every rejection named by a check of ours, none by the guard for the unforeseen."""
    unforeseen = [dead.rejection.detail for dead in intake.dead_letters if dead.rejection.reason == INTERNAL_ERROR]
    assert not unforeseen, f"an input escaped every check: {unforeseen}"


@pytest.mark.parametrize("kind, fields", [("usage", USAGE_FIELDS), ("gpu", GPU_FIELDS), ("runs", RUN_FIELDS)])
@fuzz
@given(data=st.data())
def test_json_events_parse_or_are_rejected(kind: str, fields: tuple[str, ...], data: st.DataObject) -> None:
    elements = data.draw(st.one_of(near(fields), st.lists(near(fields), max_size=4), json_values))
    payload = as_message(elements)
    if data.draw(st.booleans()):
        payload = mutated(payload, data)
    intake = intake_of([RawMessage(kind, 0, 7, payload)])
    assert_foreseen(intake)
    assert intake.accepted + len(intake.dead_letters) >= 1 or empty_array(payload)


@fuzz
@given(data=st.data())
def test_cloudevents_parse_or_are_rejected(data: st.DataObject) -> None:
    attributes = st.fixed_dictionaries({}, optional={
        "specversion": st.one_of(st.just("1.0"), json_values), "id": json_values, "source": json_values,
        "type": json_values, "time": times, "subject": json_values, "datacontenttype": json_values,
        "data": st.one_of(near(USAGE_FIELDS), json_values), "data_base64": st.one_of(st.text(max_size=40),
                                                                                   json_values)})
    envelope = data.draw(attributes)
    with contextlib.suppress(RejectedEvent):
        unwrap(envelope)
    headers = {f"ce_{name}": data.draw(st.binary(max_size=20)) for name in
               data.draw(st.lists(st.sampled_from(["specversion", "id", "source", "type", "time", "subject"])))}
    if data.draw(st.booleans()):
        headers["ce_specversion"] = b"1.0"
    value = mutated(as_message(data.draw(near(USAGE_FIELDS))), data) if data.draw(st.booleans()) \
        else as_message(data.draw(near(USAGE_FIELDS)))
    with contextlib.suppress(RejectedEvent):
        from_binary(headers, value)
    assert_foreseen(intake_of([RawMessage("usage", 0, 1, as_message(envelope)),
                               RawMessage("usage", 0, 2, value, headers)]))


LITELLM_FIELDS = ("id", "model", "model_group", "custom_llm_provider", "prompt_tokens", "completion_tokens",
                  "response_cost", "startTime", "endTime", "status", "end_user", "request_tags", "error_information")
litellm_metadata = st.fixed_dictionaries({}, optional={
    "user_api_key_team_alias": json_values, "user_api_key_team_id": json_values, "user_api_key_user_id": json_values,
    "spend_logs_metadata": json_values, "requester_metadata": json_values})
litellm_records = st.fixed_dictionaries({}, optional={
    **{name: json_values for name in LITELLM_FIELDS}, "endTime": times, "startTime": times,
    "metadata": st.one_of(litellm_metadata, json_values)})


@fuzz
@given(data=st.data())
def test_litellm_records_parse_or_are_rejected(data: st.DataObject) -> None:
    records = data.draw(st.lists(st.one_of(litellm_records, json_values), max_size=4))
    body = data.draw(st.sampled_from([as_message(records), b"\n".join(as_message(r) for r in records)]))
    if data.draw(st.booleans()):
        body = mutated(body, data)
    try:
        split = split_batch(body)
    except ValueError:
        return
    default_team = data.draw(st.one_of(st.none(), st.just("ops")))
    for record in split:
        with contextlib.suppress(RejectedEvent):
            parse_usage(usage_event(record, "endpoint", "team", default_team), NOW, 300.0)


span_values = st.one_of(st.text(max_size=12), st.integers(-(2**63), 2**63 - 1), st.booleans(),
                        st.floats(allow_nan=True, allow_infinity=True))
SPAN_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens",
             "gen_ai.request.model", "gen_ai.response.model", "gen_ai.system", "team", "service.name")


def _set(attribute: Any, value: Any) -> None:
    if isinstance(value, bool):
        attribute.value.bool_value = value
    elif isinstance(value, int):
        attribute.value.int_value = value
    elif isinstance(value, float):
        attribute.value.double_value = value
    else:
        attribute.value.string_value = value


def otlp_request(data: st.DataObject) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(data.draw(st.integers(1, 2))):
        resource_spans = request.resource_spans.add()
        for key, value in data.draw(st.dictionaries(st.sampled_from(SPAN_KEYS), span_values, max_size=3)).items():
            attribute = resource_spans.resource.attributes.add()
            attribute.key = key
            _set(attribute, value)
        for _ in range(data.draw(st.integers(0, 3))):
            span = resource_spans.scope_spans.add().spans.add()
            span.trace_id = data.draw(st.binary(max_size=16))
            span.span_id = data.draw(st.binary(max_size=8))
            span.end_time_unix_nano = data.draw(st.one_of(st.integers(0, 2**64 - 1), st.just(int(NOW * 1e9))))
            for key, value in data.draw(st.dictionaries(st.sampled_from(SPAN_KEYS), span_values, max_size=6)).items():
                attribute = span.attributes.add()
                attribute.key = key
                _set(attribute, value)
    return request


@fuzz
@given(data=st.data())
def test_otlp_proto_spans_parse_or_are_rejected(data: st.DataObject) -> None:
    payload = otlp_request(data).SerializeToString()
    if data.draw(st.booleans()):
        payload = mutated(payload, data)
    decode_spans(payload, SpanFields(), NOW, 300.0)
    assert_foreseen(intake_of([RawMessage("spans", 0, 3, payload)], otlp=True))


@fuzz
@given(data=st.data())
def test_otlp_json_spans_parse_or_are_rejected(data: st.DataObject) -> None:
    attribute = st.fixed_dictionaries({"key": st.one_of(st.sampled_from(SPAN_KEYS), json_values)}, optional={
        "value": st.one_of(st.dictionaries(st.sampled_from(["stringValue", "intValue", "doubleValue", "boolValue"]),
                                           json_values, max_size=2), json_values)})
    span = st.fixed_dictionaries({}, optional={
        "traceId": json_values, "spanId": json_values, "name": json_values,
        "attributes": st.lists(attribute, max_size=5),
        "endTimeUnixNano": st.one_of(st.integers(0, 2**64).map(str), json_values)})
    document = {"resourceSpans": data.draw(st.one_of(json_values, st.lists(st.fixed_dictionaries({}, optional={
        "resource": st.fixed_dictionaries({}, optional={"attributes": st.lists(attribute, max_size=3)}),
        "scopeSpans": st.lists(st.fixed_dictionaries({}, optional={"spans": st.lists(span, max_size=3)}),
                               max_size=2)}), max_size=2)))}
    payload = as_message(document)
    if data.draw(st.booleans()):
        payload = mutated(payload, data)
    decode_spans(payload, SpanFields(), NOW, 300.0)
    assert_foreseen(intake_of([RawMessage("spans", 0, 3, payload)], otlp=True))


DCGM_LINE = 'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-1",Hostname="n1",modelName="NVIDIA H100",team="a",run="r"} 42\n'


@fuzz
@given(data=st.data())
def test_dcgm_pages_parse_or_are_rejected(data: st.DataObject) -> None:
    value = data.draw(st.sampled_from(["42", "NaN", "+Inf", "-Inf", "1e400", "x", ""]))
    page = (DCGM_LINE.replace(" 42", f" {value}") * data.draw(st.integers(1, 3))).encode()
    if data.draw(st.booleans()):
        page = mutated(page, data)
    with contextlib.suppress(ValueError):
        gpu_samples(page.decode(errors="replace"), NOW, "team", "run", 15.0, ["H100", "default"])


@fuzz
@given(data=st.data())
def test_action_commands_parse_or_are_rejected(data: st.DataObject) -> None:
    command = data.draw(st.fixed_dictionaries({}, optional={
        name: json_values for name in ("action_id", "team", "endpoint", "run_id", "reason", "alert_id", "ts")} | {
        "action": st.one_of(st.sampled_from(["block_team", "stop_run", "throttle_endpoint", "unblock_team"]),
                            json_values), "dry_run": st.one_of(st.booleans(), json_values)}))
    payload = as_message(command)
    if data.draw(st.booleans()):
        payload = mutated(payload, data)
    try:
        parsed = parse_command(payload)
    except RejectedEvent:
        return
    assert isinstance(parsed["dry_run"], bool) and isinstance(parsed["team"], str)


def poison_span(end_unix_nano: int, input_tokens: float) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.end_time_unix_nano = b"\x01" * 16, b"\x02" * 8, end_unix_nano
    for key, value in (("gen_ai.usage.input_tokens", input_tokens), ("gen_ai.request.model", "gpt-4o"),
                       ("team", "search")):
        attribute = span.attributes.add()
        attribute.key = key
        _set(attribute, value)
    return request.SerializeToString()


@pytest.mark.parametrize("end_unix_nano, input_tokens, reason", [
    (int(NOW * 1e9), float("inf"), "out_of_range"), (int(NOW * 1e9), float("nan"), "out_of_range"),
    (2**64 - 1, 10.0, "future_timestamp"), (2**64 - 1, float("inf"), "future_timestamp")])
def test_the_poison_spans_are_rejected_by_name_not_by_the_guard(end_unix_nano: int, input_tokens: float,
                                                                 reason: str) -> None:
    """The issue's poison: a token count that is not a finite number, an end time past any clock."""
    events, rejections, _ = decode_spans(poison_span(end_unix_nano, input_tokens), SpanFields(), NOW, 300.0)
    assert events == [] and [r.reason for r in rejections] == [reason]
    assert orjson.loads(rejections[0].payload)["spanId"] == "02" * 8


@fuzz
@given(data=st.data())
def test_silence_bodies_parse_or_are_rejected(data: st.DataObject) -> None:
    """The inner parser, not the guard around it: a generated body that reached the guard is a defect."""
    match = st.one_of(st.dictionaries(st.sampled_from(["team", "endpoint", "kind", "severity", "run_id"]),
                                      json_values, max_size=3), json_values)
    body = data.draw(st.one_of(json_values, st.fixed_dictionaries({}, optional={
        "match": match, "ends_at": times, "starts_at": times, "comment": json_values, "created_by": json_values})))
    with contextlib.suppress(ValueError):
        _parse_silence(body, NOW, None)


@fuzz
@given(data=st.data())
def test_slack_clicks_parse_or_are_rejected(data: st.DataObject) -> None:
    incident = st.fixed_dictionaries({}, optional={name: json_values for name in
                                                   ("dedup_key", "team", "endpoint", "kind", "severity", "alert_id")})
    action = st.fixed_dictionaries({}, optional={
        "action_id": st.one_of(st.sampled_from(sorted(BUTTONS)), json_values),
        "value": st.one_of(incident.map(json.dumps), json_values)})
    payload = st.fixed_dictionaries({}, optional={
        "type": st.one_of(st.just("block_actions"), json_values), "actions": st.one_of(st.lists(action, max_size=2),
                                                                                       json_values),
        "user": json_values, "channel": json_values, "container": json_values,
        "message": st.one_of(st.fixed_dictionaries({}, optional={"ts": json_values, "blocks": json_values}),
                             json_values)})
    form = urllib.parse.urlencode({"payload": as_message(data.draw(payload)).decode()}).encode()
    if data.draw(st.booleans()):
        form = mutated(form, data)
    with contextlib.suppress(ValueError):
        _parse_click(form)
