"""A click on an incident message's buttons, as Slack posts it (a `block_actions` interaction),
and what it turns into: PagerDuty's `acknowledge` for the incident, or a 4-hour silence.

Slack posts `payload=<json>` form-encoded to the request URL and signs the raw body; the
worker checks the signature (slack-sdk's `SignatureVerifier`) before anything here runs.

>>> import urllib.parse
>>> value = orjson.dumps({"dedup_key": "k1", "team": "search", "endpoint": "chat", "kind": "flash_spike",
...                       "severity": "error", "alert_id": "a1"}).decode()
>>> payload = {"type": "block_actions", "user": {"id": "U1", "username": "ana"}, "channel": {"id": "C1"},
...            "message": {"ts": "1700000000.000100", "blocks": []},
...            "actions": [{"action_id": "acknowledge", "value": value, "type": "button"}]}
>>> click = parse_click(urllib.parse.urlencode({"payload": orjson.dumps(payload).decode()}).encode())
>>> click.action, click.user, click.incident["team"]
('acknowledge', 'ana', 'search')
"""

from __future__ import annotations

import hashlib
import urllib.parse
from dataclasses import dataclass
from typing import Any

import orjson

from alerting.model import rfc3339
from alerting.notifier import Alert
from alerting.pagerduty import ACKNOWLEDGED
from alerting.slack import BUTTONS, SILENCE

SILENCE_S = 4 * 3600
INCIDENT_FIELDS = ("dedup_key", "team", "endpoint", "kind", "severity", "alert_id")


@dataclass(frozen=True)
class Click:
    action: str  # alerting.slack.ACKNOWLEDGE or SILENCE
    user: str  # who clicked: their Slack user name (else id)
    channel: str
    message_ts: str
    blocks: list[dict[str, Any]]  # the message as it stands
    incident: dict[str, Any]  # what the button carries: INCIDENT_FIELDS


def parse_click(form: bytes) -> Click:
    """The click a signed interaction request carries; ValueError when it is not one of our buttons."""
    fields = urllib.parse.parse_qs(form.decode(), strict_parsing=True)
    payload = orjson.loads(fields["payload"][0])
    if payload.get("type") != "block_actions":
        raise ValueError(f"not a button click: {payload.get('type')!r}")
    [action] = payload["actions"][:1]
    if action.get("action_id") not in BUTTONS:
        raise ValueError(f"not one of our buttons: {action.get('action_id')!r}")
    incident = orjson.loads(action["value"])
    if not isinstance(incident, dict) or not all(isinstance(incident.get(name), str) for name in
                                                 ("dedup_key", "team", "kind", "severity")):
        raise ValueError("the button's value is not an incident")
    user = payload.get("user") or {}
    channel = (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get("channel_id")
    message = payload.get("message") or {}
    return Click(action=action["action_id"], user=str(user.get("username") or user.get("name") or user.get("id")),
                 channel=str(channel), message_ts=str(message.get("ts") or ""), blocks=list(message.get("blocks", [])),
                 incident={name: incident.get(name) for name in INCIDENT_FIELDS})


def acknowledgement(click: Click, now: float) -> Alert:
    """The message that acknowledges the incident at PagerDuty: same dedup_key, one per incident."""
    incident = click.incident
    return {**incident, "alert_id": hashlib.sha256(f"{incident['dedup_key']}|{ACKNOWLEDGED}".encode()).hexdigest()[:32],
            "status": ACKNOWLEDGED, "ts": rfc3339(now), "acknowledged_by": click.user}


def silence_request(click: Click, now: float) -> dict[str, Any]:
    """A `POST /silences` body for the clicked incident's key, for `SILENCE_S`."""
    incident = click.incident
    match = {"team": incident["team"], "kind": incident["kind"]}
    if incident.get("endpoint"):
        match["endpoint"] = incident["endpoint"]
    return {"match": match, "ends_at": rfc3339(now + SILENCE_S), "created_by": click.user,
            "comment": f"silenced from Slack for {SILENCE_S // 3600} h (incident {incident['dedup_key'][:12]})"}


def note(click: Click, now: float, silence_id: str | None = None) -> str:
    if click.action == SILENCE:
        return f"Silenced for {SILENCE_S // 3600} h by {click.user} at {rfc3339(now)} (silence {silence_id})"
    return f"Acknowledged by {click.user} at {rfc3339(now)}"
