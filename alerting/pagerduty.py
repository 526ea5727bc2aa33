"""PagerDuty Events API v2: `trigger` when an incident fires (and on repeats), `resolve` when it ends,
`acknowledge` when someone clicks Acknowledge in Slack (status `acknowledged`, alerting/slack_clicks.py).

`dedup_key` is the incident's fingerprint (alerting/model.py), so PagerDuty folds a repeat
into the open incident and the resolve closes it, and the next incident on the same key opens
a new one. 202 is success; 400 is permanent; 429 and 5xx are
retried by the retry stage.

>>> event = pagerduty_event({"alert_id": "a1", "dedup_key": "k" * 32, "kind": "flash_spike", "status": "firing",
...     "severity": "error", "ts": "2026-11-24T14:02:00Z", "team": "search", "endpoint": "chat-api", "run_id": None,
...     "observed": 9.5, "baseline": 0.9, "ratio": 10.5, "unit": "usd", "summary": "search/chat-api at 10x",
...     "links": {"spend": "http://127.0.0.1:6066/spend?team=search"}}, "r" * 32)
>>> event["event_action"], event["payload"]["severity"], event["payload"]["component"], event["payload"]["group"]
('trigger', 'error', 'chat-api', 'search')
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from alerting.inert import inert
from alerting.notifier import Alert, DeliveryError, error_for_status
from alerting.redact import redacted

#: The status of the message a Slack click makes: it goes to PagerDuty only, never onto the alerts topic.
ACKNOWLEDGED = "acknowledged"
DETAIL_FIELDS = ("kind", "team", "endpoint", "run_id", "observed", "baseline", "ratio", "unit", "since", "window",
                 "cause", "contributors", "cause_figures", "budget", "period_start", "period_end", "threshold_pct",
                 "forecast_low_usd", "forecast_high_usd", "crosses_on", "alert_id", "repeat")

#: What a link is called in PagerDuty, where its name alone would not say (the incident's page, issue 37).
LINK_TEXTS = {"page": "View incident in spendwatch"}


def pagerduty_event(alert: Alert, routing_key: str) -> dict[str, Any]:
    """The Events v2 body for an alert (CONTRACT's fields go to custom_details).

    Every text built from names is made inert (alerting/inert.py): PagerDuty shows the summary
    and details as written, and its Slack, Teams and email integrations pass them on, where a
    `<!here>`, a `<https://...|re-auth>` or a bare URL from a run id would be live.
    """
    if alert["status"] in ("resolved", ACKNOWLEDGED):
        action = "resolve" if alert["status"] == "resolved" else "acknowledge"
        return {"routing_key": routing_key, "event_action": action, "dedup_key": alert["dedup_key"]}
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert["dedup_key"],
        "client": "spendwatch",
        "payload": {
            "summary": inert(alert["summary"])[:1024],
            "source": "spendwatch",
            "severity": alert["severity"],
            "timestamp": alert["ts"],
            "component": inert(alert.get("endpoint") or alert.get("run_id") or "")[:255],
            "group": inert(alert["team"])[:255],
            "class": alert["kind"],
            "custom_details": {name: inert_values(alert[name]) for name in DETAIL_FIELDS
                               if alert.get(name) is not None},
        },
        "links": [{"href": href, "text": LINK_TEXTS.get(name, name)}
                  for name, href in (alert.get("links") or {}).items()],
    }


def inert_values(value: Any) -> Any:
    """Every string in a detail (contributors' values included) made inert; numbers as they are."""
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, dict):
        return {key: inert_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [inert_values(item) for item in value]
    return value


class PagerDutyNotifier:
    name = "pagerduty"

    def __init__(self, routing_key: str, events_url: str, timeout_s: float = 10.0) -> None:
        self._routing_key = routing_key  # a secret: never logged, never in an error
        self._url = events_url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    def __repr__(self) -> str:
        return f"PagerDutyNotifier(events_url={self._url!r}, routing_key=**********)"

    async def notify(self, alert: Alert) -> None:
        body = orjson.dumps(pagerduty_event(alert, self._routing_key))
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session, \
                    session.post(self._url, data=body, headers={"Content-Type": "application/json"}) as response:
                if response.status < 300:
                    return
                # Masked whole, then cut: cut first, a key echoed across the cut would leave its prefix.
                text = redacted(await response.text(), [self._routing_key], 200)
                raise error_for_status("pagerduty", response.status, response.headers.get("Retry-After"), text)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"pagerduty unreachable: {type(exc).__name__}", retryable=True) from None
