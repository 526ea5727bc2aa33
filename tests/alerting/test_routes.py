"""Routes (`SPENDWATCH_ROUTES`): read from the environment, checked at start, and matched as
Alertmanager matches one level of its routing tree."""

from __future__ import annotations

import orjson
import pytest

from alerting.model import make_alert
from alerting.routing import build_notifiers, digest, routing_from
from streams.errors import SettingsError
from streams.settings import load_settings
from tests.alerting.test_alerting import BOT_TOKEN, ROUTING_KEY

SEARCH_KEY, FINANCE_HOOK = "S" * 32, "https://hooks.slack.example/services/T0/B1/finance-secret"
ROUTES = [
    {"match": {"team": "search"}, "slack_channel": "#search-alerts", "pagerduty_routing_key": SEARCH_KEY},
    {"match": {"kind": "runaway_training", "severity": "critical"}, "pagerduty_routing_key": ROUTING_KEY,
     "continue": True},
    {"match": {"kind": ["budget_threshold", "budget_forecast"]}, "slack_webhook_url": FINANCE_HOOK},
]


def settings(monkeypatch, tmp_path, routes=ROUTES, **env: str):
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    monkeypatch.setenv("SPENDWATCH_ROUTES", orjson.dumps(routes).decode())
    monkeypatch.setenv("SPENDWATCH_SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SPENDWATCH_SLACK_CHANNEL", "#spend")
    monkeypatch.setenv("SPENDWATCH_PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def alert(team: str = "search", kind: str = "flash_spike", severity: str = "error") -> dict:
    return make_alert(kind=kind, status="firing", severity=severity, ts=1.7e9, team=team, endpoint="chat",
                      run_id=None, observed=10.0, baseline=1.0, ratio=10.0, unit="usd", summary="s", since=1.7e9)


def test_each_team_goes_to_its_own_receivers_and_the_rest_to_the_catch_all(monkeypatch, tmp_path):
    routing = routing_from(settings(monkeypatch, tmp_path))
    assert [r.name for r in routing.receivers_for(alert("search"))] == \
        ["slack:#search-alerts", f"pagerduty:{digest(SEARCH_KEY)}"]
    # Not search: the catch-all, which pages only critical alerts.
    assert [r.name for r in routing.receivers_for(alert("ads"))] == ["slack"]
    assert [r.name for r in routing.receivers_for(alert("ads", severity="critical"))] == ["slack", "pagerduty"]


def test_continue_lets_later_routes_match_and_the_first_match_stops_otherwise(monkeypatch, tmp_path):
    routes = [ROUTES[1], {"match": {"team": "ml"}, "slack_channel": "#ml"}, {"match": {"team": "ml"},
                                                                          "slack_channel": "#never"}]
    routing = routing_from(settings(monkeypatch, tmp_path, routes))
    runaway = alert("ml", kind="runaway_training", severity="critical")
    assert [r.name for r in routing.receivers_for(runaway)] == ["pagerduty", "slack:#ml"]
    assert [r.name for r in routing.receivers_for(alert("ml"))] == ["slack:#ml"]


def test_receiver_names_and_printed_settings_hold_no_secret(monkeypatch, tmp_path):
    configured = settings(monkeypatch, tmp_path)
    notifiers = build_notifiers(configured, {})
    shown = repr(list(notifiers.items())) + repr(routing_from(configured).routes) + str(configured.printable())
    for secret in (SEARCH_KEY, FINANCE_HOOK, ROUTING_KEY, BOT_TOKEN):
        assert secret not in shown
    assert sorted(notifiers) == sorted(["slack", "pagerduty", "slack:#search-alerts",
                                        f"pagerduty:{digest(SEARCH_KEY)}", f"slack-webhook:{digest(FINANCE_HOOK)}"])


@pytest.mark.parametrize(("route", "says"), [
    ({"match": {"tem": "search"}, "slack_channel": "#x"}, "SPENDWATCH_ROUTES[1].match.tem: Extra inputs"),
    ({"match": {"severity": "loud"}, "slack_channel": "#x"}, "SPENDWATCH_ROUTES[1].match.severity[0]"),
    ({"match": {"team": []}, "slack_channel": "#x"}, "an empty list matches nothing"),
    ({"match": {"team": "a"}, "pagerduty_routing_key": "short"}, "SPENDWATCH_ROUTES[1].pagerduty_routing_key"),
    ({"match": {"team": "a"}, "slack_webhook_url": "ftp://x"}, "SPENDWATCH_ROUTES[1].slack_webhook_url"),
    ({"match": {"team": "a"}, "slack_chanel": "#x"}, "SPENDWATCH_ROUTES[1].slack_chanel"),
])
def test_a_bad_route_is_refused_at_start_by_its_place_in_the_list(monkeypatch, tmp_path, route, says):
    with pytest.raises(SettingsError) as info:
        settings(monkeypatch, tmp_path, [ROUTES[0], route])
    assert says in str(info.value)
    assert "secret" not in str(info.value) and "short" not in str(info.value)


def test_a_slack_channel_route_needs_the_bot_token(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    route = {"match": {"team": "ads"}, "slack_channel": "#ads"}
    monkeypatch.setenv("SPENDWATCH_ROUTES", orjson.dumps([route]).decode())
    with pytest.raises(SettingsError, match=r"SPENDWATCH_ROUTES\[0\] \(match team=ads\) names slack_channel '#ads', "
                                            "which needs SPENDWATCH_SLACK_BOT_TOKEN"):
        load_settings()
