"""End to end, issue "Route": each team's alerts reach its own Slack channel and PagerDuty key.

A worker, the embedded broker and the Slack (bot token) and PagerDuty stand-ins. Two teams
have a route each; everything else falls to the catch-all (#spend and the default key,
which pages critical alerts only).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from tests.alerting.test_alerting import BOT_TOKEN, ROUTING_KEY
from tests.conftest import wait_for
from tests.e2e.test_e2e_ingest import metric
from tests.kafka_helpers import publish
from tests.spiky_traffic import WINDOW_S, many_teams_usage, recent_start, runaway_run, spiky_usage
from tests.standins import StandIn, slack_click

pytestmark = pytest.mark.e2e

TEAM_KEYS = {"team-0": "0" * 32, "team-1": "1" * 32}
ROUTES = [{"match": {"team": team}, "slack_channel": f"#{team}", "pagerduty_routing_key": key}
          for team, key in TEAM_KEYS.items()]


def routed_env(standin: StandIn, **extra: str) -> dict[str, str]:
    env = {
        "SPENDWATCH_WINDOW_SECONDS": str(WINDOW_S),
        "SPENDWATCH_SLACK_BOT_TOKEN": BOT_TOKEN,
        "SPENDWATCH_SLACK_CHANNEL": "#spend",
        "SPENDWATCH_SLACK_API_URL": f"{standin.url}/api/",
        "SPENDWATCH_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "SPENDWATCH_PAGERDUTY_EVENTS_URL": f"{standin.url}/v2/enqueue",
        "SPENDWATCH_ROUTES": orjson.dumps(ROUTES).decode(),
    }
    env.update(extra)
    return env


def publish_two_teams_and_a_runaway(broker, topics, worker) -> float:
    """Returns when the workload ends, in event time."""
    start = recent_start(12)
    runs, samples = runaway_run(start)
    publish(broker.bootstrap, topics.runs, [(0, orjson.dumps(e)) for e in runs])
    wait_for(lambda: worker.get("/runs/ft-1").status_code == 200, what="the run to be known")
    publish(broker.bootstrap, topics.gpu, [(0, orjson.dumps(e)) for e in samples])
    usage = many_teams_usage(start, teams=2)
    publish(broker.bootstrap, topics.usage, [(0, orjson.dumps(usage[i:i + 50])) for i in range(0, len(usage), 50)])
    return start + 12 * 60


def pages(standin: StandIn, routing_key: str) -> list[dict]:
    return [e for e in standin.of("pagerduty") if e["routing_key"] == routing_key]


def test_each_teams_spike_lands_in_its_own_channel_and_on_its_own_routing_key(broker, topics, make_worker, standin):
    worker = make_worker(**routed_env(standin))
    publish_two_teams_and_a_runaway(broker, topics, worker)
    wait_for(lambda: all(len(pages(standin, key)) >= 2 for key in TEAM_KEYS.values())
             and len(standin.of("chat.update")) >= 2, timeout=180, what="both teams' spikes to fire and resolve")
    time.sleep(3)  # nothing more may follow
    assert standin.violations == []
    for team, key in TEAM_KEYS.items():
        posted = standin.in_channel(f"#{team}")
        assert [m["text"][:10] for m in posted] == ["[ERROR] Fl", "[RESOLVED]"]
        assert all(team in m["text"] for m in posted)
        assert posted[1]["thread_ts"] == standin.in_channel(f"#{team}", "chat.update")[0]["ts"]
        paged = pages(standin, key)
        assert [e["event_action"] for e in paged] == ["trigger", "resolve"]
        assert paged[0]["payload"]["group"] == team and paged[0]["dedup_key"] == paged[1]["dedup_key"]
    # The runaway matched no route: the catch-all's channel, and its key (critical pages).
    [runaway] = standin.in_channel("#spend")
    assert "Runaway training" in runaway["text"] or "runaway" in runaway["text"].lower()
    assert [e["payload"]["class"] for e in pages(standin, ROUTING_KEY)] == ["runaway_training"]
    assert len(standin.of("chat.postMessage")) == 5 and len(standin.of("pagerduty")) == 5


#: Changes (POST /silences) need the HTTP token and a JSON body; without a token the API is read-only.
HTTP_TOKEN = "http-token-for-the-route-tests"


def with_token(worker):
    worker.headers["Authorization"] = f"Bearer {HTTP_TOKEN}"
    return worker


def silence(worker, ends_in_s: float, **match: str) -> str:
    ends_at = datetime.fromtimestamp(time.time() + ends_in_s, tz=UTC).isoformat()
    answer = httpx.post(f"{worker.url}/silences", timeout=10, content=orjson.dumps(
        {"match": match, "ends_at": ends_at, "comment": "planned launch", "created_by": "ana"}),
        headers={**worker.headers, "Content-Type": "application/json"})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def spike_alerts(worker, team: str) -> list[dict]:
    return [a for a in worker.get("/alerts").json()["alerts"] if a["team"] == team and a["kind"] == "flash_spike"]


@pytest.mark.long
def test_silences_hold_pages_back_survive_a_sigkill_reach_a_second_worker_and_expire(
        broker, topics, make_worker, standin):
    env = routed_env(standin, SPENDWATCH_HTTP_TOKEN=HTTP_TOKEN)
    first = with_token(make_worker(**env))
    held = silence(first, 3600, team="team-0", kind="flash_spike")
    expiring = silence(first, 90, team="team-1")  # room for a slow machine to raise both spikes first
    first.kill()  # SIGKILL: the silences live on the topic, not in this process
    second = with_token(make_worker(**env))
    listed = {s["id"]: s for s in second.get("/silences").json()["silences"]}
    assert listed.keys() == {held, expiring} and listed[held]["state"] == "active"
    assert listed[held]["match"] == {"team": ["team-0"], "kind": ["flash_spike"]}

    end = publish_two_teams_and_a_runaway(broker, topics, second)
    wait_for(lambda: len(spike_alerts(second, "team-0")) == 2 and len(spike_alerts(second, "team-1")) == 2,
             timeout=120, what="both teams' spikes to fire and resolve")
    wait_for(lambda: standin.in_channel("#spend"), what="the runaway, which no silence matches")
    time.sleep(3)
    # Raised, recorded and shown, marked silenced; nothing sent anywhere for either team.
    assert all(a["silenced"] for team in TEAM_KEYS for a in spike_alerts(second, team))
    assert [m for m in standin.of("chat.postMessage") if "#spend" not in m["channel"]] == []
    assert [e["routing_key"] for e in standin.of("pagerduty")] == [ROUTING_KEY]
    assert metric(second, "spendwatch_alerts_silenced_total", kind="flash_spike") == 4

    # team-1's silence expires; its next incident goes through.
    wait_for(lambda: second.get(f"/silences/{expiring}").json()["state"] == "expired", timeout=120,
             what="the short silence to expire")
    again = spiky_usage(end, minutes=4, spike_at_s=120, seed=99, team="team-1")
    publish(broker.bootstrap, topics.usage, [(0, orjson.dumps(again[i:i + 50])) for i in range(0, len(again), 50)])
    wait_for(lambda: pages(standin, TEAM_KEYS["team-1"]) and standin.in_channel("#team-1"), timeout=120,
             what="team-1's next incident, past its silence")
    [fired] = [a for a in spike_alerts(second, "team-1") if not a["silenced"] and a["status"] == "firing"]
    assert fired["status"] == "firing" and "team-1" in standin.in_channel("#team-1")[0]["text"]
    assert standin.in_channel("#team-0") == [] and pages(standin, TEAM_KEYS["team-0"]) == []
    assert standin.violations == []


SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def test_slack_buttons_acknowledge_at_pagerduty_and_silence_and_refuse_forged_or_stale_clicks(
        broker, topics, make_worker, standin):
    worker = make_worker(**routed_env(standin, SPENDWATCH_SLACK_SIGNING_SECRET=SIGNING_SECRET))
    publish_two_teams_and_a_runaway(broker, topics, worker)
    wait_for(lambda: all(standin.in_channel(f"#{team}") for team in TEAM_KEYS) and pages(standin, TEAM_KEYS["team-0"]),
             timeout=120, what="both teams' incident messages")
    channel, ts, message = standin.first_message("#team-0")
    assert [e["text"]["text"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]] == \
        ["Acknowledge", "Silence 4 h"]
    trigger = pages(standin, TEAM_KEYS["team-0"])[0]
    # Both incidents over (each resolve updates its message), so nothing else moves while the clicks come.
    wait_for(lambda: all(len(pages(standin, key)) >= 2 for key in TEAM_KEYS.values())
             and len(standin.of("chat.update")) >= 2, what="both teams' resolves")
    before = (len(standin.of("pagerduty")), len(standin.of("chat.update")))

    # A forged signature and a replay from ten minutes ago: 401, nothing changes.
    assert slack_click(worker.url, SIGNING_SECRET, channel, ts, message, "acknowledge", sign_with="not-the-secret") \
        == 401
    assert slack_click(worker.url, SIGNING_SECRET, channel, ts, message, "acknowledge",
                       timestamp=int(time.time()) - 600) == 401
    time.sleep(2)
    assert (len(standin.of("pagerduty")), len(standin.of("chat.update"))) == before

    assert slack_click(worker.url, SIGNING_SECRET, channel, ts, message, "acknowledge", user="ana") == 200
    acked = wait_for(lambda: [e for e in pages(standin, TEAM_KEYS["team-0"]) if e["event_action"] == "acknowledge"],
                     what="PagerDuty's acknowledge")
    assert [e["dedup_key"] for e in acked] == [trigger["dedup_key"]]
    updated = standin.message(channel, ts)
    assert "Acknowledged by ana" in orjson.dumps(updated["blocks"]).decode()
    assert [e["action_id"] for b in updated["blocks"] if b["type"] == "actions" for e in b["elements"]] == \
        ["silence_4h"]

    channel, ts, message = standin.first_message("#team-1")
    assert slack_click(worker.url, SIGNING_SECRET, channel, ts, message, "silence_4h", user="ben") == 200
    [made] = worker.get("/silences").json()["silences"]
    assert made["match"] == {"team": ["team-1"], "endpoint": ["chat-api"], "kind": ["flash_spike"]}
    assert made["created_by"] == "ben" and made["state"] == "active"
    assert f"silence {made['id']}" in orjson.dumps(standin.message(channel, ts)["blocks"]).decode()
    assert standin.violations == []
