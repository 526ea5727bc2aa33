"""Issue 37 "Look": the page at `GET /` (streams/worker/page.py rendering, streams/worker/web.py serving).

The rendering is pure, so most tests call it with dicts; the last ones serve the worker's own aiohttp
application on 127.0.0.1 (tests/worker/served.py) to check the guard around `/`.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import aiohttp
import pytest

from alerting.model import rfc3339
from alerting.silences import parse_silence
from detectors.spike import SpikeRule
from streams.worker import page
from tests.worker.served import Served, serve

HOSTILE = "<script>alert(1)</script>"
TOKEN = "http-token-0123456789abcdef"


def a_row(team: str, cost: float, series: list[float] | None = None, budgets: list | None = None) -> dict:
    return {"team": team, "cost_usd": cost, "requests": 10, "series": series or [1.0, 2.0, 3.0],
            "budgets": budgets or []}


def an_alert(team: str, status: str, key: str, **extra: object) -> dict:
    return {"alert_id": f"{key}-{status}", "dedup_key": key, "kind": "flash_spike", "status": status, "team": team,
            "endpoint": "chat-api", "since": "2026-12-07T04:00:00Z", "ts": "2026-12-07T04:01:00Z",
            "summary": "spend 15x usual", **extra}


def test_a_hostile_team_name_is_text_on_the_overview_and_the_team_page():
    alert = an_alert(HOSTILE, "firing", "k1", endpoint=HOSTILE, cause="traffic",
                     contributors=[{"dimension": "user", "value": HOSTILE, "share": 0.9}])
    budget = {"budget": HOSTILE, "amount_usd": 10, "spent_usd": 5, "forecast_usd": 20}
    overview = page.render_overview([a_row(HOSTILE, 5.0, budgets=[budget])], [alert], 1, "now")
    team = page.render_team(HOSTILE, [{"endpoint": HOSTILE, "cost_usd": 1.0, "series": [1.0]}], [alert], [budget],
                            "now")
    for html in (overview, team):
        assert "<script" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The link to the team's page quotes the name for the URL as well.
    assert 'href="/?team=%3Cscript%3Ealert%281%29%3C%2Fscript%3E"' in overview


def test_the_overview_with_no_teams_says_so_and_refreshes_itself():
    html = page.render_overview([], [], 0, "2026-12-07T04:00:00Z")
    assert "No spend seen yet" in html
    assert '<meta http-equiv="refresh" content="10">' in html
    assert "<table" not in html


def test_the_overview_lists_largest_spend_first_and_draws_only_the_top_teams():
    rows = [a_row(f"team-{i:04d}", float(i)) for i in range(page.TOP_TEAMS + 50)]
    html = page.render_overview(rows, [], len(rows), "now")
    shown = re.findall(r'\?team=(team-\d+)"', html)
    assert len(shown) == page.TOP_TEAMS
    assert shown[0] == f"team-{page.TOP_TEAMS + 49:04d}" and shown == sorted(shown, reverse=True)
    assert f"{page.TOP_TEAMS} of {len(rows)} teams shown" in html


def test_open_incidents_are_firing_alerts_not_resolved_since():
    alerts = [an_alert("a", "firing", "k1"), an_alert("b", "firing", "k2"), an_alert("a", "resolved", "k1"),
              an_alert("c", "resolved", "k3")]
    assert [a["dedup_key"] for a in page.open_incidents(alerts)] == ["k2"]
    html = page.render_overview([a_row("a", 2.0), a_row("b", 1.0)], page.open_incidents(alerts), 2, "now")
    assert "1 open incident<" in html


@pytest.mark.parametrize("values", [[], [3.0], [0.0, 0.0], [1.0, 5.0, 2.0], [math.nan, math.inf, -math.inf, 1.0],
                                    [None, "x", 2]])
def test_a_sparkline_is_valid_svg_without_nan_for_any_points(values):
    svg = page.sparkline(values, 120, 24)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "nan" not in svg.lower() and "inf" not in svg.lower()
    coords = re.findall(r'points="([^"]*)"', svg)
    if not values:
        assert coords == []
    else:
        pairs = [tuple(map(float, p.split(","))) for p in coords[0].split()]
        assert len(pairs) == max(2, len(values))
        assert all(0 <= x <= 120 and 0 <= y <= 24 for x, y in pairs)


def test_the_team_page_shows_each_endpoint_and_each_incidents_cause_and_contributors():
    alerts = [an_alert("search", "firing", "k1", cause="traffic",
                       contributors=[{"dimension": "user", "value": "eval-agent-7", "share": 0.93}])]
    html = page.render_team("search", [{"endpoint": "chat-api", "cost_usd": 3.0, "series": [1, 2]},
                                       {"endpoint": "rerank", "cost_usd": 1.0, "series": [1]}], alerts, [], "now")
    assert html.index("chat-api") < html.index("rerank")
    assert "traffic" in html and "user eval-agent-7 (93%)" in html and ">open<" in html
    assert html.count("<polyline") == 2


@pytest.fixture
async def served(tmp_path: Path):
    started: list[Served] = []

    async def start(**settings: object) -> Served:
        worker = await serve(tmp_path / str(len(started)), **settings)
        worker.own_every_partition()
        worker.peers_are()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        await worker.server.close()


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers or {}) as response:
        return response.status, response.content_type, await response.text()


async def test_the_page_is_served_at_slash_only_and_faust_pages_stay_hidden(served):
    worker = await served()
    status, content_type, text = await get(f"{worker.url}/")
    assert (status, content_type) == (200, "text/html") and "No spend seen yet" in text
    for path in ("/table/", "/router/", "/stats/", "/graph/", "/anything"):
        assert (await get(f"{worker.url}{path}"))[0] == 404, path


async def test_the_page_wants_the_read_token_when_one_is_set(served):
    worker = await served(http_token=TOKEN)
    assert (await get(f"{worker.url}/"))[0] == 401
    assert (await get(f"{worker.url}/?team=search"))[0] == 401
    assert (await get(f"{worker.url}/", {"Authorization": f"Bearer {TOKEN}"}))[0] == 200


# -- the expected band, the chart and the incident page (issue 37, second part) -------------------------

RULE = SpikeRule(window_s=60, ratio=10.0, min_usd=1.0, grace_period=2)


def a_state(cost: float = 0.5, learned: int = 5, calls: float = 20.0) -> dict:
    return {"b": [learned, [calls, 20_000.0, cost], [1.0] * 24]}


def test_the_band_is_the_detectors_expectation_and_spike_bar_or_none_while_it_warms_up():
    assert page.expected_band(a_state(), RULE, [0, 60]) == [(0.5, 0.0, 5.0)] * 2
    assert page.expected_band(a_state(cost=0.01), RULE, [0]) == [(0.01, 0.0, 1.0)]  # never under min_usd
    assert page.expected_band(a_state(learned=1), RULE, [0]) == [None]
    assert page.expected_band(None, RULE, [0, 60]) == [None, None]
    # A quiet key: the Poisson bar, not the ratio, sets the band's top.
    [(level, _, high)] = page.expected_band(a_state(calls=0.2, cost=0.02), RULE, [0])
    assert level == 0.02 and high > 10 * 0.02
    # A window still open keeps what was fixed when it opened.
    state = dict(a_state(), open=[[120, 3, 100, 0.3, 1e5, 7.0, 20.0, 20_000.0, 0.6]])
    assert page.expected_band(state, RULE, [60, 120])[1] == (0.6, 0.0, 7.0)
    state = a_state()
    page.expected_band(state, RULE, [0])
    assert state == a_state()  # read only


def test_the_chart_draws_the_band_a_spike_above_it_and_the_incident_where_it_began_and_ended():
    starts = [0, 60, 120, 180, 240]
    spans = [{"key": "k1", "kind": "flash_spike", "cause": "traffic", "began": 125.0, "ended": 200.0}]
    svg = page.band_chart(starts, [0.5, 0.4, 9.0, 0.6, 0.5], [(0.5, 0.0, 5.0)] * 5, spans, 60, HOSTILE)
    assert svg.count('class="band"') == 5 and svg.count('class="expected"') == 5
    assert svg.count('class="above-band"') == 1 and 'data-incident="k1"' in svg
    assert svg.count('class="incident-edge"') == 2  # began and ended
    assert "<script" not in svg and "nan" not in svg.lower()
    still_open = page.band_chart(starts, [1] * 5, [None] * 5, [dict(spans[0], ended=None)], 60, "x")
    assert still_open.count('class="incident-edge"') == 1 and 'class="band"' not in still_open
    assert "no windows yet" in page.band_chart([], [], [], spans, 60, "x")


def test_incident_spans_pair_a_firing_with_its_resolve():
    alerts = [an_alert("a", "firing", "k1", since="2026-12-07T04:00:00Z"),
              an_alert("a", "firing", "k2", endpoint="rerank"),
              an_alert("a", "resolved", "k1", ts="2026-12-07T04:09:00Z")]
    spans = page.incident_spans(alerts, "chat-api")
    assert [(s["key"], s["ended"] - s["began"]) for s in spans] == [("k1", 540.0)]
    assert [s["ended"] for s in page.incident_spans(alerts, "rerank")] == [None]


def test_the_team_page_draws_each_endpoint_against_its_band_and_links_its_incidents():
    alerts = [an_alert("search", "firing", "k1", cause="traffic", since="1970-01-01T00:02:05Z")]
    row = {"endpoint": "chat-api", "cost_usd": 3.0, "series": [0.5, 9.0], "starts": [60, 120],
           "bands": [(0.5, 0.0, 5.0)] * 2}
    html = page.render_team("search", [row], alerts, [], "now")
    assert 'class="above-band"' in html and 'data-incident="k1"' in html
    assert 'href="/?incident=k1"' in html


def test_the_incident_page_shows_figures_windows_delivery_and_silences_all_escaped():
    alerts = [an_alert(HOSTILE, "firing", "k1", endpoint=HOSTILE, cause="traffic", observed=9.0, baseline=0.5,
                       ratio=18.0, unit="usd", severity="error", window={"start": "a", "end": "b"},
                       contributors=[{"dimension": "user", "value": HOSTILE, "share": 0.9}]),
              an_alert(HOSTILE, "resolved", "k1", ts="2026-12-07T04:09:00Z")]
    row = {"endpoint": HOSTILE, "cost_usd": 3.0, "series": [0.5, 9.0], "starts": [14400, 14460],
           "bands": [(0.5, 0.0, 5.0)] * 2}
    deliveries = [{"receiver": HOSTILE, "alert_id": "k1-firing", "status": "firing", "result": "delivered"}]
    silences = [{"id": "s1", "ends_at": "later", "created_by": HOSTILE, "comment": HOSTILE}]
    html = page.render_incident("k1", alerts, row, deliveries, silences, "now")
    assert "<script" not in html and html.count("&lt;script&gt;") >= 5
    assert "18.0x" in html and "traffic" in html and ">resolved<" in html and "delivered" in html and "s1" in html
    assert 'class="above-band"' in html
    bare = page.render_incident("k1", alerts[:1], None, [], [], "now")
    assert "knows of no delivery" in bare and "No windows kept" in bare and ">open<" in bare
    assert "No alert with this key" in page.render_incident("nope", [], None, [], [], "now")


async def test_the_incident_page_is_served_behind_the_token_with_its_silences(served):
    worker = await served(http_token=TOKEN)
    alert = an_alert("search", "firing", "k1", severity="error", observed=9.0, baseline=0.5, ratio=18.0, unit="usd")
    worker.pipeline.recent_alerts.append(alert)
    worker.pipeline.silences.put(parse_silence({"match": {"team": "search"}, "comment": "deploy", "created_by": "ana",
                                                "ends_at": rfc3339(time.time() + 3600)}, now=time.time()))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert (await get(f"{worker.url}/?incident=k1"))[0] == 401
    status, content_type, html = await get(f"{worker.url}/?incident=k1", auth)
    assert (status, content_type) == (200, "text/html")
    assert "deploy" in html and "18.0x" in html and "knows of no delivery" in html
    assert (await get(f"{worker.url}/?incident=nope", auth))[0] == 404


def test_a_thousand_teams_render_well_under_a_second():
    rows = [a_row(f"team-{i:04d}", float(i), series=[float(i % 7)] * 15) for i in range(1000)]
    incidents = [an_alert(f"team-{i:04d}", "firing", f"k{i}") for i in range(0, 1000, 10)]
    started = time.perf_counter()
    page.render_overview(rows, incidents, len(rows), "now")
    assert time.perf_counter() - started < 1.0


def test_the_team_page_draws_each_endpoints_last_hours_and_last_week():
    """Issue 37, "History worth a chart": two small lines per endpoint from the ledger's history."""
    row = {"endpoint": HOSTILE, "cost_usd": 3.0, "series": [1.0, 2.0], "minutes": [0.5] * 135 + [9.0],
           "hours": [30, 0, 30, math.nan]}
    html = page.render_team("t", [row], [], [], "now")
    assert "<script" not in html
    for key, text, peak in (("minutes", "last hours", "$9.00"), ("hours", "last week", "$30.00")):
        cell = re.search(rf'<div class="history-{key}">(.*?)</div>', html)
        assert cell is not None and text in cell.group(1) and f"peak {peak}" in cell.group(1)
        assert cell.group(1).count("<polyline") == 1 and "nan" not in cell.group(1).lower()
    empty = page.render_team("t", [{"endpoint": "e", "cost_usd": 0.0, "series": []}], [], [], "now")
    assert empty.count('class="history-') == 2  # an endpoint with no history yet: empty boxes, no error


def test_the_teams_list_draws_the_last_hours():
    html = page.render_overview([a_row("a", 2.0, series=[0.5] * 135)], [], 1, "now")
    assert "<th>last hours</th>" in html and "a: spend per window, last hours" in html


def test_the_team_page_shows_categories_tiers_cost_per_outcome_runs_and_the_budget_cone_as_text():
    from streams.worker import page_sections

    sections = [
        ("Spend by category", page_sections.categories(
            {"cost_usd": 10.0, "gpu_hours": 2.5,
             "categories": {"api_tokens": 2.0, "inference_serving": 5.0, "training": 3.0}})),
        ("Spend by model tier", page_sections.tiers([{"tier": HOSTILE, "requests": 3, "cost_usd": 6.0},
                                                     {"tier": "economy", "requests": 9, "cost_usd": 2.0}])),
        ("Cost per outcome", page_sections.unit_costs([
            {"endpoint": "bot", "outcome": HOSTILE, "spend_usd": 9.0, "outcomes": 3, "usd_per_outcome": 3.0,
             "expected_usd_per_outcome": 1.0, "previous": {"usd_per_outcome": None}},
            {"endpoint": "bot", "outcome": "quiet", "spend_usd": 1.0, "outcomes": 0, "usd_per_outcome": None,
             "expected_usd_per_outcome": None, "previous": None}])),
        ("Training runs", page_sections.runs([
            {"run_id": HOSTILE, "status": "started", "cost_usd": 130.0, "estimated_cost_usd": 100.0,
             "ceiling_usd": 120.0, "burn_rate_usd_per_hour": 40.0, "gpus_active": 8, "gpus_planned": 8}])),
    ]
    budget = {"budget": "monthly", "amount_usd": 100.0, "spent_usd": 40.0, "forecast_usd": 90.0,
              "forecast_low_usd": 70.0, "forecast_high_usd": 120.0, "period_start": "2026-12-01T00:00:00Z",
              "period_end": "2027-01-01T00:00:00Z", "days_left": 24.0}
    html = page.render_team("search", [], [], [budget], "now", sections=sections)
    assert "<script" not in html and html.count("&lt;script&gt;") == 3
    assert [h for h in re.findall(r"<h2>(.*?)</h2>", html) if h not in ("Endpoints", "Budgets", "Incidents")] == \
        ["Spend by category", "Spend by model tier", "Cost per outcome", "Training runs"]
    assert "50%" in html and "2.5 GPU hours" in html  # serving is half the team's money
    assert "75%" in html  # the premium tier's share of tiered spend
    assert '<td class="num firing">$3.00</td>' in html  # 3x its expected cost per outcome
    assert "no outcomes" in html and "$0.00</td><td class=num>$0" not in html  # none is not $0
    assert 'class="over"' in html  # the run is past its ceiling
    cone = re.search(r'<polygon class="cone" points="([^"]+)"', html)
    assert cone is not None
    (now_x, now_y), (end_x, high_y), (_, low_y) = [tuple(map(float, p.split(","))) for p in cone.group(1).split()]
    assert now_x < end_x and high_y < low_y < now_y  # fanning out from today's spend, higher is up
