"""Values from events reach Slack, PagerDuty, webhooks and the console escaped or encoded for where they go.

A `run_id` of ``a> <!channel> <https://evil.example/login|Click to re-auth`` once posted a live
`<!channel>` and a phishing link to Slack, and put the same string into PagerDuty's
`links.href`. Every hostile string below goes through every field of every sink's message.
"""

from __future__ import annotations

import io
import re
from urllib.parse import urlparse

import pytest

from alerting.console import ConsoleNotifier
from alerting.pagerduty import pagerduty_event
from alerting.slack import fallback_text, incident_blocks
from detectors.verdict import Verdict
from streams.state.judging import alert_from_verdict
from tests.standins import LIVE_MENTION

BASE = "http://127.0.0.1:6066"
HOSTILE = [
    "a> <!channel> <https://evil.example/login|Click to re-auth",
    "<!here>", "<@U0123ABCD>", "<#C0123ABCD>", "<!subteam^S123|@oncall>", "*bold* _it_ ~strike~ `code`",
    "x|y>z", "&lt;!channel&gt;", "https://evil.example/?q=<script>", "%3C!channel%3E", "🔥" * 40, "a" * 256,
]


def alerts_for(value: str) -> list[dict]:
    spike = Verdict(kind="flash_spike", status="firing", severity="error", ts=1.7e9, team=value, endpoint=value,
                    run_id=None, observed=12.0, baseline=1.0, ratio=12.0, unit="usd",
                    summary=f"{value}/{value} is spending at 12x", since=1.7e9, window_start=1.7e9, window_s=60,
                    cause="traffic", contributors=[{"dimension": "user", "value": value, "share": 0.9}],
                    cause_figures={"calls_ratio": 12.0})
    run = Verdict(kind="runaway_training", status="firing", severity="critical", ts=1.7e9, team=value,
                  endpoint=None, run_id=value, observed=90.0, baseline=60.0, ratio=1.5, unit="usd",
                  summary=f"training run {value} ({value}) is projected to cost $90", since=1.7e9)
    zero = Verdict(kind="flash_spike", status="firing", severity="error", ts=1.7e9, team=value, endpoint=value,
                   run_id=None, observed=5.0, baseline=0.0, ratio=float("inf"), unit="usd", summary="5 vs 0",
                   since=1.7e9)
    alerts = [alert_from_verdict(v, BASE) for v in (spike, run, zero)]
    return alerts + [dict(a, status="resolved") for a in alerts]


def mrkdwn_texts(message: dict) -> list[str]:
    texts = [message["text"]]
    for block in message["blocks"]:
        if block["type"] == "section":
            texts += [block["text"]["text"]] if "text" in block else []
            texts += [f["text"] for f in block.get("fields", [])]
        elif block["type"] == "context":
            texts += [e["text"] for e in block["elements"]]
    return texts


def assert_safe_mrkdwn(text: str) -> None:
    assert not LIVE_MENTION.search(text), text
    for target in re.findall(r"<([^>]*)>", text):  # Slack parses <...> as a link or a mention
        url = target.split("|", 1)[0]
        assert url.startswith(BASE + "/"), f"a link that is not ours: {target!r}"
        assert " " not in url and "<" not in url


@pytest.mark.parametrize("value", HOSTILE)
def test_every_sink_field_is_escaped_or_encoded(value):
    for alert in alerts_for(value):
        message = {"text": fallback_text(alert), "blocks": incident_blocks(alert, "Resolved at " + alert["ts"])}
        for text in mrkdwn_texts(message):
            assert_safe_mrkdwn(text)
        header = message["blocks"][0]["text"]
        assert header["type"] == "plain_text" and "<" not in header["text"] and ">" not in header["text"]
        event = pagerduty_event(alert, "r" * 32)
        for link in event.get("links", []):
            parsed = urlparse(link["href"])
            assert link["href"].startswith(BASE + "/") and " " not in link["href"] and parsed.netloc == "127.0.0.1:6066"
            assert "<" not in parsed.path and "|" not in parsed.path
        if "payload" in event:
            assert len(event["payload"]["summary"]) <= 1024 and len(event["payload"]["component"]) <= 255
        out = io.StringIO()
        import asyncio

        asyncio.run(ConsoleNotifier(out).notify(alert))
        assert "\n" not in out.getvalue().rstrip("\n")  # one line per alert, whatever the names hold


def test_a_zero_baseline_is_null_not_infinity_and_still_formats():
    [_, _, zero, *_] = alerts_for("team")
    assert zero["ratio"] is None
    assert "n/a" in " ".join(mrkdwn_texts({"text": fallback_text(zero), "blocks": incident_blocks(zero)}))
