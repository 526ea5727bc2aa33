"""An incident's life on the alerts topic: which messages are alerts, what is still firing, and
when a reminder is due. Pure: the delivery agents (streams/worker/delivery.py) keep the state in
a table and pass the clock in.

>>> incidents: dict[str, dict] = {}
>>> firing = {"alert_id": "a1", "dedup_key": "k", "status": "firing"}
>>> record(incidents, firing, now=100.0)
>>> due_reminders(incidents, now=150.0, every_s=60.0), [a["repeat"] for a in due_reminders(incidents, 160.0, 60.0)]
([], [1])
>>> record(incidents, dict(firing, alert_id="a2", status="resolved"), now=170.0); incidents
{}
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, MutableMapping
from typing import Any

import orjson

from alerting.notifier import Alert

#: What every alert on the topic has; anything else there is skipped, not delivered.
REQUIRED = frozenset({"alert_id", "dedup_key", "status"})


def decode_alert(value: bytes | None) -> Alert | None:
    """The alert a message carries, or None when it is not one."""
    try:
        alert = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return alert if isinstance(alert, dict) and alert.keys() >= REQUIRED else None


def repeat_of(alert: Alert, repeat: int) -> Alert:
    """A reminder that an incident is still firing: same dedup_key, a new alert_id."""
    again = dict(alert, repeat=repeat)
    again["alert_id"] = hashlib.sha256(f"{alert['alert_id']}|repeat|{repeat}".encode()).hexdigest()[:32]
    return again


def record(incidents: MutableMapping[str, Any], alert: Alert, now: float) -> None:
    """Track an alert read back from the topic: a firing one opens (or renews) its incident, a resolve ends it."""
    if alert["status"] == "firing":
        incidents[alert["dedup_key"]] = {"alert": alert, "notified_at": now, "repeat": alert.get("repeat", 0)}
    elif alert["status"] == "resolved" and incidents.get(alert["dedup_key"]) is not None:
        del incidents[alert["dedup_key"]]


def unsilenced(incidents: MutableMapping[str, Any], free: Callable[[Alert], bool]) -> list[Alert]:
    """The incidents last announced while silenced that `free` says no silence holds back any more,
    each as the alert to send now: its firing message, unsilenced, with a new alert_id.

    >>> incidents = {"k": {"alert": {"alert_id": "a1", "dedup_key": "k", "status": "firing", "silenced": True}}}
    >>> [(a["silenced"], a["alert_id"] != "a1") for a in unsilenced(incidents, lambda alert: True)]
    [(False, True)]
    """
    out = []
    for incident in list(incidents.values()):
        alert = incident["alert"]
        if alert.get("silenced") and free(alert):
            released = dict(alert, silenced=False)
            released["alert_id"] = hashlib.sha256(f"{alert['alert_id']}|unsilenced".encode()).hexdigest()[:32]
            out.append(released)
    return out


def due_reminders(incidents: MutableMapping[str, Any], now: float, every_s: float) -> list[Alert]:
    """A reminder for each incident firing without news for `every_s` or longer."""
    return [repeat_of(incident["alert"], incident["repeat"] + 1) for incident in list(incidents.values())
            if now - incident["notified_at"] >= every_s]
