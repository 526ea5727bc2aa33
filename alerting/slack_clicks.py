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

A click is judged by what Slack signed, never by when it reaches us: the request's timestamp
(signed, and within 5 minutes of now, or the verifier refuses it) sets the silence's times and
the silence's id comes from the incident. So a repeated click extends the incident's silence,
and a captured click sent again writes nothing new, on whichever worker it lands.
"""

from __future__ import annotations

import hashlib
import math
import urllib.parse
from dataclasses import dataclass, replace
from typing import Any

import orjson

from alerting.model import rfc3339
from alerting.notifier import Alert
from alerting.pagerduty import ACKNOWLEDGED
from alerting.silences import NAME_MAX, Silence, SilenceBook, parse_silence
from alerting.slack import BUTTONS, after_click

SILENCE_S = 4 * 3600
INCIDENT_FIELDS = ("dedup_key", "team", "endpoint", "kind", "severity", "alert_id")
#: slack-sdk's SignatureVerifier refuses a request whose timestamp is further than this from now.
STALE_S = 5 * 60
#: The note a refused click leaves on the message (the buttons stay, to try again).
REFUSED = "Not silenced"


@dataclass(frozen=True)
class Click:
    action: str  # alerting.slack.ACKNOWLEDGE or SILENCE
    user: str  # who clicked: their Slack user name (else id)
    channel: str
    message_ts: str
    blocks: list[dict[str, Any]]  # the message as it stands
    incident: dict[str, Any]  # what the button carries: INCIDENT_FIELDS


#: The View button (alerting/slack.py): a link Slack opens itself; it still posts the click, which asks nothing of us.
VIEW = "view_incident"


def is_view_click(form: bytes) -> bool:
    """Whether a signed interaction is a click on View: answered 200 and otherwise ignored."""
    try:
        payload = orjson.loads(urllib.parse.parse_qs(form.decode(), strict_parsing=True)["payload"][0])
        return payload["actions"][0]["action_id"] == VIEW
    except Exception:  # noqa: BLE001 - anything else is judged by parse_click
        return False


def parse_click(form: bytes) -> Click:
    """The click a signed interaction request carries; ValueError when it is not one of our buttons.

    Nothing else escapes: a payload that makes this code raise something it did not foresee is
    refused like any other (`internal_error` and the exception's type, never its text).
    """
    try:
        return _parse_click(form)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - any surprise is this payload's fault: a 400, never a 500
        raise ValueError(f"internal_error: {type(exc).__name__}") from None


def _parse_click(form: bytes) -> Click:
    fields = urllib.parse.parse_qs(form.decode(), strict_parsing=True)
    if "payload" not in fields:
        raise ValueError("no payload field")
    payload = orjson.loads(fields["payload"][0])
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise ValueError("not a button click (block_actions)")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise ValueError("no action")
    action = actions[0]
    action_id = action.get("action_id")
    if not isinstance(action_id, str) or action_id not in BUTTONS:
        raise ValueError("not one of our buttons")
    value = action.get("value")
    incident = orjson.loads(value) if isinstance(value, str) else None
    if not isinstance(incident, dict) or not all(isinstance(incident.get(name), str) for name in
                                                 ("dedup_key", "team", "kind", "severity")):
        raise ValueError("the button's value is not an incident")
    user, channel, container, message = (_object(payload, name) for name in ("user", "channel", "container", "message"))
    return Click(action=action_id, user=str(user.get("username") or user.get("name") or user.get("id")),
                 channel=str(channel.get("id") or container.get("channel_id")), message_ts=str(message.get("ts") or ""),
                 blocks=_blocks(message.get("blocks", [])),
                 incident={name: incident.get(name) for name in INCIDENT_FIELDS})


def _object(payload: dict[str, Any], name: str) -> dict[str, Any]:
    found = payload.get(name) or {}
    if not isinstance(found, dict):
        raise ValueError(f"{name}: not an object")
    return found


def _blocks(blocks: Any) -> list[dict[str, Any]]:
    """The message's blocks, in the shape `after_click` rewrites (lists of objects), or ValueError."""
    if not isinstance(blocks, list) or not all(isinstance(block, dict) for block in blocks):
        raise ValueError("message.blocks: not a list of blocks")
    for block in blocks:
        elements = block.get("elements", [])
        if not isinstance(elements, list) or not all(isinstance(element, dict) for element in elements):
            raise ValueError("message.blocks: elements not a list of objects")
    return blocks


def acknowledgement(click: Click, now: float) -> Alert:
    """The message that acknowledges the incident at PagerDuty: same dedup_key, one per incident."""
    incident = click.incident
    return {**incident, "alert_id": hashlib.sha256(f"{incident['dedup_key']}|{ACKNOWLEDGED}".encode()).hexdigest()[:32],
            "status": ACKNOWLEDGED, "ts": rfc3339(now), "acknowledged_by": click.user}


def silence_request(click: Click, stamp: float) -> dict[str, Any]:
    """A `POST /silences` body for the clicked incident's key, for `SILENCE_S` from the click's `stamp`."""
    incident = click.incident
    match = {"team": incident["team"], "kind": incident["kind"]}
    if incident.get("endpoint"):
        match["endpoint"] = incident["endpoint"]
    return {"match": match, "ends_at": rfc3339(stamp + SILENCE_S), "created_by": click.user,
            "comment": _comment(click)}


def _comment(click: Click, extended_by: str | None = None) -> str:
    said = f"silenced from Slack for {SILENCE_S // 3600} h (incident {click.incident['dedup_key'][:12]})"
    return f"{said}, extended by {extended_by[:NAME_MAX]}" if extended_by else said


def incident_silences(dedup_key: str) -> str:
    """The id prefix of the silences clicks made for one incident: derived from its dedup_key."""
    return f"slack-{hashlib.sha256(dedup_key.encode()).hexdigest()[:16]}-"


def silence_for_click(click: Click, stamp: int, now: float, book: SilenceBook) -> tuple[Silence, bool]:
    """The silence a Silence click holds the incident with, and whether it must be written.

    `stamp` is the request's signed timestamp: the click's own time. While the incident has an
    active silence, a click extends it (same id; the end only ever moves later), so a repeated
    click adds nothing and a replayed one changes nothing. Without one, the new silence's id
    is the incident's prefix and the stamp, and every time comes from the stamp: any worker
    given the same click writes the identical record. An expired silence is never reused, so
    a worker removing it (streams/worker/silences.py) cannot erase a newer click's silence.
    ValueError when the incident's values make no valid silence.
    """
    prefix, ends_at = incident_silences(click.incident["dedup_key"]), stamp + SILENCE_S
    held = [silence for silence in book if silence.id.startswith(prefix) and silence.active(now)]
    if held:
        current = max(held, key=lambda silence: (silence.ends_at, silence.id))
        if ends_at <= current.ends_at:
            return current, False
        return replace(current, ends_at=float(ends_at), comment=_comment(click, extended_by=click.user)), True
    # Made "at" the click (never after now: a silence is active only from its creation on).
    made_at = float(math.floor(min(stamp, now)))
    return parse_silence(silence_request(click, stamp), now=made_at, silence_id=f"{prefix}{stamp}"), True


def note(click: Click, stamp: float, silence: Silence | None = None) -> str:
    """The line the clicked message gains; the same for the same click, wherever it is handled."""
    if silence is not None:
        return f"Silenced until {rfc3339(silence.ends_at)} by {click.user} at {rfc3339(stamp)} (silence {silence.id})"
    return f"Acknowledged by {click.user} at {rfc3339(stamp)}"


def refused(click: Click, reason: str) -> list[dict[str, Any]]:
    """The message once a Silence click was refused: every button kept, and one line saying why."""
    kept = [block for block in click.blocks if not _refusal(block)]
    return after_click(kept, "", f"{REFUSED}: {reason}")


def _refusal(block: dict[str, Any]) -> bool:
    elements = block.get("elements") or [{}]
    return block.get("type") == "context" and str(elements[0].get("text", "")).startswith(REFUSED)


class AcceptedClicks:
    """The signatures of the clicks this worker accepted, kept until the verifier would call them stale.

    Why both this and `silence_for_click`'s idempotence: this stops a captured request replayed
    to the same worker before it does anything (a second PagerDuty acknowledge, a message
    rewrite); a replay that lands on another worker finds the click's own silence there and
    writes nothing new. Workers share no memory, so this alone could not hold across them.
    Only requests signed with the app's secret get here, so the memory grows only with real
    clicks; `most` bounds it all the same.
    """

    def __init__(self, most: int = 10_000) -> None:
        self.most = most
        self._until: dict[str, float] = {}

    def first_time(self, signature: str, stamp: int, now: float) -> bool:
        """True the first time a signed request is seen; False for a replay of it."""
        for seen in [seen for seen, until in self._until.items() if until < now]:
            del self._until[seen]
        if signature in self._until:
            return False
        while len(self._until) >= self.most:
            del self._until[next(iter(self._until))]
        self._until[signature] = stamp + STALE_S + 1
        return True
