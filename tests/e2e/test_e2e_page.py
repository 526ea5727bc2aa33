"""Issue 37 "Look": a real worker's page at `GET /` lists the teams it has seen, hostile names as text."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.conftest import make_usage, wait_for
from tests.kafka_helpers import publish

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
    assert worker.get("/table/").status_code == 404
