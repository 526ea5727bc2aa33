"""The page at `GET /` (CONTRACT.md, third round): plain data in, HTML out, charts drawn as inline SVG.

Pure: no Kafka, no clock, no I/O, so a test renders it from dicts. Every name reaching the HTML
(teams, endpoints, users, models) comes from producers, so each goes through `esc`; numbers are
formatted here, never taken as text. No script, no stylesheet from elsewhere: it works offline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from detectors.baseline import SeasonalBaseline
from detectors.poisson import min_significant_count
from detectors.spike import SpikeRule, hour_of

#: A window's expected spend and the band the spike detector stays quiet in: (level, low, high), USD.
Band = tuple[float, float, float]

#: The page reloads itself this often (seconds).
REFRESH_S = 10
#: Teams drawn on the page: the largest; the rest are counted, and listed by `GET /spend`.
TOP_TEAMS = 100

STYLE = """body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{padding:.25em .7em;text-align:left;border-bottom:1px solid #eee}
th{font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
.firing{color:#b00020;font-weight:600}.ok{color:#2e7d32}.warn{color:#c77700}.muted{color:#777}
svg{vertical-align:middle}a{color:#0b57d0}.chart text{font-size:10px;fill:#555}
.band{fill:#e3f2e5}.expected{stroke:#2e7d32;stroke-dasharray:4 3}.spend{stroke:#0b57d0}
.above-band{fill:#b00020}.incident{fill:#b00020;fill-opacity:.12}.incident-edge{stroke:#b00020}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}dd{margin:0}
.cone{fill:#0b57d0;fill-opacity:.15}.limit{stroke:#b00020;stroke-dasharray:2 2}.bar{fill:#0b57d0}
.bar-serving{fill:#7b1fa2}.bar-training{fill:#c77700}.over{fill:#b00020}"""


def esc(value: Any) -> str:
    """Text for HTML: a name called `<script>` is shown, never run."""
    return escape("" if value is None else str(value), quote=True)


def finite(value: Any) -> float:
    """A number fit for drawing: NaN, infinities and non-numbers count as 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def usd(value: Any) -> str:
    number = finite(value)
    return f"${number:,.2f}" if abs(number) >= 1 or number == 0 else f"${number:,.4f}"


def sparkline(values: Sequence[Any], width: int = 120, height: int = 24, label: str = "") -> str:
    """An SVG polyline of `values`, scaled to the box with zero at the bottom.

    No points draws an empty box; one point a flat line across it (a line needs two ends)."""
    points = [finite(v) for v in values]
    title = f"<title>{esc(label)}</title>" if label else ""
    box = f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"' \
          f' role="img">{title}'
    if not points:
        return box + "</svg>"
    if len(points) == 1:
        points = points * 2
    top = max(max(points), 0.0)
    bottom = min(min(points), 0.0)
    span = (top - bottom) or 1.0
    pad = 2
    step = (width - 2 * pad) / (len(points) - 1)
    coords = " ".join(f"{pad + i * step:.1f},{height - pad - (v - bottom) / span * (height - 2 * pad):.1f}"
                      for i, v in enumerate(points))
    return box + f'<polyline fill="none" stroke="#0b57d0" stroke-width="1.5" points="{coords}"/></svg>'


def open_incidents(alerts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Firing alerts with no later resolve for the same dedup_key, oldest first (`alerts` in time order)."""
    latest: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        latest[str(alert.get("dedup_key"))] = alert
    return [alert for alert in latest.values() if alert.get("status") == "firing"]


def page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="{REFRESH_S}"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def team_link(team: str) -> str:
    return f'<a href="/?team={esc(quote(team, safe=""))}">{esc(team)}</a>'


def budget_cell(budgets: Sequence[dict[str, Any]]) -> str:
    """Each budget: spent of amount, and the month-end forecast, red when it will cross 100%."""
    parts = []
    for budget in budgets:
        amount, forecast = finite(budget.get("amount_usd")), finite(budget.get("forecast_usd"))
        css = "firing" if forecast > amount > 0 else "ok"
        parts.append(f'{esc(budget.get("budget"))}: {usd(budget.get("spent_usd"))} of {usd(amount)}, '
                     f'<span class="{css}">forecast {usd(forecast)}</span>')
    return "<br>".join(parts) if parts else '<span class="muted">none</span>'


def incident_cell(incidents: Sequence[dict[str, Any]]) -> str:
    if not incidents:
        return '<span class="ok">none</span>'
    return "<br>".join(f'<span class="firing">{esc(a.get("kind"))}</span> {esc(a.get("endpoint") or "")}'
                       for a in incidents)


def render_overview(rows: Sequence[dict[str, Any]], incidents: Sequence[dict[str, Any]], teams_total: int,
                    as_of: str) -> str:
    """The teams, largest spend first: total, the last hours, open incidents, budgets.

    `rows`: {"team", "cost_usd", "requests", "series" (cost per window, the last hours), "budgets" (budget views)};
    only the first `TOP_TEAMS` are drawn. `incidents`: open incidents of every team."""
    by_team: dict[str, list[dict[str, Any]]] = {}
    for alert in incidents:
        by_team.setdefault(str(alert.get("team")), []).append(alert)
    shown = sorted(rows, key=lambda r: (-finite(r.get("cost_usd")), str(r.get("team"))))[:TOP_TEAMS]
    head = (f"<h1>spendwatch</h1><p class=\"muted\">as of {esc(as_of)}; refreshes every {REFRESH_S} s; "
            f"{len(incidents)} open incident{'s' if len(incidents) != 1 else ''}</p>")
    if not shown:
        return page("spendwatch", head + "<p>No spend seen yet. Publish token-usage events to see teams here.</p>")
    lines = ["<table><tr><th>team</th><th class=num>spend</th><th class=num>calls</th>"
             "<th>last hours</th><th>open incidents</th><th>budgets</th></tr>"]
    for row in shown:
        team = str(row.get("team"))
        lines.append(f"<tr><td>{team_link(team)}</td><td class=num>{usd(row.get('cost_usd'))}</td>"
                     f"<td class=num>{int(finite(row.get('requests'))):,}</td>"
                     f"<td>{sparkline(row.get('series') or [], label=f'{team}: spend per window, last hours')}</td>"
                     f"<td>{incident_cell(by_team.get(team, []))}</td>"
                     f"<td>{budget_cell(row.get('budgets') or [])}</td></tr>")
    lines.append("</table>")
    if teams_total > len(shown):
        lines.append(f'<p class="muted">{len(shown)} of {teams_total} teams shown; '
                     f'all are listed by <a href="/spend">/spend</a>.</p>')
    return page("spendwatch", head + "".join(lines))


def contributors_text(alert: dict[str, Any]) -> str:
    named = [f'{esc(c.get("dimension"))} {esc(c.get("value"))} ({finite(c.get("share")):.0%})'
             for c in alert.get("contributors") or []]
    return ", ".join(named) or '<span class="muted">none named</span>'


def incident_link(alert: dict[str, Any], text: str | None = None) -> str:
    key = str(alert.get("dedup_key"))
    return f'<a href="/?incident={esc(quote(key, safe=""))}">{esc(text if text is not None else key[:12])}</a>'


def endpoint_chart(row: dict[str, Any], spans: Sequence[dict[str, Any]], window_s: int) -> str:
    """An endpoint row's chart: {"endpoint", "series", "starts"?, "bands"?} (no starts: windows from 0)."""
    series = [finite(v) for v in row.get("series") or []]
    starts = list(row.get("starts") or range(0, len(series) * window_s, window_s))
    bands = list(row.get("bands") or [None] * len(series))
    return band_chart(starts, series, bands, spans, window_s, f"{row.get('endpoint')}: spend per window")


def history_cell(row: dict[str, Any]) -> str:
    """An endpoint's history as two small lines: per window for the last hours, per hour for the last week."""
    name = row.get("endpoint")
    cells = []
    for key, text in (("minutes", "last hours"), ("hours", "last week")):
        values = row.get(key) or []
        peak = max((finite(v) for v in values), default=0.0)
        cells.append(f'<div class="history-{key}"><span class="muted">{text}</span><br>'
                     f"{sparkline(values, 160, 24, label=f'{name}: spend per {key[:-1]}, {text}')}"
                     f' <span class="muted">peak {usd(peak)}</span></div>')
    return "".join(cells)


def budget_cone(budget: dict[str, Any], width: int = 360, height: int = 90) -> str:
    """A budget's period as a chart: spend so far (a line from nothing at the start to now), the month-end
    forecast as a cone from now to the end (low to high, the expected dashed), and the amount (red dots).

    `budget`: a `/budgets` view (`period_start`, `period_end`, `days_left`, `spent_usd`, `amount_usd`,
    `forecast_usd`, `forecast_low_usd`, `forecast_high_usd`)."""
    start, end = parse_time(budget.get("period_start")), parse_time(budget.get("period_end"))
    label = f"{budget.get('budget')}: spend against its amount, and the forecast to the period's end"
    box = (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img"><title>{esc(label)}</title>')
    if start is None or end is None or end <= start:
        return box + "</svg>"
    now = min(max(end - finite(budget.get("days_left")) * 86400, start), end)
    spent, amount = finite(budget.get("spent_usd")), finite(budget.get("amount_usd"))
    low, expected, high = (finite(budget.get(f"forecast{part}_usd")) for part in ("_low", "", "_high"))
    peak = max(spent, amount, high, expected, 0.0) * 1.08 or 1.0
    left, right, top, bottom = 56, 8, 6, 16
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(ts: float) -> float:
        return left + (ts - start) / (end - start) * plot_w

    def y(value: float) -> float:
        return top + plot_h - min(max(value, 0.0), peak) / peak * plot_h

    day = datetime.fromtimestamp
    return (box + f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{usd(peak)}</text>'
            f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">$0</text>'
            f'<text x="{left}" y="{height - 3}">{esc(day(start, tz=UTC).strftime("%b %d"))}</text>'
            f'<text x="{width - right}" y="{height - 3}" text-anchor="end">'
            f'{esc(day(end - 1, tz=UTC).strftime("%b %d"))}</text>'
            f'<polygon class="cone" points="{x(now):.1f},{y(spent):.1f} {x(end):.1f},{y(high):.1f} '
            f'{x(end):.1f},{y(low):.1f}"><title>forecast {usd(low)} to {usd(high)}</title></polygon>'
            f'<line class="expected" x1="{x(now):.1f}" y1="{y(spent):.1f}" x2="{x(end):.1f}" y2="{y(expected):.1f}"/>'
            f'<line class="spend" stroke-width="2" x1="{x(start):.1f}" y1="{y(0.0):.1f}" x2="{x(now):.1f}" '
            f'y2="{y(spent):.1f}"/>'
            f'<line class="limit" x1="{left}" y1="{y(amount):.1f}" x2="{width - right}" y2="{y(amount):.1f}">'
            f'<title>amount {usd(amount)}</title></line></svg>')


def render_team(team: str, endpoints: Sequence[dict[str, Any]], alerts: Sequence[dict[str, Any]],
                budgets: Sequence[dict[str, Any]], as_of: str, window_s: int = 60,
                sections: Sequence[tuple[str, str]] = ()) -> str:
    """One team: each endpoint's spend per window against its expected band, its incidents drawn where they
    began and ended, and each incident's cause and contributors.

    `endpoints`: {"endpoint", "cost_usd", "series", "starts" (window starts), "bands" (`expected_band`),
    "minutes" (cost per window, the last hours), "hours" (cost per hour, the last week)}; `alerts`: the team's
    alerts in time order; `sections`: (heading, HTML) drawn after the budgets (streams/worker/page_sections.py:
    categories, tiers, cost per outcome, training runs)."""
    open_keys = {a.get("dedup_key") for a in open_incidents(alerts)}
    parts = [f'<p><a href="/">all teams</a></p><h1>{esc(team)}</h1><p class="muted">as of {esc(as_of)}; '
             f"refreshes every {REFRESH_S} s; the shaded band is where the spike detector stays quiet, the dashed "
             f"line its expected spend, red dots windows above the band, red areas incidents</p><h2>Endpoints</h2>"]
    if not endpoints:
        parts.append("<p>No spend seen for this team.</p>")
    else:
        parts.append("<table><tr><th>endpoint</th><th class=num>spend</th><th>spend per window</th>"
                     "<th>history</th></tr>")
        for row in sorted(endpoints, key=lambda r: (-finite(r.get("cost_usd")), str(r.get("endpoint")))):
            series = row.get("series") or []
            peak = max((finite(v) for v in series), default=0.0)
            spans = incident_spans(alerts, str(row.get("endpoint")))
            parts.append(f'<tr class="endpoint"><td>{esc(row.get("endpoint"))}</td>'
                         f"<td class=num>{usd(row.get('cost_usd'))}</td>"
                         f"<td>{endpoint_chart(row, spans, window_s)}"
                         f' <span class="muted">peak {usd(peak)}</span></td><td>{history_cell(row)}</td></tr>')
        parts.append("</table>")
    parts.append("<h2>Budgets</h2>" + budget_cell(budgets))
    parts.extend(f'<div class="budget-cone">{budget_cone(budget)}</div>' for budget in budgets)
    parts.extend(f"<h2>{esc(heading)}</h2>{html}" for heading, html in sections)
    parts.append("<h2>Incidents</h2>")
    if not alerts:
        parts.append('<p class="ok">none</p>')
    else:
        parts.append("<table><tr><th>since</th><th>kind</th><th>endpoint</th><th>state</th><th>summary</th>"
                     "<th>cause</th><th>contributors</th><th>incident</th></tr>")
        for alert in reversed(alerts):
            state = "open" if alert.get("dedup_key") in open_keys and alert.get("status") == "firing" \
                else esc(alert.get("status"))
            parts.append(f"<tr class=incident-row><td>{esc(alert.get('since'))}</td><td>{esc(alert.get('kind'))}</td>"
                         f"<td>{esc(alert.get('endpoint') or alert.get('run_id') or '')}</td>"
                         f'<td class="{"firing" if state == "open" else "muted"}">{state}</td>'
                         f"<td>{esc(alert.get('summary'))}</td><td class=cause>{esc(alert.get('cause') or '')}</td>"
                         f"<td>{contributors_text(alert)}</td><td>{incident_link(alert)}</td></tr>")
        parts.append("</table>")
    return page(f"spendwatch: {team}", "".join(parts))


def ratio_text(ratio: Any) -> str:
    return "n/a" if ratio is None else f"{finite(ratio):,.1f}x"


def amount_text(value: Any, unit: Any) -> str:
    return usd(value) if unit == "usd" else f"{finite(value):,.0f} {esc(unit)}"


def render_incident(key: str, alerts: Sequence[dict[str, Any]], endpoint: dict[str, Any] | None,
                    deliveries: Sequence[dict[str, Any]], silences: Sequence[dict[str, Any]], as_of: str,
                    window_s: int = 60) -> str:
    """One incident: its alerts' figures, the windows around it, where it was delivered, what silences it.

    `alerts`: the incident's messages in time order (firing, repeats, resolved); `endpoint`: the endpoint's
    row as `render_team` takes it, or None; `deliveries`: {"receiver", "alert_id", "status", "result"};
    `silences`: silences that match it, as `Silence.to_json` writes them."""
    if not alerts:
        return page("spendwatch: incident", f'<p><a href="/">all teams</a></p><h1>Incident {esc(key)}</h1>'
                    "<p>No alert with this key is among the recent alerts (the last few hundred per worker).</p>")
    first, last = alerts[0], alerts[-1]
    team = str(first.get("team"))
    state = "resolved" if last.get("status") == "resolved" else "open"
    figures = [("team", team_link(team)), ("kind", esc(first.get("kind"))),
               ("endpoint", esc(first.get("endpoint") or "")), ("run", esc(first.get("run_id") or "")),
               ("state", f'<span class="{"firing" if state == "open" else "ok"}">{state}</span>'),
               ("severity", esc(first.get("severity"))), ("since", esc(first.get("since"))),
               ("observed", amount_text(first.get("observed"), first.get("unit"))),
               ("expected", amount_text(first.get("baseline"), first.get("unit"))),
               ("ratio", ratio_text(first.get("ratio"))),
               ("cause", f'<span class="cause">{esc(first.get("cause") or "")}</span>'),
               ("top contributors", contributors_text(first)), ("summary", esc(first.get("summary")))]
    if first.get("window"):
        figures.insert(7, ("window", f"{esc(first['window'].get('start'))} to {esc(first['window'].get('end'))}"))
    if first.get("cause_figures"):
        figures.append(("cause figures", ", ".join(f"{esc(name)} {finite(v):,.2f}x" for name, v
                                                   in first["cause_figures"].items() if v is not None)))
    parts = [f'<p><a href="/">all teams</a> · {team_link(team)}</p>'
             f'<h1>Incident {esc(key[:12])}: {esc(first.get("kind"))} of {esc(team)}</h1>'
             f'<p class="muted">as of {esc(as_of)}; refreshes every {REFRESH_S} s</p><dl>'
             + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in figures if value) + "</dl>"]
    parts.append("<h2>Windows around it</h2>")
    if endpoint is None:
        parts.append('<p class="muted">No windows kept for its endpoint on this worker.</p>')
    else:
        parts.append(endpoint_chart(endpoint, incident_spans(alerts), window_s))
    parts.append("<h2>Messages</h2><table><tr><th>at</th><th>status</th><th>observed</th><th>ratio</th></tr>"
                 + "".join(f"<tr><td>{esc(a.get('ts'))}</td><td>{esc(a.get('status'))}"
                           f"{' (repeat)' if a.get('repeat') else ''}{' (silenced)' if a.get('silenced') else ''}</td>"
                           f"<td class=num>{amount_text(a.get('observed'), a.get('unit'))}</td>"
                           f"<td class=num>{ratio_text(a.get('ratio'))}</td></tr>"
                           for a in alerts) + "</table>")
    parts.append("<h2>Delivery (Slack, PagerDuty)</h2>")
    if deliveries:
        parts.append("<table><tr><th>receiver</th><th>message</th><th>result</th></tr>"
                     + "".join(f"<tr><td>{esc(d.get('receiver'))}</td><td>{esc(d.get('status'))}</td>"
                               f"<td class=\"{'ok' if d.get('result') == 'delivered' else 'warn'}\">"
                               f"{esc(d.get('result'))}</td></tr>" for d in deliveries) + "</table>")
    else:
        parts.append('<p class="muted">This worker knows of no delivery of it: no Slack or PagerDuty receiver is '
                     "set, the alert went to the console only, or another worker delivered it.</p>")
    parts.append("<h2>Silences that hold it</h2>")
    if silences:
        parts.append("<table><tr><th>id</th><th>until</th><th>by</th><th>comment</th></tr>"
                     + "".join(f"<tr><td>{esc(s.get('id'))}</td><td>{esc(s.get('ends_at'))}</td>"
                               f"<td>{esc(s.get('created_by'))}</td><td>{esc(s.get('comment'))}</td></tr>"
                               for s in silences) + "</table>")
    else:
        parts.append('<p class="ok">none</p>')
    return page(f"spendwatch: incident {key[:12]}", "".join(parts))


# -- the expected band ---------------------------------------------------------------------------

def window_points(windows: Iterable[Sequence[Any]], window_s: int, cost_at: int) -> tuple[list[int], list[float]]:
    """(window starts, cost per window) from ledger window rows, a window nobody spent in drawn as 0."""
    by_start = {int(row[0]): finite(row[cost_at]) for row in windows}
    if not by_start:
        return [], []
    starts = list(range(min(by_start), max(by_start) + window_s, window_s))
    return starts, [by_start.get(start, 0.0) for start in starts]


def expected_band(state: dict[str, Any] | None, rule: SpikeRule, starts: Sequence[float]) -> list[Band | None]:
    """Each window's expected spend and band, read from a `FlashSpikeDetector`'s state (`detect.spikes[e]`).

    The level is the detector's `SeasonalBaseline` for the window's hour of day; the band runs from
    0 to the spend that fires (`ratio` x expected, never under the Poisson bar nor `min_usd`), as
    `FlashSpikeDetector._thresholds` sets it. A window still open keeps the figures fixed when it
    opened. None where the detector does not claim to know (warm-up, nothing spent yet).
    Read-only: the state is not changed.

    >>> rule = SpikeRule(window_s=60, ratio=10.0, min_usd=1.0, grace_period=2)
    >>> expected_band({"b": [5, [20.0, 20000.0, 0.5], [1.0] * 24]}, rule, [0])
    [(0.5, 0.0, 5.0)]
    >>> expected_band({"b": [1, [20.0, 20000.0, 0.5], [1.0] * 24]}, rule, [0])  # still warming up
    [None]
    """
    if not state:
        return [None] * len(starts)
    opened = {float(w[0]): w for w in state.get("open", []) if len(w) >= 9}
    baseline = SeasonalBaseline.from_state(state.get("b"), rule.fading_factor, rule.grace_period)
    bands: list[Band | None] = []
    for start in starts:
        window = opened.get(float(start))
        if window is not None:
            level, high = finite(window[8]), window[5]
            bands.append((level, 0.0, finite(high)) if high is not None and level > 0 else None)
            continue
        if not baseline.ready:
            bands.append(None)
            continue
        calls, _tokens, level = baseline.expected(hour_of(float(start)))
        if level <= 0 or calls <= 0:
            bands.append(None)
            continue
        bar_ratio = max(rule.ratio, min_significant_count(calls, rule.alpha) / calls)
        bands.append((level, 0.0, max(bar_ratio * level, rule.min_usd)))
    return bands


def parse_time(text: Any) -> float | None:
    """Unix time of an RFC 3339 text as alerts carry it; None for anything else."""
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def incident_spans(alerts: Iterable[dict[str, Any]], endpoint: str | None = None) -> list[dict[str, Any]]:
    """Each incident (of `endpoint`, or all): {"key", "kind", "cause", "began", "ended" (None: open), "alert"}.

    `alerts` in time order; began is the incident's `since`, ended the time of its resolve."""
    spans: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        if endpoint is not None and alert.get("endpoint") != endpoint:
            continue
        key = str(alert.get("dedup_key"))
        span = spans.setdefault(key, {"key": key, "kind": alert.get("kind"), "cause": alert.get("cause"),
                                      "began": parse_time(alert.get("since")), "ended": None, "alert": alert})
        if alert.get("status") == "resolved":
            span["ended"] = parse_time(alert.get("ts"))
        elif span["alert"].get("status") != "firing":
            span["alert"] = alert
    return list(spans.values())


# -- the chart -----------------------------------------------------------------------------------

def clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S UTC") if math.isfinite(ts) else ""


def band_chart(starts: Sequence[int], values: Sequence[float], bands: Sequence[Band | None],
               spans: Sequence[dict[str, Any]], window_s: int, label: str, width: int = 600,
               height: int = 160) -> str:
    """Spend per window (a line, red dots above the band) over its band (shaded) and expected level
    (dashed), with incidents shaded from where they began to where they ended (or the chart's end)."""
    left, right, top, bottom = 56, 8, 8, 18
    box = (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img"><title>{esc(label)}</title>')
    if not starts:
        return box + f'<text x="{left}" y="{height // 2}">no windows yet</text></svg>'
    first, last = starts[0], starts[-1] + window_s
    peak = max([finite(v) for v in values] + [finite(b[2]) for b in bands if b] + [0.0]) * 1.08 or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(ts: float) -> float:
        return left + (min(max(ts, first), last) - first) / (last - first) * plot_w

    def y(value: float) -> float:
        return top + plot_h - min(max(finite(value), 0.0), peak) / peak * plot_h

    parts = [box, f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{usd(peak)}</text>'
                  f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">$0</text>'
                  f'<text x="{left}" y="{height - 4}">{esc(clock(first))}</text>'
                  f'<text x="{width - right}" y="{height - 4}" text-anchor="end">{esc(clock(last))}</text>'
                  f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#ccc"/>']
    for span in spans:
        began, ended = span.get("began"), span.get("ended")
        if began is None or began > last or (ended is not None and ended < first):
            continue
        x0, x1 = x(began), x(ended if ended is not None else last)
        parts.append(f'<rect class="incident" data-incident="{esc(span["key"])}" x="{x0:.1f}" y="{top}" '
                     f'width="{max(x1 - x0, 1.5):.1f}" height="{plot_h}"><title>{esc(span.get("kind"))} '
                     f'{esc(span.get("cause") or "")}: {esc(clock(began))} to '
                     f'{esc(clock(ended) if ended is not None else "now")}</title></rect>'
                     f'<line class="incident-edge" x1="{x0:.1f}" y1="{top}" x2="{x0:.1f}" y2="{top + plot_h}"/>')
        if ended is not None and ended <= last:
            parts.append(f'<line class="incident-edge" x1="{x1:.1f}" y1="{top}" x2="{x1:.1f}" y2="{top + plot_h}"/>')
    for start, band in zip(starts, bands, strict=False):
        if band is None:
            continue
        level, low, high = band
        x0, x1 = x(start), x(start + window_s)
        parts.append(f'<rect class="band" x="{x0:.1f}" y="{y(high):.1f}" width="{x1 - x0:.1f}" '
                     f'height="{max(y(low) - y(high), 0.0):.1f}"/>'
                     f'<line class="expected" x1="{x0:.1f}" y1="{y(level):.1f}" x2="{x1:.1f}" y2="{y(level):.1f}"/>')
    centres = [(x(start + window_s / 2), y(value)) for start, value in zip(starts, values, strict=False)]
    parts.append('<polyline class="spend" fill="none" stroke-width="1.5" points="'
                 + " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in centres) + '"/>')
    for (cx, cy), value, band in zip(centres, values, bands, strict=False):
        if band is not None and finite(value) > band[2]:
            parts.append(f'<circle class="above-band" cx="{cx:.1f}" cy="{cy:.1f}" r="3">'
                         f'<title>{usd(value)}, band up to {usd(band[2])}</title></circle>')
    return "".join(parts) + "</svg>"
