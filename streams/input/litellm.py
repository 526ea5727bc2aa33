"""LiteLLM's `generic_api` callback records (its StandardLoggingPayload) as token-usage events.

LiteLLM POSTs a batch of records as a JSON array (`log_format: json_array`, its default),
as newline-delimited JSON (`ndjson`) or one record a request (`single`), always with
`Content-Type: application/json`; `split_batch` takes all three apart. `usage_event` maps one
record (https://docs.litellm.ai/docs/proxy/logging_spec):

| event field | from the record |
| --- | --- |
| `ts` | `endTime` (else `startTime`): epoch seconds or RFC 3339 |
| `event_id` | `id`: LiteLLM re-sending a batch is counted once |
| `team` | `metadata.user_api_key_team_alias`, else `metadata.user_api_key_team_id` (the key's team); |
|        | else `<team_key>` as for the endpoint below; else `default_team`; else rejected |
| `endpoint` | `<endpoint_key>` in `metadata.spend_logs_metadata` or `.requester_metadata`, or a |
|            | `request_tags` entry `<endpoint_key>:<value>`; else `model_group`; else `model` |
| `model`, `prompt_tokens`, `completion_tokens` | the same names (a provider prefix is moved to `provider` |
|        | when the event is parsed: streams/input/providers.py) |
| `cost_usd` | `response_cost`; a failure without one costs nothing |
| `user` | `metadata.user_api_key_user_id` unless LiteLLM's placeholder `default_user_id`, else `end_user` |
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

A record that cannot be an event is dead-lettered as `read_fields` gives it: what the mapping
read, never the prompt (`messages`) or the completion (`response`).
"""

from __future__ import annotations

from typing import Any

import orjson

from streams.errors import RejectedEvent

#: Event ids from LiteLLM are prefixed so they never collide with a native producer's ids.
ID_PREFIX = "litellm-"
#: The user LiteLLM puts on a key with none (the master key): no one's name.
PLACEHOLDER_USER = "default_user_id"
#: The record's fields `usage_event` reads, and of them the objects whose named entries it reads.
READ_FIELDS = ("id", "status", "endTime", "startTime", "model", "model_group", "prompt_tokens",
               "completion_tokens", "response_cost", "custom_llm_provider", "end_user")
READ_METADATA = ("user_api_key_team_alias", "user_api_key_team_id", "user_api_key_user_id")
LABEL_HOLDERS = ("spend_logs_metadata", "requester_metadata")


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


def _tags(record: dict[str, Any]) -> list[Any]:
    tags = record.get("request_tags")
    return tags if isinstance(tags, list) else []


def _labelled(record: dict[str, Any], metadata: dict[str, Any], key: str) -> str | None:
    """The request's own `key`: in spend_logs_metadata or requester_metadata, else a tag `key:<value>`."""
    for holder in LABEL_HOLDERS:
        values = metadata.get(holder)
        if isinstance(values, dict) and _text(values.get(key)):
            return str(values[key])
    for tag in _tags(record):
        if isinstance(tag, str) and tag.startswith(f"{key}:") and tag[len(key) + 1:].strip():
            return tag[len(key) + 1:]
    return None


def _team(record: dict[str, Any], metadata: dict[str, Any], team_key: str, default_team: str | None) -> str:
    """The key's team (a caller cannot set it); else the request's own; else the default."""
    team = (_text(metadata.get("user_api_key_team_alias")) or _text(metadata.get("user_api_key_team_id"))
            or _labelled(record, metadata, team_key) or default_team)
    if team is None:
        raise RejectedEvent("missing_field", "no team: looked at the key's team (metadata.user_api_key_team_alias, "
                            f"user_api_key_team_id), the request's {team_key!r} (spend_logs_metadata, "
                            f"requester_metadata, tag {team_key}:<name>) and SPENDWATCH_LITELLM_DEFAULT_TEAM (unset)")
    return team


def read_fields(record: Any, endpoint_key: str, team_key: str) -> dict[str, Any]:
    """What `usage_event` reads of a record, and nothing else: a dead letter carries no prompt or completion."""
    if not isinstance(record, dict):
        return {"not_object": type(record).__name__}
    kept = {name: record[name] for name in READ_FIELDS if name in record}
    metadata = record.get("metadata")
    if isinstance(metadata, dict):
        kept_metadata = {name: metadata[name] for name in READ_METADATA if name in metadata}
        for holder in LABEL_HOLDERS:
            values = metadata.get(holder)
            if isinstance(values, dict):
                kept_metadata[holder] = {key: values[key] for key in (endpoint_key, team_key) if key in values}
        kept["metadata"] = kept_metadata
    tags = [tag for tag in _tags(record) if isinstance(tag, str) and tag.startswith((f"{endpoint_key}:",
                                                                                     f"{team_key}:"))]
    if tags:
        kept["request_tags"] = tags
    errors = record.get("error_information")
    if isinstance(errors, dict) and "llm_provider" in errors:
        kept["error_information"] = {"llm_provider": errors["llm_provider"]}
    return kept


def usage_event(record: Any, endpoint_key: str, team_key: str = "team",
                default_team: str | None = None) -> dict[str, Any]:
    """One record as a token-usage event (CONTRACT.md); RejectedEvent when it cannot be one."""
    if not isinstance(record, dict):
        raise RejectedEvent("not_object", f"a LiteLLM record is an object, got {type(record).__name__}")
    metadata: dict[str, Any] = record["metadata"] if isinstance(record.get("metadata"), dict) else {}
    team = _team(record, metadata, team_key, default_team)
    failed = record.get("status") == "failure"
    event: dict[str, Any] = {
        "ts": record.get("endTime") if record.get("endTime") is not None else record.get("startTime"),
        "team": team,
        "model": record.get("model"),
        "endpoint": (_labelled(record, metadata, endpoint_key) or _text(record.get("model_group"))
                     or _text(record.get("model"))),
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
    key_user = _text(metadata.get("user_api_key_user_id"))
    user = (key_user if key_user != PLACEHOLDER_USER else None) or _text(record.get("end_user"))
    errors: dict[str, Any] = record["error_information"] if isinstance(record.get("error_information"), dict) else {}
    provider = _text(record.get("custom_llm_provider")) or _text(errors.get("llm_provider"))
    for name, value in (("user", user), ("provider", provider)):
        if value is not None:
            event[name] = value
    if failed:
        event["status"] = "failure"
    return {name: value for name, value in event.items() if value is not None}
