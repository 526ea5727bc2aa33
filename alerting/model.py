"""The alert as CONTRACT.md defines it, and its incident's fingerprint.

The fingerprint hashes what identifies one incident: its subject (kind, team, endpoint or
run, as Alertmanager fingerprints labels) and the event time it began (`since`, which every
message about the incident carries: firing, repeats and resolve). It is PagerDuty's
`dedup_key`, so a trigger and its resolve pair up, and a second spike on the same key a day
later is a new incident, not a re-trigger of the old one. `alert_id` is derived from the
fingerprint, status and times, so the same alert raised twice (a worker re-processing after
a crash) has the same id and the delivery stage can drop the repeat.

>>> alert = make_alert(kind="flash_spike", status="firing", severity="error", ts=1_700_000_000.0,
...                    team="search", endpoint="chat-api", run_id=None, observed=150.0, baseline=10.0,
...                    ratio=15.0, unit="usd", summary="search/chat-api at 15x", since=1_700_000_000.0)
>>> alert["ts"], alert["dedup_key"] == fingerprint("flash_spike", "search", "chat-api", None, 1_700_000_000.0)
('2023-11-14T22:13:20Z', True)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

SEVERITIES = ("info", "warning", "error", "critical")  # ascending
#: The alert fields routes and silences match on.
MATCHABLE = ("team", "endpoint", "kind", "severity")


def matches(match: Mapping[str, frozenset[str]], alert: Mapping[str, Any]) -> bool:
    """Every field `match` names holds one of its values (a field it does not name matches anything)."""
    return all(str(alert.get(name) or "") in values for name, values in match.items())


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint(kind: str, team: str, endpoint: str | None, run_id: str | None, since: float,
                incident: str | None = None) -> str:
    """Stable id of one incident: 32 hex characters (PagerDuty allows 255). `incident` tells apart
    incidents of one subject that can begin together (two budgets of a team crossing at one call)."""
    parts = [kind, team, endpoint or "", run_id or "", repr(float(since))]
    return hashlib.sha256("\x1f".join(parts if incident is None else [*parts, incident]).encode()).hexdigest()[:32]


def finite(value: float | None) -> float | None:
    """A number every JSON reader and formatter can take: not-a-number and infinity become null.

    >>> finite(float("inf")), finite(2.5)
    (None, 2.5)
    """
    return value if value is not None and math.isfinite(value) else None


def make_alert(
    *,
    kind: str,
    status: str,
    severity: str,
    ts: float,
    team: str,
    endpoint: str | None,
    run_id: str | None,
    observed: float,
    baseline: float,
    ratio: float,
    unit: str,
    summary: str,
    since: float,
    window_start: float | None = None,
    window_s: int | None = None,
    cause: str | None = None,
    contributors: list[dict[str, Any]] | None = None,
    cause_figures: dict[str, float | None] | None = None,
    links: dict[str, str] | None = None,
    incident: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An alert message: every CONTRACT field, plus when the incident began and its window, and
    `details`, the fields of its kind (budget alerts), as they are."""
    dedup_key = fingerprint(kind, team, endpoint, run_id, since, incident)
    alert_id = hashlib.sha256(f"{dedup_key}|{status}|{since!r}|{ts!r}".encode()).hexdigest()[:32]
    alert: dict[str, Any] = {
        "alert_id": alert_id,
        "dedup_key": dedup_key,
        "kind": kind,
        "status": status,
        "severity": severity,
        "ts": rfc3339(ts),
        "team": team,
        "endpoint": endpoint,
        "run_id": run_id,
        "observed": finite(observed),
        "baseline": finite(baseline),
        "ratio": finite(ratio),  # null when the baseline is zero
        "unit": unit,
        "summary": summary[:1024],
        "since": rfc3339(since),
        "silenced": False,  # set where it is published, while a silence matches (alerting/silences.py)
    }
    if window_start is not None and window_s is not None:
        alert["window"] = {"start": rfc3339(window_start), "end": rfc3339(window_start + window_s)}
    if cause is not None:  # flash_spike (CONTRACT, "Added in the second round")
        alert["cause"] = cause
        alert["contributors"] = contributors or []
        if cause_figures:
            alert["cause_figures"] = cause_figures
    if details:
        alert.update(details)
    if links:
        alert["links"] = links
    return alert
