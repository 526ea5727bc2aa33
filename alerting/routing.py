"""Which sinks an alert goes to: every alert to Slack (or the console, or the webhook), and those at
or above the paging severity to PagerDuty too.

>>> wants_page({"severity": "critical"}, "critical"), wants_page({"severity": "error"}, "critical")
(True, False)
"""

from __future__ import annotations

from alerting.model import SEVERITIES
from alerting.notifier import Alert

PAGER = "pagerduty"


def wants_page(alert: Alert, min_severity: str) -> bool:
    return SEVERITIES.index(alert["severity"]) >= SEVERITIES.index(min_severity)


def routes_to(sink: str, alert: Alert, min_page_severity: str) -> bool:
    """Whether `sink` should get `alert`; every sink but PagerDuty takes everything."""
    if sink == PAGER:
        return wants_page(alert, min_page_severity)
    return True
