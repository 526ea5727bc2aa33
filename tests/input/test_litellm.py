"""LiteLLM's generic_api records mapped to token-usage events (streams/input/litellm.py)."""

from __future__ import annotations

import orjson
import pytest

from streams.errors import RejectedEvent
from streams.input.events import parse_usage
from streams.input.litellm import read_fields, split_batch, usage_event
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


def keyless(n: int, **change) -> dict:
    """A record as LiteLLM without its database sends it: the key has no team, the master key's user."""
    record = standard_logging_payload(n, team_alias=None, team_id=None, ts=NOW - 60)
    record["metadata"]["user_api_key_user_id"] = "default_user_id"
    return dict(record, **change)


def test_a_call_whose_key_has_no_team_takes_the_requests_team_then_the_default():
    """Before: LiteLLM without its database sent no team, and every call was dead-lettered."""
    in_metadata = keyless(1)
    in_metadata["metadata"]["spend_logs_metadata"] = {"team": "checkout", "endpoint": "cart"}
    event = usage_event(in_metadata, "endpoint")
    assert (event["team"], event["endpoint"]) == ("checkout", "cart")
    requester = keyless(2)
    requester["metadata"]["requester_metadata"] = {"owner": "billing"}
    assert usage_event(requester, "endpoint", team_key="owner")["team"] == "billing"
    assert usage_event(keyless(3, request_tags=["prod", "team:search"]), "endpoint")["team"] == "search"
    assert usage_event(keyless(4), "endpoint", default_team="shared")["team"] == "shared"
    parse_usage(usage_event(keyless(4), "endpoint", default_team="shared"), NOW)


def test_the_keys_team_wins_over_what_the_request_says():
    record = standard_logging_payload(5)
    record["request_tags"] = ["team:someone-else"]
    assert usage_event(record, "endpoint", default_team="shared")["team"] == "search"


def test_a_call_with_no_team_anywhere_is_rejected_naming_the_three_places_looked_at():
    with pytest.raises(RejectedEvent) as info:
        usage_event(keyless(6), "endpoint")
    detail = info.value.detail
    assert info.value.reason == "missing_field"
    assert "user_api_key_team_alias" in detail and "spend_logs_metadata" in detail and "team:<name>" in detail
    assert "SPENDWATCH_LITELLM_DEFAULT_TEAM" in detail


def test_the_master_keys_placeholder_user_gives_way_to_the_end_user():
    """Before: every call on the master key was the user `default_user_id`."""
    assert usage_event(keyless(7, end_user="customer-42"), "endpoint", default_team="t")["user"] == "customer-42"
    assert "user" not in usage_event(keyless(8), "endpoint", default_team="t")
    assert usage_event(standard_logging_payload(9, ts=NOW - 60), "endpoint")["user"] == "user-0"


def test_a_litellm_model_is_named_as_the_catalog_names_it_once_parsed():
    record = dict(standard_logging_payload(10, ts=NOW - 60), model="openai/gpt-4o", custom_llm_provider="openai")
    parsed = parse_usage(usage_event(record, "endpoint"), NOW)
    assert (parsed.model, parsed.provider) == ("gpt-4o", "openai")


def test_what_a_dead_letter_keeps_is_only_what_the_mapping_read():
    record = keyless(11, request_tags=["prod", "team:", "endpoint:cart"])
    record["metadata"]["spend_logs_metadata"] = {"endpoint": "cart", "note": "private"}
    kept = read_fields(record, "endpoint", "team")
    assert "messages" not in kept and "response" not in kept and "hidden_params" not in kept
    assert kept["id"] == record["id"] and kept["model"] == record["model"]
    assert kept["metadata"]["spend_logs_metadata"] == {"endpoint": "cart"}
    assert kept["request_tags"] == ["team:", "endpoint:cart"]
    assert read_fields([1, 2], "endpoint", "team") == {"not_object": "list"}
