"""The page at `GET /` (CONTRACT.md, third round): plain data in, HTML out, charts drawn as inline SVG.

Pure: no Kafka, no clock, no I/O, so a test renders it from dicts. Every name reaching the HTML
(teams, endpoints, users, models) comes from producers, so each goes through `esc`; numbers are
formatted here, never taken as text. No script, no stylesheet from elsewhere: it works offline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

#: The page reloads itself this often (seconds).
REFRESH_S = 10
#: Teams drawn on the page: the largest; the rest are counted, and listed by `GET /spend`.
TOP_TEAMS = 100

STYLE = """body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{padding:.25em .7em;text-align:left;border-bottom:1px solid #eee}
th{font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
.firing{color:#b00020;font-weight:600}.ok{color:#2e7d32}.warn{color:#c77700}.muted{color:#777}
svg{vertical-align:middle}a{color:#0b57d0}"""


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


def window_series(windows: Iterable[Sequence[Any]], window_s: int, cost_at: int) -> list[float]:
    """Cost per window from ledger window rows (`[start, ...]`), a window nobody spent in drawn as 0."""
    by_start = {int(row[0]): finite(row[cost_at]) for row in windows}
    if not by_start:
        return []
    first, last = min(by_start), max(by_start)
    return [by_start.get(start, 0.0) for start in range(first, last + window_s, window_s)]


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
    """The teams, largest spend first: total, recent windows, open incidents, budgets.

    `rows`: {"team", "cost_usd", "requests", "series" (cost per window), "budgets" (budget views)};
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
             "<th>recent windows</th><th>open incidents</th><th>budgets</th></tr>"]
    for row in shown:
        team = str(row.get("team"))
        lines.append(f"<tr><td>{team_link(team)}</td><td class=num>{usd(row.get('cost_usd'))}</td>"
                     f"<td class=num>{int(finite(row.get('requests'))):,}</td>"
                     f"<td>{sparkline(row.get('series') or [], label=f'{team}: spend per window')}</td>"
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


def render_team(team: str, endpoints: Sequence[dict[str, Any]], alerts: Sequence[dict[str, Any]],
                budgets: Sequence[dict[str, Any]], as_of: str) -> str:
    """One team: each endpoint's spend per window as a line, its incidents with cause and contributors.

    `endpoints`: {"endpoint", "cost_usd", "series"}; `alerts`: the team's alerts in time order."""
    open_keys = {a.get("dedup_key") for a in open_incidents(alerts)}
    parts = [f'<p><a href="/">all teams</a></p><h1>{esc(team)}</h1><p class="muted">as of {esc(as_of)}; '
             f"refreshes every {REFRESH_S} s</p><h2>Endpoints</h2>"]
    if not endpoints:
        parts.append("<p>No spend seen for this team.</p>")
    else:
        parts.append("<table><tr><th>endpoint</th><th class=num>spend</th><th>spend per window</th></tr>")
        for row in sorted(endpoints, key=lambda r: (-finite(r.get("cost_usd")), str(r.get("endpoint")))):
            series = row.get("series") or []
            peak = max((finite(v) for v in series), default=0.0)
            label = f"{row.get('endpoint')}: spend per window"
            parts.append(f"<tr><td>{esc(row.get('endpoint'))}</td><td class=num>{usd(row.get('cost_usd'))}</td>"
                         f"<td>{sparkline(series, 360, 60, label=label)}"
                         f' <span class="muted">peak {usd(peak)}</span></td></tr>')
        parts.append("</table>")
    parts.append("<h2>Budgets</h2>" + budget_cell(budgets))
    parts.append("<h2>Incidents</h2>")
    if not alerts:
        parts.append('<p class="ok">none</p>')
    else:
        parts.append("<table><tr><th>since</th><th>kind</th><th>endpoint</th><th>state</th><th>summary</th>"
                     "<th>cause</th><th>contributors</th></tr>")
        for alert in reversed(alerts):
            state = "open" if alert.get("dedup_key") in open_keys and alert.get("status") == "firing" \
                else esc(alert.get("status"))
            parts.append(f"<tr><td>{esc(alert.get('since'))}</td><td>{esc(alert.get('kind'))}</td>"
                         f"<td>{esc(alert.get('endpoint') or alert.get('run_id') or '')}</td>"
                         f'<td class="{"firing" if state == "open" else "muted"}">{state}</td>'
                         f"<td>{esc(alert.get('summary'))}</td><td>{esc(alert.get('cause') or '')}</td>"
                         f"<td>{contributors_text(alert)}</td></tr>")
        parts.append("</table>")
    return page(f"spendwatch: {team}", "".join(parts))
