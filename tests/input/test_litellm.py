"""LiteLLM's generic_api records mapped to token-usage events (streams/input/litellm.py)."""

from __future__ import annotations

import orjson
import pytest

from streams.errors import RejectedEvent
from streams.input.events import parse_usage
from streams.input.litellm import split_batch, usage_event
from tests.litellm_payloads import standard_logging_payload

NOW = 1_764_590_460.0


def test_a_success_record_maps_to_an_event_the_native_parser_accepts():
    record = standard_logging_payload(1, ts=NOW - 60)
    event = usage_event(record, "endpoint")
    assert event["team"] == "search" and event["endpoint"] == "chat-default" and event["model"] == "gpt-4o"
    assert event["event_id"] == "litellm-chatcmpl-00000001" and event["provider"] == "openai"
    assert event["user"] == "user-1" and event["cost_usd"] == record["response_cost"]
    parsed = parse_usage(event, NOW)
    assert (parsed.prompt_tokens, parsed.completion_tokens) == (record["prompt_tokens"], record["completion_tokens"])
    assert parsed.ts == record["endTime"]


def test_a_failure_is_a_request_with_no_cost_unless_given():
    record = standard_logging_payload(2, failed=True, ts=NOW - 60)
    event = usage_event(record, "endpoint")
    assert event["status"] == "failure" and event["cost_usd"] == 0.0 and event["completion_tokens"] == 0
    assert parse_usage(event, NOW).cost_usd == 0.0
    costed = dict(record, response_cost=0.0004)
    assert usage_event(costed, "endpoint")["cost_usd"] == 0.0004


def test_the_team_falls_back_to_its_id_and_a_record_without_one_is_rejected():
    assert usage_event(standard_logging_payload(3, team_alias=None), "endpoint")["team"] == "team-7f3a"
    with pytest.raises(RejectedEvent) as info:
        usage_event(standard_logging_payload(4, team_alias=None, team_id=None), "endpoint")
    assert info.value.reason == "missing_field" and "no team" in info.value.detail


def test_the_endpoint_comes_from_metadata_or_a_tag_before_the_model_group():
    assert usage_event(standard_logging_payload(5, endpoint="checkout-bot"), "endpoint")["endpoint"] == "checkout-bot"
    tagged = dict(standard_logging_payload(6), request_tags=["prod", "feature:summaries"])
    assert usage_event(tagged, "feature")["endpoint"] == "summaries"
    assert usage_event(tagged, "endpoint")["endpoint"] == "chat-default"


@pytest.mark.parametrize("log_format", ["json_array", "ndjson", "single"])
def test_all_three_log_formats_split_into_the_same_records(log_format):
    records = [standard_logging_payload(n) for n in range(3)]
    if log_format == "json_array":
        body = orjson.dumps(records)
    elif log_format == "ndjson":
        body = b"\n".join(orjson.dumps(r) for r in records)
    else:
        body, records = orjson.dumps(records[0]), records[:1]
    assert split_batch(body) == records


def test_a_body_that_is_no_json_at_all_is_an_error():
    with pytest.raises(ValueError, match="not JSON"):
        split_batch(b'{"id": 1}\n{broken')
