"""Values from events reach Slack, PagerDuty, webhooks and the console escaped or encoded for where they go.

A `run_id` of ``a> <!channel> <https://evil.example/login|Click to re-auth`` once posted a live
`<!channel>` and a phishing link to Slack, and put the same string into PagerDuty's
`links.href`. Every hostile string below goes through every field of every sink's message.
"""

from __future__ import annotations

import io
import re
from urllib.parse import urlparse

import orjson
import pytest

from alerting.console import ConsoleNotifier
from alerting.pagerduty import pagerduty_event
from alerting.slack import fallback_text, incident_blocks, notice
from detectors.verdict import Verdict
from streams.state.judging import alert_from_verdict
from tests.standins import LIVE_MENTION

BASE = "http://127.0.0.1:6066"
HOSTILE = [
    "a> <!channel> <https://evil.example/login|Click to re-auth",
    "<!here>", "<@U0123ABCD>", "<#C0123ABCD>", "<!subteam^S123|@oncall>", "*bold* _it_ ~strike~ `code`",
    "x|y>z", "&lt;!channel&gt;", "https://evil.example/?q=<script>", "%3C!channel%3E", "🔥" * 40, "a" * 256,
    "<@U123> please re-auth at https://evil.example/login", "#general", "@here", "evil.example",
    "mail ops@evil.example", "www.evil.example/re-auth", "slack://channel?id=C1", "ftp://evil.example",
]
#: Names that Slack (and PagerDuty, and what forwards its incidents) would turn into something live.
LINKABLE = ["<@U123> please re-auth at https://evil.example/login", "#general", "@here", "@channel", "evil.example",
            "mail ops@evil.example", "www.evil.example/re-auth", "http://10.0.0.1/x", "slack://channel?id=C1",
            "see evil.example.", "EVIL.EXAMPLE", "a>b <!here> #ops-oncall"]


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


#: What an auto-linker finds in plain text: a scheme, a dotted host name (its last label has letters: our own
#: figures such as $12.50 are not hosts), an email, an @mention, a #channel, Slack's <@ <! <# syntax.
AUTOLINK = re.compile(r"[a-z][a-z0-9+.-]*:/|[\w-]\.[^\W\d_]|\w@\w|(?<![\w&])[@#]\w|<[@!#]", re.I)
OURS = re.compile(r"<" + re.escape(BASE) + r"/[^>]*>")  # our own links, which point at the worker


def assert_nothing_linkable(text: str, where: str) -> None:
    text = OURS.sub("", text)
    assert not AUTOLINK.search(text), f"{where}: {AUTOLINK.search(text).group()!r} is live in {text!r}"


def slack_texts(alert: dict) -> list[tuple[str, str]]:
    message = {"text": fallback_text(alert), "blocks": incident_blocks(alert, "Resolved at " + alert["ts"])}
    out = [("mrkdwn", t) for t in mrkdwn_texts(message)] + [("header", message["blocks"][0]["text"]["text"])]
    return out + [("notice", t) for t in mrkdwn_texts(notice(f"Done: stopped training run {alert['run_id']}"))]


def pagerduty_texts(alert: dict) -> list[tuple[str, str]]:
    event = pagerduty_event(alert, "r" * 32)
    if "payload" not in event:
        return []
    payload = event["payload"]
    details = orjson.dumps(payload["custom_details"]).decode()
    return [("summary", payload["summary"]), ("component", payload["component"]), ("group", payload["group"]),
            ("custom_details", details)]


@pytest.mark.parametrize("value", LINKABLE)
def test_names_never_become_a_mention_link_autolink_or_channel(value):
    """Issue "Poison": a run id such as `<@U123> please re-auth at https://evil.example/login`, or a team
    named `#general`, `@here` or `evil.example`, is shown as text in Slack and PagerDuty, never as
    something a click or a notification acts on."""
    for alert in alerts_for(value):
        for where, text in slack_texts(alert) + pagerduty_texts(alert):
            assert_nothing_linkable(text, where)


def test_mrkdwn_that_carries_names_asks_slack_not_to_auto_link():
    """`verbatim: true`: Slack neither links URLs nor channel names in it (its text object reference)."""
    [spike, *_] = alerts_for("evil.example")
    message = {"text": fallback_text(spike), "blocks": incident_blocks(spike, "Resolved at " + spike["ts"])}
    objects = [b["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b]
    objects += [f for b in message["blocks"] if b["type"] == "section" for f in b.get("fields", [])]
    objects += [e for b in message["blocks"] if b["type"] == "context" for e in b["elements"]]
    objects += [b["text"] for b in notice("Done: evil.example")["blocks"]]
    assert objects and all(o["type"] == "mrkdwn" and o["verbatim"] is True for o in objects)


def test_names_still_read_as_written_once_the_invisible_breaks_are_taken_out():
    [spike, *_] = alerts_for("evil.example")
    shown = fallback_text(spike) + pagerduty_event(spike, "r" * 32)["payload"]["summary"]
    assert "evil.example" not in shown and "evil.example" in shown.replace("\u2060", "")


def test_a_zero_baseline_is_null_not_infinity_and_still_formats():
    [_, _, zero, *_] = alerts_for("team")
    assert zero["ratio"] is None
    assert "n/a" in " ".join(mrkdwn_texts({"text": fallback_text(zero), "blocks": incident_blocks(zero)}))
