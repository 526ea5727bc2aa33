"""Sinks against the Slack and PagerDuty stand-ins (real HTTP on 127.0.0.1), retry and routing."""

from __future__ import annotations

import asyncio
import logging

import pytest

from alerting.model import make_alert
from alerting.notifier import DeliveryError
from alerting.pagerduty import PagerDutyNotifier
from alerting.retry import deliver
from alerting.routing import Receiver, Routing
from alerting.slack import SlackBotNotifier, SlackWebhookNotifier

ROUTING_KEY = "R0UT1NGK3Y" + "s" * 22
BOT_TOKEN = "xoxb-not-a-real-token-0001"
WEBHOOK_SECRET = "T000/B000/s3cr3tw3bh00kpath"




def alert(status="firing", team="search", endpoint="chat-api", **extra):
    fields = dict(kind="flash_spike", status=status, severity="error",
                  ts=1_764_000_000.0 + (60 if status == "resolved" else 0),
                  team=team, endpoint=endpoint, run_id=None, observed=97.5, baseline=9.1, ratio=10.7, unit="usd",
                  summary=f"{team}/{endpoint} is spending at 11x its normal rate", since=1_764_000_000.0,
                  window_start=1_763_999_940.0, window_s=60,
                  links={"spend": "http://127.0.0.1:6066/spend?team=search&endpoint=chat-api"})
    fields.update(extra)
    return make_alert(**fields)


async def no_sleep(_seconds: float) -> None:
    return None


def test_webhook_message_passes_block_kit_rules_and_a_resolve_is_short(standin):
    slack = SlackWebhookNotifier(f"{standin.url}/services/{WEBHOOK_SECRET}")
    asyncio.run(slack.notify(alert()))
    asyncio.run(slack.notify(alert("resolved")))
    assert standin.violations == []
    first, resolved = standin.of("slack")
    assert [b["type"] for b in first["blocks"]] == ["header", "section", "section", "context"]
    assert "Observed" in str(first["blocks"]) and "$97.50" in str(first["blocks"]) and "10.7x" in str(first["blocks"])
    assert "/spend?team=search" in first["blocks"][-1]["elements"][0]["text"]
    assert first["blocks"][2]["fields"][0]["text"] == "*Observed*\n$97.50 (about $5,850.00/h)"  # 60 windows an hour
    assert len(resolved["blocks"]) == 1 and resolved["text"].startswith("[RESOLVED]")


def test_small_sums_keep_their_digits(standin):
    slack = SlackWebhookNotifier(f"{standin.url}/services/{WEBHOOK_SECRET}")
    asyncio.run(slack.notify(alert(observed=0.0022, baseline=0.00017, ratio=12.9)))
    [message] = standin.of("slack")
    fields = [f["text"] for f in message["blocks"][2]["fields"]]
    assert fields[:2] == ["*Observed*\n$0.0022 (about $0.13/h)", "*Expected*\n$0.00017 (about $0.010/h)"]


def test_a_hostile_team_name_pings_nobody(standin):
    slack = SlackWebhookNotifier(f"{standin.url}/services/{WEBHOOK_SECRET}")
    hostile = "<!channel> <@U123>"
    asyncio.run(slack.notify(alert(team=hostile, endpoint="<!here>", summary=f"{hostile}/<!here> at 11x")))
    assert standin.violations == []
    [message] = standin.of("slack")
    assert "&lt;!channel&gt;" in message["text"] and "<!channel>" not in str(message)


def test_bot_token_replies_in_the_thread_and_updates_the_first_message(standin):
    threads: dict = {}
    slack = SlackBotNotifier(BOT_TOKEN, "#spend-alerts", f"{standin.url}/api/", threads)
    asyncio.run(slack.notify(alert()))
    asyncio.run(slack.notify(alert("resolved")))
    assert standin.violations == []
    methods = [kind for kind, _ in standin.accepted]
    assert methods == ["chat.postMessage", "chat.postMessage", "chat.update"]
    first, reply, update = (body for _, body in standin.accepted)
    assert "thread_ts" not in first and reply["thread_ts"] == update["ts"]
    assert "Resolved at" in str(update["blocks"])


def test_pagerduty_trigger_and_resolve_share_the_dedup_key(standin):
    pagerduty = PagerDutyNotifier(ROUTING_KEY, f"{standin.url}/v2/enqueue")
    asyncio.run(pagerduty.notify(alert()))
    asyncio.run(pagerduty.notify(alert("resolved")))
    assert standin.violations == []
    trigger, resolve = standin.of("pagerduty")
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["payload"]["custom_details"]["ratio"] == 10.7
    assert trigger["payload"]["group"] == "search" and trigger["payload"]["component"] == "chat-api"
    assert trigger["links"][0]["href"].startswith("http://127.0.0.1:6066/spend")


def test_400_is_permanent_and_429_waits_for_retry_after(standin):
    pagerduty = PagerDutyNotifier(ROUTING_KEY, f"{standin.url}/v2/enqueue")
    standin.fail(400, times=1)
    outcome = asyncio.run(deliver(pagerduty, alert(), deadline_s=60, sleep=no_sleep))
    assert not outcome.delivered and outcome.attempts == 1 and "400" in outcome.error

    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    standin.fail(500, times=2)
    standin.fail(429, times=1, retry_after="7")
    outcome = asyncio.run(deliver(pagerduty, alert(), deadline_s=60, sleep=record))
    assert outcome.delivered and outcome.attempts == 4
    assert waits == [1.0, 2.0, 7.0]  # backoff, backoff, then what Retry-After asked for


def test_retry_stops_at_the_deadline(standin):
    pagerduty = PagerDutyNotifier(ROUTING_KEY, f"{standin.url}/v2/enqueue")
    standin.fail(503)
    now = [0.0]

    async def advance(seconds: float) -> None:
        now[0] += seconds

    outcome = asyncio.run(deliver(pagerduty, alert(), deadline_s=100, sleep=advance, clock=lambda: now[0]))
    assert not outcome.delivered and "gave up" in outcome.error and now[0] <= 100


def test_secrets_never_reach_errors_or_logs(standin, caplog):
    caplog.set_level(logging.DEBUG)
    standin.fail(500)
    sinks = [PagerDutyNotifier(ROUTING_KEY, f"{standin.url}/v2/enqueue"),
             SlackWebhookNotifier(f"{standin.url}/services/{WEBHOOK_SECRET}"),
             SlackBotNotifier(BOT_TOKEN, "#c", f"{standin.url}/api/", {})]
    messages = []
    for sink in sinks:
        with pytest.raises(DeliveryError) as info:
            asyncio.run(sink.notify(alert()))
        messages += [str(info.value), repr(sink)]
        asyncio.run(deliver(sink, alert(), deadline_s=0.5, sleep=no_sleep))
    unreachable = PagerDutyNotifier(ROUTING_KEY, "http://127.0.0.1:9/v2/enqueue")
    with pytest.raises(DeliveryError) as info:
        asyncio.run(unreachable.notify(alert()))
    messages.append(str(info.value))
    shown = "\n".join(messages) + caplog.text
    for secret in (ROUTING_KEY, BOT_TOKEN, WEBHOOK_SECRET):
        assert secret not in shown


def test_the_catch_all_pages_only_at_or_above_the_minimum_severity():
    def sinks(severity: str, minimum: str) -> list[str]:
        routing = Routing([], [Receiver("slack", "slack"), Receiver("pagerduty", "pagerduty")], minimum)
        return [r.sink for r in routing.receivers_for(alert(severity=severity))]

    assert sinks("info", "critical") == ["slack"]
    assert sinks("error", "critical") == ["slack"]
    assert sinks("critical", "critical") == ["slack", "pagerduty"]
    assert sinks("error", "error") == ["slack", "pagerduty"]


def test_console_is_the_default_sink_and_repeats_get_a_new_id(monkeypatch, tmp_path):
    from alerting.incidents import repeat_of
    from alerting.routing import build_notifiers
    from streams.settings import Settings

    monkeypatch.chdir(tmp_path)
    assert list(build_notifiers(Settings(_env_file=None), {})) == ["console"]
    configured = Settings(_env_file=None, slack_webhook_url="https://hooks.example/x",
                          pagerduty_routing_key=ROUTING_KEY)
    assert list(build_notifiers(configured, {})) == ["slack", "pagerduty"]
    original = alert()
    again = repeat_of(original, 1)
    assert again["repeat"] == 1 and again["dedup_key"] == original["dedup_key"]
    assert again["alert_id"] != original["alert_id"] and repeat_of(original, 1)["alert_id"] == again["alert_id"]


def test_an_alert_that_cannot_be_formatted_is_refused_at_once_and_the_queue_moves_on(standin):
    """Before: a formatting TypeError was taken for an outage and retried for an hour, holding up every alert."""
    slack = SlackBotNotifier(BOT_TOKEN, "#spend", f"{standin.url}/api/", {})
    broken = dict(alert(), observed="ninety")  # a bug upstream: a figure that is not a number
    outcome = asyncio.run(deliver(slack, broken, deadline_s=3600, sleep=no_sleep))
    assert (outcome.delivered, outcome.attempts) == (False, 1) and "cannot format" in (outcome.error or "")
    assert asyncio.run(deliver(slack, alert(), deadline_s=3600, sleep=no_sleep)).delivered
    assert len(standin.of("chat.postMessage")) == 1 and standin.violations == []


def test_a_bug_in_a_sink_is_a_permanent_failure_not_a_crash():
    class Broken:
        name = "broken"

        async def notify(self, alert: dict) -> None:
            raise KeyError("no such field")

    outcome = asyncio.run(deliver(Broken(), alert(), deadline_s=3600, sleep=no_sleep))
    assert not outcome.delivered and outcome.attempts == 1 and "KeyError" in (outcome.error or "")


WHY = dict(cause="model_mix", contributors=[{"dimension": "model", "value": "claude-3-opus", "share": 1.0},
                                            {"dimension": "provider", "value": "anthropic", "share": 1.0}],
           cause_figures={"calls_ratio": 0.9, "tokens_per_call_ratio": 1.0, "cost_per_token_ratio": 16.2})


def test_a_spike_says_why_in_slack_and_in_pagerduty_custom_details(standin):
    slack = SlackWebhookNotifier(f"{standin.url}/services/{WEBHOOK_SECRET}")
    pagerduty = PagerDutyNotifier(ROUTING_KEY, f"{standin.url}/v2/enqueue")
    asyncio.run(slack.notify(alert(**WHY)))
    asyncio.run(pagerduty.notify(alert(**WHY)))
    assert standin.violations == []
    [message] = standin.of("slack")
    fields = [f["text"] for f in message["blocks"][2]["fields"]]
    assert "*Cause*\nA pricier model mix (16.2x usual)" in fields
    assert "*Top contributors*\nmodel claude-3-opus: 100%\nprovider anthropic: 100%" in fields
    [trigger] = standin.of("pagerduty")
    details = trigger["payload"]["custom_details"]
    assert details["cause"] == "model_mix" and details["contributors"] == WHY["contributors"]
    assert details["cause_figures"]["cost_per_token_ratio"] == 16.2


def test_a_budget_alert_shows_its_budget_period_and_forecast(standin):
    budget = make_alert(kind="budget_forecast", status="firing", severity="warning", ts=1_764_000_000.0,
                        team="search", endpoint=None, run_id=None, observed=12_400.0, baseline=10_000.0, ratio=1.24,
                        unit="usd", summary="search: monthly budget 'search-month' is on course for $12,400.00",
                        since=1_764_000_000.0, incident="search-month",
                        details={"budget": "search-month", "period_start": "2025-11-01T00:00:00Z",
                                 "period_end": "2025-12-01T00:00:00Z", "forecast_low_usd": 11_200.0,
                                 "forecast_high_usd": 13_900.0, "crosses_on": "2025-11-26"})
    asyncio.run(SlackWebhookNotifier(f"{standin.url}/services/{WEBHOOK_SECRET}").notify(budget))
    asyncio.run(PagerDutyNotifier(ROUTING_KEY, f"{standin.url}/v2/enqueue").notify(budget))
    assert standin.violations == []
    [message] = standin.of("slack")
    fields = [f["text"] for f in message["blocks"][2]["fields"]]
    assert "*Budget*\n$10,000.00" in fields and "*Period*\n2025-11-01T00:00:00Z to 2025-12-01T00:00:00Z" in fields
    assert "*Forecast range*\n$11,200.00 to $13,900.00, crossing on 2025-11-26" in fields
    [event] = standin.of("pagerduty")
    details = event["payload"]["custom_details"]
    assert details["budget"] == "search-month" and details["crosses_on"] == "2025-11-26"
