"""Which sinks there are, and which an alert goes to: every alert to Slack (or the console, or the
webhook), and those at or above the paging severity to PagerDuty too.

>>> wants_page({"severity": "critical"}, "critical"), wants_page({"severity": "error"}, "critical")
(True, False)
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Protocol

from alerting.console import ConsoleNotifier
from alerting.model import SEVERITIES
from alerting.notifier import Alert, Notifier
from alerting.pagerduty import PagerDutyNotifier
from alerting.slack import SlackBotNotifier, SlackWebhookNotifier
from alerting.webhook import WebhookNotifier

PAGER = "pagerduty"


def wants_page(alert: Alert, min_severity: str) -> bool:
    return SEVERITIES.index(alert["severity"]) >= SEVERITIES.index(min_severity)


def routes_to(sink: str, alert: Alert, min_page_severity: str) -> bool:
    """Whether `sink` should get `alert`; every sink but PagerDuty takes everything."""
    if sink == PAGER:
        return wants_page(alert, min_page_severity)
    return True


class Secret(Protocol):
    def get_secret_value(self) -> str: ...


class SinkSettings(Protocol):
    """The settings sinks are built from (streams/settings.py's `Settings` has them all)."""

    @property
    def slack_bot_token(self) -> Secret | None: ...

    @property
    def slack_channel(self) -> str | None: ...

    @property
    def slack_api_url(self) -> str: ...

    @property
    def slack_webhook_url(self) -> Secret | None: ...

    @property
    def pagerduty_routing_key(self) -> Secret | None: ...

    @property
    def pagerduty_events_url(self) -> str: ...

    @property
    def webhook_url(self) -> Secret | None: ...

    @property
    def console_alerts(self) -> bool | None: ...


def build_notifiers(settings: SinkSettings, slack_threads: MutableMapping[str, Any]) -> list[Notifier]:
    """The sinks the settings configure; the console alone when none is."""
    notifiers: list[Notifier] = []
    if settings.slack_bot_token is not None:
        notifiers.append(SlackBotNotifier(settings.slack_bot_token.get_secret_value(), settings.slack_channel or "",
                                          settings.slack_api_url, slack_threads))
    elif settings.slack_webhook_url is not None:
        notifiers.append(SlackWebhookNotifier(settings.slack_webhook_url.get_secret_value()))
    if settings.pagerduty_routing_key is not None:
        notifiers.append(PagerDutyNotifier(settings.pagerduty_routing_key.get_secret_value(),
                                           settings.pagerduty_events_url))
    if settings.webhook_url is not None:
        notifiers.append(WebhookNotifier(settings.webhook_url.get_secret_value()))
    if settings.console_alerts or (settings.console_alerts is None and not notifiers):
        notifiers.append(ConsoleNotifier())
    return notifiers
