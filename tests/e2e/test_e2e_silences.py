"""End to end, issue "Poison": silences that stay small, and Slack clicks that cannot flood or break them.

A worker, the embedded broker and the Slack stand-in. No traffic is needed: the test posts an
incident message with its buttons to the stand-in itself, then clicks them as Slack would
(signed, form-encoded), so each test is about the click path and the silences topic alone.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from alerting.slack import SILENCE, incident_buttons
from streams.input.events import MAX_NAME_CHARS
from tests.alerting.test_alerting import BOT_TOKEN
from tests.conftest import wait_for
from tests.kafka_helpers import read_all
from tests.standins import StandIn

pytestmark = pytest.mark.e2e

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
HTTP_TOKEN = "http-token-for-the-silences-test"


def clicking_env(standin: StandIn, **extra: str) -> dict[str, str]:
    return {"SPENDWATCH_SLACK_BOT_TOKEN": BOT_TOKEN, "SPENDWATCH_SLACK_CHANNEL": "#spend",
            "SPENDWATCH_SLACK_API_URL": f"{standin.url}/api/", "SPENDWATCH_SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SPENDWATCH_HTTP_TOKEN": HTTP_TOKEN, **extra}


def incident_message(standin: StandIn, dedup_key: str, team: str = "search") -> tuple[str, str, dict[str, Any]]:
    """Post an incident message with its buttons, as the worker would have; its channel id, ts and body."""
    alert = {"dedup_key": dedup_key, "team": team, "endpoint": "chat", "kind": "flash_spike", "severity": "error",
             "alert_id": f"a-{dedup_key}"}
    message = {"channel": "#search", "text": "spike", "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Flash spike"}}, incident_buttons(alert),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "spendwatch"}]}]}
    answer = httpx.post(f"{standin.url}/api/chat.postMessage", json=message, timeout=10,
                        headers={"Authorization": f"Bearer {BOT_TOKEN}"}).json()
    assert answer["ok"], answer
    return answer["channel"], answer["ts"], message


def click_body(channel: str, ts: str, message: dict[str, Any], user: str, payload: Any = None) -> bytes:
    """A `block_actions` payload for the Silence 4 h button (or `payload` as given), form-encoded."""
    if payload is None:
        [button] = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                    if e["action_id"] == SILENCE]
        payload = {"type": "block_actions", "user": {"id": "U0", "username": user}, "channel": {"id": channel},
                   "container": {"type": "message", "message_ts": ts, "channel_id": channel},
                   "message": {"type": "message", "ts": ts, "text": message["text"], "blocks": message["blocks"]},
                   "actions": [{"action_id": SILENCE, "block_id": "spendwatch-incident", "type": "button",
                                "value": button["value"], "action_ts": f"{time.time():.6f}"}]}
    return urllib.parse.urlencode({"payload": orjson.dumps(payload).decode()}).encode()


def signed(body: bytes, stamp: int | None = None) -> dict[str, str]:
    stamp_text = str(int(time.time()) if stamp is None else stamp)
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp_text}:".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp_text,
            "X-Slack-Signature": f"v0={digest}"}


def post_click(worker, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{worker.url}/slack/interactions", content=body, headers=headers, timeout=10)


def silences(worker) -> list[dict[str, Any]]:
    answer = httpx.get(f"{worker.url}/silences", headers={"Authorization": f"Bearer {HTTP_TOKEN}"}, timeout=10)
    return answer.json()["silences"]


def post_silence(worker, ends_in_s: float, team: str) -> httpx.Response:
    ends_at = datetime.fromtimestamp(time.time() + ends_in_s, tz=UTC).isoformat()
    return httpx.post(f"{worker.url}/silences", timeout=10, content=orjson.dumps(
        {"match": {"team": team}, "ends_at": ends_at, "comment": "planned", "created_by": "ana"}),
        headers={"Authorization": f"Bearer {HTTP_TOKEN}", "Content-Type": "application/json"})


def test_a_repeated_silence_click_extends_the_same_silence_and_a_replayed_click_changes_nothing(
        make_worker, standin):
    worker = make_worker(**clicking_env(standin))
    channel, ts, message = incident_message(standin, "incident-1")
    first = click_body(channel, ts, message, "ana")
    first_headers = signed(first)
    assert post_click(worker, first, first_headers).status_code == 200
    [made] = silences(worker)
    assert made["match"] == {"team": ["search"], "endpoint": ["chat"], "kind": ["flash_spike"]}

    time.sleep(1.5)  # a later click: its own timestamp decides the new end
    again = click_body(channel, ts, message, "ben")
    headers = signed(again)
    assert post_click(worker, again, headers).status_code == 200
    [extended] = silences(worker)
    assert extended["id"] == made["id"] and extended["ends_at"] > made["ends_at"]

    # Captured signed requests sent again, within Slack's 5 minutes: answered, and nothing changes.
    assert post_click(worker, again, headers).status_code == 200
    assert post_click(worker, first, first_headers).status_code == 200
    assert silences(worker) == [extended]
    assert standin.violations == []


def test_a_click_on_a_long_name_silences_it_and_a_bad_click_is_a_400_never_a_500(make_worker, standin):
    worker = make_worker(**clicking_env(standin))
    longest = "t" * MAX_NAME_CHARS  # valid in events, so it can be on an incident
    channel, ts, message = incident_message(standin, "incident-long", team=longest)
    body = click_body(channel, ts, message, "ana")
    assert post_click(worker, body, signed(body)).status_code == 200
    [made] = silences(worker)
    assert made["match"]["team"] == [longest]

    channel, ts, message = incident_message(standin, "incident-empty", team="")  # a value silences refuse
    body = click_body(channel, ts, message, "ana")
    answer = post_click(worker, body, signed(body))
    assert answer.status_code == 400 and "match.team" in answer.json()["error"], answer.text

    channel, ts, message = incident_message(standin, "incident-2")
    good = orjson.loads(urllib.parse.parse_qs(click_body(channel, ts, message, "ana").decode())["payload"][0])
    bad_payloads = [
        [],
        {**good, "user": "ana"},
        {**good, "actions": ["silence_4h"]},
        {**good, "message": {"ts": ts, "blocks": {"not": "a list"}}},
        {**good, "actions": [{**good["actions"][0], "value": "[1, 2]"}]},
    ]
    for payload in bad_payloads:
        body = click_body(channel, ts, message, "ana", payload)
        answer = post_click(worker, body, signed(body))
        assert answer.status_code == 400, (payload, answer.status_code, answer.text)
        assert answer.json()["error"]
    assert [s["id"] for s in silences(worker)] == [made["id"]]


def test_past_max_silences_a_post_and_a_click_are_refused_and_expired_silences_are_tombstoned(
        broker, topics, make_worker, standin):
    worker = make_worker(**clicking_env(standin, SPENDWATCH_MAX_SILENCES="2",
                                        SPENDWATCH_SILENCE_RETENTION_SECONDS="0"))
    short = post_silence(worker, 6, "ads")
    assert short.status_code == 201, short.text
    assert post_silence(worker, 3600, "search").status_code == 201
    refused = post_silence(worker, 3600, "billing")
    assert refused.status_code == 409 and "SPENDWATCH_MAX_SILENCES" in refused.json()["error"]

    channel, ts, message = incident_message(standin, "incident-full")
    body = click_body(channel, ts, message, "ana")
    clicked = post_click(worker, body, signed(body))
    assert clicked.status_code == 409 and "SPENDWATCH_MAX_SILENCES" in clicked.json()["error"]
    noted = orjson.dumps(standin.message(channel, ts)["blocks"]).decode()
    assert "Not silenced" in noted and "silence_4h" in noted  # said in Slack, and the button is still there
    assert len(silences(worker)) == 2

    # The short one ends: it is removed from every worker's book and from the topic (a tombstone).
    short_id = short.json()["id"]
    wait_for(lambda: short_id not in {s["id"] for s in silences(worker)}, timeout=60,
             what="the expired silence to be removed")
    records = read_all(broker.bootstrap, f"{topics.prefix}-spendwatch-silences", expected=3, timeout_s=30)
    assert [(r.key.decode(), r.value is None) for r in records][-1] == (short_id, True)
    assert post_silence(worker, 3600, "billing").status_code == 201  # room again
    assert standin.violations == []
