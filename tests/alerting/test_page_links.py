"""Issue 37 "Look": alerts link to their incident's page; Slack shows a "View" button, PagerDuty a link."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from alerting.pagerduty import pagerduty_event
from alerting.slack import SlackWebhookNotifier, incident_blocks
from detectors.verdict import Verdict
from streams.state.judging import alert_from_verdict
from tests.standins import StandIn

PUBLIC = "https://spendwatch.example.com"
BASE = "http://127.0.0.1:6066"  # the worker's own address, when SPENDWATCH_PUBLIC_URL is not set
HOSTILE = "<script>alert(1)</script> <!channel> a|b"


def a_verdict(team: str = "search", endpoint: str = "chat-api", status: str = "firing") -> Verdict:
    return Verdict(kind="flash_spike", status=status, severity="error", ts=1.7e9, team=team, endpoint=endpoint,
                   run_id=None, observed=12.0, baseline=1.0, ratio=12.0, unit="usd", summary="spending at 12x",
                   since=1.7e9, window_start=1.7e9, window_s=60, cause="traffic",
                   contributors=[{"dimension": "user", "value": "loop-agent", "share": 0.9}],
                   cause_figures={"calls_ratio": 12.0})


def view_buttons(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"] if e.get("action_id") == "view_incident"]


@pytest.mark.parametrize("team", ["search", HOSTILE])
def test_an_alert_links_to_its_incident_page_by_dedup_key(team):
    alert = alert_from_verdict(a_verdict(team=team, endpoint=team), BASE, PUBLIC)
    page = urlparse(alert["links"]["page"])
    assert f"{page.scheme}://{page.netloc}" == PUBLIC and page.path == "/"
    assert parse_qs(page.query) == {"incident": [alert["dedup_key"]]}
    assert "spend" in alert["links"]  # the figures' link stays


@pytest.mark.parametrize("team", ["search", HOSTILE])
def test_slack_shows_a_view_button_to_the_page_within_block_kit_limits(team):
    alert = alert_from_verdict(a_verdict(team=team, endpoint=team), BASE, PUBLIC)
    for blocks in (incident_blocks(alert), incident_blocks(alert, buttons=True)):
        [button] = view_buttons(blocks)
        assert button["url"] == alert["links"]["page"] and button["text"] == {"type": "plain_text", "text": "View"}
        assert StandIn.__new__(StandIn)._check_slack_message({"text": "x", "blocks": blocks}) == []
    # With the click buttons, Acknowledge and Silence keep their own block (a click there rewrites only it).
    assert {e["action_id"] for b in incident_blocks(alert, buttons=True) if b["type"] == "actions"
            for e in b["elements"]} == {"acknowledge", "silence_4h", "view_incident"}
    assert view_buttons(SlackWebhookNotifier._message(alert)["blocks"])


def test_no_page_link_and_no_view_button_without_a_public_url():
    alert = alert_from_verdict(a_verdict(), BASE)  # SPENDWATCH_PUBLIC_URL unset: nobody outside may reach BASE
    assert "page" not in alert["links"] and alert["links"]["spend"].startswith(BASE)
    assert view_buttons(incident_blocks(alert)) == []
    assert all("View incident" not in link["text"] for link in pagerduty_event(alert, "r" * 32).get("links", []))


def test_pagerduty_triggers_carry_the_page_link_and_resolves_stay_bare():
    alert = alert_from_verdict(a_verdict(), BASE, PUBLIC)
    event = pagerduty_event(alert, "r" * 32)
    assert {"href": alert["links"]["page"], "text": "View incident in spendwatch"} in event["links"]
    resolved = pagerduty_event(dict(alert, status="resolved"), "r" * 32)
    assert "links" not in resolved
