"""Which receivers an alert goes to (Alertmanager's routing tree, one level deep).

The routes of `SPENDWATCH_ROUTES` are tried in order. A route matches an alert when every
field it names (team, endpoint, kind, severity) holds one of its values. The first route
that matches takes the alert, unless it says `continue`: then later routes may take it too.
A route's receivers get everything it matches (name `severity` in its match to page only
on critical alerts). The catch-all is the single-receiver settings (`SPENDWATCH_SLACK_*`,
`SPENDWATCH_PAGERDUTY_*`, `SPENDWATCH_WEBHOOK_URL`, the console): it takes only what no
route matched, and pages at `SPENDWATCH_PAGERDUTY_MIN_SEVERITY` and up, as before routes.

>>> search = Route({"team": frozenset({"search"})}, (Receiver("slack:#search", SLACK, "#search"),))
>>> routing = Routing([search], [Receiver(SLACK, SLACK), Receiver(PAGER, PAGER)], "critical")
>>> [r.name for r in routing.receivers_for({"team": "search", "severity": "critical"})]
['slack:#search']
>>> [r.name for r in routing.receivers_for({"team": "ads", "severity": "error"})]
['slack']
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from alerting.console import ConsoleNotifier
from alerting.model import MATCHABLE, SEVERITIES, matches
from alerting.notifier import Alert, Notifier
from alerting.pagerduty import PagerDutyNotifier
from alerting.slack import SlackBotNotifier, SlackWebhookNotifier
from alerting.webhook import WebhookNotifier

#: The kinds of sink; each has one delivery queue, shared by every receiver of its kind.
SLACK, PAGER, WEBHOOK, CONSOLE = "slack", "pagerduty", "webhook", "console"


def wants_page(alert: Alert, min_severity: str) -> bool:
    return SEVERITIES.index(alert["severity"]) >= SEVERITIES.index(min_severity)


@dataclass(frozen=True)
class Receiver:
    """One place alerts go. `name` keys the delivery records and shows in logs, so it never holds a
    secret: a Slack channel is named by itself, a webhook URL or routing key by a digest."""

    name: str
    sink: str  # SLACK, PAGER, WEBHOOK or CONSOLE: which notifier class, and which queue
    target: str = field(default="", repr=False)  # the channel, webhook URL or routing key


@dataclass(frozen=True)
class Route:
    match: Mapping[str, frozenset[str]]  # field -> the values it takes; a field not named matches anything
    receivers: tuple[Receiver, ...]
    continue_matching: bool = False

    def matches(self, alert: Alert) -> bool:
        return matches(self.match, alert)


class Routing:
    def __init__(self, routes: Sequence[Route], catch_all: Sequence[Receiver], min_page_severity: str) -> None:
        self.routes, self.catch_all, self.min_page_severity = list(routes), list(catch_all), min_page_severity

    def receivers_for(self, alert: Alert) -> list[Receiver]:
        chosen: dict[str, Receiver] = {}
        matched = False
        for route in self.routes:
            if route.matches(alert):
                matched = True
                chosen.update((r.name, r) for r in route.receivers)
                if not route.continue_matching:
                    break
        if not matched:
            chosen.update((r.name, r) for r in self.catch_all
                          if r.sink != PAGER or wants_page(alert, self.min_page_severity))
        return list(chosen.values())

    @property
    def receivers(self) -> list[Receiver]:
        """Every receiver any alert can reach, each once."""
        every = {r.name: r for r in self.catch_all}
        for route in self.routes:
            every.update((r.name, r) for r in route.receivers)
        return list(every.values())


class Secret(Protocol):
    def get_secret_value(self) -> str: ...


class MatchSettings(Protocol):
    @property
    def team(self) -> tuple[str, ...] | None: ...

    @property
    def endpoint(self) -> tuple[str, ...] | None: ...

    @property
    def kind(self) -> tuple[str, ...] | None: ...

    @property
    def severity(self) -> tuple[str, ...] | None: ...


class RouteSettings(Protocol):
    """One entry of `SPENDWATCH_ROUTES` (streams/settings.py's `RouteSetting`)."""

    @property
    def match(self) -> MatchSettings: ...

    @property
    def slack_channel(self) -> str | None: ...

    @property
    def slack_webhook_url(self) -> Secret | None: ...

    @property
    def pagerduty_routing_key(self) -> Secret | None: ...

    @property
    def continue_matching(self) -> bool: ...


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
    def slack_signing_secret(self) -> Secret | None: ...

    @property
    def pagerduty_routing_key(self) -> Secret | None: ...

    @property
    def pagerduty_events_url(self) -> str: ...

    @property
    def pagerduty_min_severity(self) -> str: ...

    @property
    def webhook_url(self) -> Secret | None: ...

    @property
    def console_alerts(self) -> bool | None: ...

    @property
    def routes(self) -> Sequence[RouteSettings]: ...


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def slack_channel_receiver(channel: str, settings: SinkSettings) -> Receiver:
    # The catch-all's own channel is the catch-all receiver: one message, one thread, not two.
    return Receiver(SLACK if channel == settings.slack_channel else f"{SLACK}:{channel}", SLACK, channel)


def pager_receiver(routing_key: str, settings: SinkSettings) -> Receiver:
    default = settings.pagerduty_routing_key
    same = default is not None and default.get_secret_value() == routing_key
    return Receiver(PAGER if same else f"{PAGER}:{digest(routing_key)}", PAGER, routing_key)


def route_receivers(route: RouteSettings, settings: SinkSettings) -> tuple[Receiver, ...]:
    receivers = []
    if route.slack_channel is not None:
        receivers.append(slack_channel_receiver(route.slack_channel, settings))
    if route.slack_webhook_url is not None:
        url = route.slack_webhook_url.get_secret_value()
        receivers.append(Receiver(f"{SLACK}-webhook:{digest(url)}", SLACK, url))
    if route.pagerduty_routing_key is not None:
        receivers.append(pager_receiver(route.pagerduty_routing_key.get_secret_value(), settings))
    return tuple(receivers)


def catch_all_receivers(settings: SinkSettings) -> list[Receiver]:
    """Today's single receivers; the console alone when none is set."""
    receivers: list[Receiver] = []
    if settings.slack_bot_token is not None:
        receivers.append(Receiver(SLACK, SLACK, settings.slack_channel or ""))
    elif settings.slack_webhook_url is not None:
        receivers.append(Receiver(SLACK, SLACK, settings.slack_webhook_url.get_secret_value()))
    if settings.pagerduty_routing_key is not None:
        receivers.append(Receiver(PAGER, PAGER, settings.pagerduty_routing_key.get_secret_value()))
    if settings.webhook_url is not None:
        receivers.append(Receiver(WEBHOOK, WEBHOOK, settings.webhook_url.get_secret_value()))
    if settings.console_alerts or (settings.console_alerts is None and not receivers):
        receivers.append(Receiver(CONSOLE, CONSOLE))
    return receivers


def routing_from(settings: SinkSettings) -> Routing:
    routes = [Route({name: frozenset(values) for name in MATCHABLE
                     if (values := getattr(route.match, name)) is not None},
                    route_receivers(route, settings), route.continue_matching)
              for route in settings.routes]
    return Routing(routes, catch_all_receivers(settings), settings.pagerduty_min_severity)


def build_notifier(receiver: Receiver, settings: SinkSettings, slack_threads: MutableMapping[str, Any]) -> Notifier:
    if receiver.sink == SLACK:
        if receiver.name.startswith(f"{SLACK}-webhook:") or settings.slack_bot_token is None:
            return SlackWebhookNotifier(receiver.target)
        # Threads are kept per channel: one incident routed to two channels has a thread in each.
        return SlackBotNotifier(settings.slack_bot_token.get_secret_value(), receiver.target, settings.slack_api_url,
                                slack_threads, thread_scope="" if receiver.name == SLACK else receiver.target,
                                buttons=settings.slack_signing_secret is not None)
    if receiver.sink == PAGER:
        return PagerDutyNotifier(receiver.target, settings.pagerduty_events_url)
    if receiver.sink == WEBHOOK:
        return WebhookNotifier(receiver.target)
    return ConsoleNotifier()


def build_notifiers(settings: SinkSettings, slack_threads: MutableMapping[str, Any]) -> dict[str, Notifier]:
    """A notifier for every receiver the settings configure, by receiver name."""
    return {r.name: build_notifier(r, settings, slack_threads) for r in routing_from(settings).receivers}
