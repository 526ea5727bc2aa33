"""CloudEvents 1.0 on the usage topic (OpenMeter's ingestion format), in both Kafka modes.

- Structured: the message is the envelope, `{"specversion": "1.0", "id", "source", "type",
  "time"?, "subject"?, "data": {usage event}}` (or an array of them, the batch format).
- Binary: the message value is the usage event, the attributes are `ce_` headers
  (`ce_specversion`, `ce_id`, `ce_source`, `ce_type`, `ce_time`, `ce_subject`).

Either way `data` is a token-usage event as CONTRACT.md defines it. The envelope fills what it
leaves out: `ts` from `time`, `event_id` from `source` and `id` (unique together, as the spec
requires, so a re-sent event counts once), and `team` from `subject` (OpenMeter's metered
customer). What the data says wins.

>>> event = unwrap({"specversion": "1.0", "id": "e1", "source": "/gateway", "type": "ai.usage", "subject": "search",
...     "time": "2026-12-01T10:00:00Z", "data": {"model": "gpt-4o", "prompt_tokens": 5, "completion_tokens": 1}})
>>> event["ts"], event["event_id"], event["team"], event["model"]
('2026-12-01T10:00:00Z', '/gateway#e1', 'search', 'gpt-4o')
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from streams.errors import RejectedEvent

SPEC_VERSION = "1.0"
HEADER_PREFIX = "ce_"
JSON_TYPES = ("application/json", "text/json")


def is_envelope(document: Mapping[str, Any]) -> bool:
    return "specversion" in document


def with_attributes(data: Any, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The usage event `data`, with what the envelope says filling what it leaves out."""
    if attributes.get("specversion") != SPEC_VERSION:
        raise RejectedEvent("bad_cloudevent", f"specversion must be {SPEC_VERSION!r}, "
                                              f"got {attributes.get('specversion')!r}"[:200])
    for name in ("id", "source", "type"):
        if not isinstance(attributes.get(name), str) or not attributes[name]:
            raise RejectedEvent("bad_cloudevent", f"the CloudEvents attribute {name!r} is required")
    content_type = attributes.get("datacontenttype")
    if content_type is not None and str(content_type).split(";")[0].strip() not in JSON_TYPES:
        raise RejectedEvent("bad_cloudevent", f"datacontenttype must be JSON, got {content_type!r}"[:200])
    if not isinstance(data, dict):
        raise RejectedEvent("bad_cloudevent", "data must be a JSON object: a token-usage event")
    event = dict(data)
    if "ts" not in event and attributes.get("time") is not None:
        event["ts"] = attributes["time"]
    if "event_id" not in event:
        event["event_id"] = f"{attributes['source']}#{attributes['id']}"
    if "team" not in event and attributes.get("subject") is not None:
        event["team"] = attributes["subject"]
    return event


def unwrap(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The usage event a structured-mode envelope carries."""
    data = envelope.get("data")
    if data is None and "data_base64" in envelope:
        try:
            data = orjson.loads(base64.b64decode(envelope["data_base64"], validate=True))
        except (binascii.Error, ValueError, TypeError) as exc:
            raise RejectedEvent("bad_cloudevent", f"data_base64 is not base64 JSON: {exc}"[:200]) from None
    return with_attributes(data, envelope)


def binary_attributes(headers: Mapping[str, bytes]) -> dict[str, str] | None:
    """The CloudEvents attributes of a binary-mode message's headers; None when it is not one."""
    if f"{HEADER_PREFIX}specversion" not in headers:
        return None
    attributes = {}
    for name, value in headers.items():
        if name.startswith(HEADER_PREFIX):
            try:
                attributes[name[len(HEADER_PREFIX):]] = value.decode()
            except UnicodeDecodeError:
                raise RejectedEvent("bad_cloudevent", f"header {name} is not UTF-8") from None
    if "content-type" in headers and "datacontenttype" not in attributes:
        attributes["datacontenttype"] = headers["content-type"].decode(errors="replace")
    return attributes


def from_binary(headers: Mapping[str, bytes], value: bytes) -> bytes | None:
    """A binary-mode message as the plain usage event it stands for; None when it is not one."""
    attributes = binary_attributes(headers)
    if attributes is None:
        return None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise RejectedEvent("not_json", f"the CloudEvent's data is not JSON: {exc}"[:200]) from None
    return orjson.dumps(with_attributes(data, attributes))
