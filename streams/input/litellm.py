"""LiteLLM's `generic_api` callback records (its StandardLoggingPayload) as token-usage events.

LiteLLM POSTs a batch of records as a JSON array (`log_format: json_array`, its default),
as newline-delimited JSON (`ndjson`) or one record a request (`single`), always with
`Content-Type: application/json`; `split_batch` takes all three apart. `usage_event` maps one
record (https://docs.litellm.ai/docs/proxy/logging_spec):

| event field | from the record |
| --- | --- |
| `ts` | `endTime` (else `startTime`): epoch seconds or RFC 3339 |
| `event_id` | `id`: LiteLLM re-sending a batch is counted once |
| `team` | `metadata.user_api_key_team_alias`, else `metadata.user_api_key_team_id` |
| `endpoint` | `<endpoint_key>` in `metadata.spend_logs_metadata` or `.requester_metadata`, or a |
|            | `request_tags` entry `<endpoint_key>:<value>`; else `model_group`; else `model` |
| `model`, `prompt_tokens`, `completion_tokens` | the same names |
| `cost_usd` | `response_cost`; a failure without one costs nothing |
| `user` | `metadata.user_api_key_user_id`, else `end_user` |
| `provider` | `custom_llm_provider`, else `error_information.llm_provider` |
| `status` | `failure` for a failed call (`status: failure`), which counts as a request |

>>> record = {"id": "chatcmpl-1", "status": "success", "endTime": 1764590400.5, "model": "gpt-4o",
...           "model_group": "chat", "prompt_tokens": 12, "completion_tokens": 3, "response_cost": 0.0002,
...           "metadata": {"user_api_key_team_alias": "search", "user_api_key_user_id": "ana"}}
>>> event = usage_event(record, endpoint_key="endpoint")
>>> event["team"], event["endpoint"], event["cost_usd"], event["event_id"]
('search', 'chat', 0.0002, 'litellm-chatcmpl-1')
>>> [r["id"] for r in split_batch(b'{"id": "a"}\\n{"id": "b"}\\n')]
['a', 'b']
"""

from __future__ import annotations

from typing import Any

import orjson

from streams.errors import RejectedEvent

#: Event ids from LiteLLM are prefixed so they never collide with a native producer's ids.
ID_PREFIX = "litellm-"


def split_batch(body: bytes) -> list[Any]:
    """The records of one POST in any of the three log formats; ValueError when it is none of them."""
    text = body.strip()
    if not text:
        return []
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:  # ndjson: one record a line
            return [orjson.loads(line) for line in text.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not JSON, a JSON array or newline-delimited JSON: {exc}") from None
    return document if isinstance(document, list) else [document]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _endpoint(record: dict[str, Any], metadata: dict[str, Any], endpoint_key: str) -> str | None:
    for holder in ("spend_logs_metadata", "requester_metadata"):
        values = metadata.get(holder)
        if isinstance(values, dict) and _text(values.get(endpoint_key)):
            return str(values[endpoint_key])
    for tag in record.get("request_tags") or []:
        if isinstance(tag, str) and tag.startswith(f"{endpoint_key}:") and tag[len(endpoint_key) + 1:].strip():
            return tag[len(endpoint_key) + 1:]
    return _text(record.get("model_group")) or _text(record.get("model"))


def usage_event(record: Any, endpoint_key: str) -> dict[str, Any]:
    """One record as a token-usage event (CONTRACT.md); RejectedEvent when it cannot be one."""
    if not isinstance(record, dict):
        raise RejectedEvent("not_object", f"a LiteLLM record is an object, got {type(record).__name__}")
    metadata: dict[str, Any] = record["metadata"] if isinstance(record.get("metadata"), dict) else {}
    team = _text(metadata.get("user_api_key_team_alias")) or _text(metadata.get("user_api_key_team_id"))
    if team is None:
        raise RejectedEvent("missing_field", "no team: the record's key has no team "
                                             "(metadata.user_api_key_team_alias or user_api_key_team_id)")
    failed = record.get("status") == "failure"
    event: dict[str, Any] = {
        "ts": record.get("endTime") if record.get("endTime") is not None else record.get("startTime"),
        "team": team,
        "model": record.get("model"),
        "endpoint": _endpoint(record, metadata, endpoint_key),
        "prompt_tokens": record.get("prompt_tokens") or 0,
        "completion_tokens": record.get("completion_tokens") or 0,
    }
    if record.get("id") is not None:
        event["event_id"] = f"{ID_PREFIX}{record['id']}"
    cost = record.get("response_cost")
    if cost is not None:
        event["cost_usd"] = cost
    elif failed:
        event["cost_usd"] = 0.0  # LiteLLM gave no cost for the failed call: a request, not an estimate
    user = _text(metadata.get("user_api_key_user_id")) or _text(record.get("end_user"))
    errors: dict[str, Any] = record["error_information"] if isinstance(record.get("error_information"), dict) else {}
    provider = _text(record.get("custom_llm_provider")) or _text(errors.get("llm_provider"))
    for name, value in (("user", user), ("provider", provider)):
        if value is not None:
            event[name] = value
    if failed:
        event["status"] = "failure"
    return {name: value for name, value in event.items() if value is not None}
