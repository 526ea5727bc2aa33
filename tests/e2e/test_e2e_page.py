"""Issue 37 "Look": a real worker's page at `GET /` lists the teams it has seen, hostile names as text."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.conftest import make_usage, wait_for
from tests.kafka_helpers import publish
from tests.spiky_traffic import WINDOW_S, recent_start, spiky_usage

pytestmark = pytest.mark.e2e

HOSTILE = "<script>alert(1)</script>"


def test_the_page_lists_each_team_and_shows_a_hostile_name_as_text(broker, topics, make_worker):
    worker = make_worker()
    now = time.time()
    events = [make_usage(ts=now - 60 * i, team=team, endpoint="chat-api", cost_usd=cost, event_id=f"{team}-{i}")
              for i in range(1, 6) for team, cost in (("search", 2.0), (HOSTILE, 0.5))]
    publish(broker.bootstrap, topics.usage, [(i % 4, orjson.dumps(event)) for i, event in enumerate(events)])

    def page_with_both() -> str | None:
        response = worker.get("/")
        text = response.text
        return text if response.status_code == 200 and "search" in text and "&lt;script&gt;" in text else None

    html = wait_for(page_with_both, timeout=120, what="both teams on the page")
    assert worker.get("/").headers["content-type"].startswith("text/html")
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.index("?team=search") < html.index("?team=%3Cscript")  # largest spend first
    assert "<polyline" in html

    team = worker.get("/", team=HOSTILE)
    assert team.status_code == 200 and "<script" not in team.text and "chat-api" in team.text
    # Where the team's money went, from the worker's own ledger: every dollar here was a call's.
    assert "<h2>Spend by category</h2>" in team.text and "<td>api_tokens</td>" in team.text
    assert "<td class=num>100%</td>" in team.text and "<h2>Cost per outcome</h2>" in team.text
    assert worker.get("/table/").status_code == 404


def spiky_worker(broker, topics, make_worker, **settings: str):
    """A worker fed the spiky workload (tests/spiky_traffic.py) with its spike in the windows the ledger keeps,
    plus a little spend by a team with a hostile name; returns (worker, the spike's firing alert)."""
    worker = make_worker(SPENDWATCH_WINDOW_SECONDS=str(WINDOW_S), **settings)
    start = recent_start(12)
    usage = spiky_usage(start, spike_at_s=600)  # the ledger keeps the last 15 windows: 570 s to 720 s
    usage += [make_usage(ts=start + 60 * i, team=HOSTILE, endpoint=HOSTILE, cost_usd=0.5, event_id=f"h-{i}")
              for i in range(1, 6)]
    usage.sort(key=lambda e: e["ts"])
    publish(broker.bootstrap, topics.usage, [(0, orjson.dumps(usage[i:i + 50])) for i in range(0, len(usage), 50)])

    def spike() -> dict | None:
        alerts = worker.get("/alerts").json()["alerts"]
        return next((a for a in alerts if a["kind"] == "flash_spike" and a["status"] == "firing"
                     and a["team"] == "search" and a["endpoint"] == "chat-api"), None)

    return worker, wait_for(spike, timeout=180, what="the spike's alert")


def test_the_team_page_draws_the_spike_above_its_band_and_the_incident_page_tells_it(broker, topics, make_worker):
    worker, alert = spiky_worker(broker, topics, make_worker, SPENDWATCH_PUBLIC_URL="http://spendwatch.test")
    assert alert["links"]["page"] == f"http://spendwatch.test/?incident={alert['dedup_key']}"
    team = worker.get("/", team="search").text
    chat = team[team.index("<td>chat-api</td>"):]
    chat = chat[:chat.index("</tr>")]
    assert 'class="band"' in chat and 'class="above-band"' in chat and f'data-incident="{alert["dedup_key"]}"' in chat
    assert f'href="/?incident={alert["dedup_key"]}"' in team and f"<td class=cause>{alert['cause']}</td>" in team

    incident = worker.get("/", incident=alert["dedup_key"])
    assert incident.status_code == 200 and incident.headers["content-type"].startswith("text/html")
    html = incident.text
    assert alert["cause"] in html and 'class="above-band"' in html and "Silences that hold it" in html
    delivery = html[html.index("<h2>Delivery"):html.index("<h2>Silences")]
    assert ">delivered<" in delivery  # to the console, the only receiver set here
    assert worker.get("/", incident="0" * 32).status_code == 404
