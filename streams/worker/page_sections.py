"""The team page's governance sections: where the money goes, what each result costs, what runs.

Each function takes the API's own views (`/spend`'s total and tiers, `/unit-costs`' entries,
`/runs/{run_id}`'s runs) and returns HTML for `page.render_team`'s `sections`; like the rest of
the page, pure, and every producer's name escaped.

>>> html = categories({"cost_usd": 4.0, "categories": {"api_tokens": 1.0, "inference_serving": 3.0, "training": 0.0}})
>>> "75%" in html and "inference_serving" in html
True
>>> "&lt;b&gt;" in tiers([{"tier": "<b>", "requests": 2, "cost_usd": 1.0}])
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.worker.page import esc, finite, usd

#: A category's bar colour (page.STYLE's classes).
BAR_CLASS = {"api_tokens": "bar", "inference_serving": "bar-serving", "training": "bar-training"}


def share_bar(share: float, css: str, width: int = 160, height: int = 10) -> str:
    """A horizontal bar filled to `share` (0-1) of its width."""
    filled = max(0.0, min(share, 1.0)) * width
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#eee"/>'
            f'<rect class="{css}" x="0" y="0" width="{filled:.1f}" height="{height}"/></svg>')


def categories(total: dict[str, Any]) -> str:
    """The team's dollars by category (`/spend`'s total: `cost_usd`, `categories`, `gpu_hours`?)."""
    amounts = {name: finite(value) for name, value in (total.get("categories") or {}).items()}
    whole = finite(total.get("cost_usd")) or sum(amounts.values())
    rows = ["<table><tr><th>category</th><th class=num>spend</th><th class=num>share</th><th></th></tr>"]
    for name, amount in sorted(amounts.items(), key=lambda item: (-item[1], item[0])):
        share = amount / whole if whole > 0 else 0.0
        rows.append(f"<tr><td>{esc(name)}</td><td class=num>{usd(amount)}</td><td class=num>{share:.0%}</td>"
                    f"<td>{share_bar(share, BAR_CLASS.get(name, 'bar'))}</td></tr>")
    rows.append("</table>")
    if "gpu_hours" in total:
        rows.append(f'<p class="muted">{finite(total["gpu_hours"]):,.1f} GPU hours</p>')
    return "".join(rows)


def tiers(by_tier: Sequence[dict[str, Any]]) -> str:
    """Spend by model tier (`/spend`'s `tiers`): which tiers the team's calls used, and how much of its money."""
    if not by_tier:
        return '<p class="muted">no tier policy applies to this team</p>'
    whole = sum(finite(tier.get("cost_usd")) for tier in by_tier)
    rows = ["<table><tr><th>tier</th><th class=num>calls</th><th class=num>spend</th><th class=num>share</th>"
            "<th></th></tr>"]
    for tier in by_tier:
        share = finite(tier.get("cost_usd")) / whole if whole > 0 else 0.0
        rows.append(f"<tr><td>{esc(tier.get('tier'))}</td><td class=num>{int(finite(tier.get('requests'))):,}</td>"
                    f"<td class=num>{usd(tier.get('cost_usd'))}</td><td class=num>{share:.0%}</td>"
                    f"<td>{share_bar(share, 'bar')}</td></tr>")
    return "".join(rows) + "</table>"


def per_outcome(value: Any) -> str:
    """A cost per outcome; none (no outcomes yet) is shown as such, never as $0."""
    return '<span class="muted">no outcomes</span>' if value is None else usd(value)


def unit_costs(views: Sequence[dict[str, Any]]) -> str:
    """Cost per outcome (`/unit-costs` entries): this period's against the expected, and the last closed one's."""
    if not views:
        return '<p class="muted">no outcomes reported (see the README, "Cost per outcome")</p>'
    rows = ["<table><tr><th>endpoint</th><th>outcome</th><th class=num>this period</th><th class=num>expected</th>"
            "<th class=num>spend / outcomes</th><th class=num>last period</th></tr>"]
    for view in views:
        current, expected = view.get("usd_per_outcome"), view.get("expected_usd_per_outcome")
        high = current is not None and expected is not None and finite(current) >= 2 * finite(expected) > 0
        previous = view.get("previous") or {}
        rows.append(f"<tr><td>{esc(view.get('endpoint'))}</td><td>{esc(view.get('outcome'))}</td>"
                    f'<td class="num{" firing" if high else ""}">{per_outcome(current)}</td>'
                    f"<td class=num>{per_outcome(expected)}</td>"
                    f"<td class=num>{usd(view.get('spend_usd'))} / {int(finite(view.get('outcomes'))):,}</td>"
                    f"<td class=num>{per_outcome(previous.get('usd_per_outcome'))}</td></tr>")
    return "".join(rows) + "</table>"


def runs(views: Sequence[dict[str, Any]]) -> str:
    """Training runs (`/runs/{run_id}` views): cost against the estimate and the ceiling, burn, GPUs.

    The bar runs to the ceiling; the tick is the estimate, so the buffer is the stretch between them."""
    if not views:
        return '<p class="muted">no training runs</p>'
    rows = ["<table><tr><th>run</th><th>status</th><th class=num>cost</th><th class=num>estimate</th>"
            "<th class=num>ceiling</th><th>against the ceiling</th><th class=num>burn per hour</th>"
            "<th class=num>GPUs</th></tr>"]
    for view in views:
        cost, estimate, ceiling = (finite(view.get(name)) for name in ("cost_usd", "estimated_cost_usd", "ceiling_usd"))
        scale = max(ceiling, cost, estimate) or 1.0
        width = 160
        css = "over" if ceiling and cost >= ceiling else "bar-training"
        bar = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="10" role="img">'
               f'<title>{usd(cost)} of a {usd(ceiling)} ceiling, estimate {usd(estimate)}</title>'
               f'<rect x="0" y="0" width="{width}" height="10" fill="#eee"/>'
               f'<rect class="{css}" x="0" y="0" width="{cost / scale * width:.1f}" height="10"/>'
               f'<line x1="{estimate / scale * width:.1f}" y1="0" x2="{estimate / scale * width:.1f}" y2="10" '
               f'stroke="#222"/></svg>')
        rows.append(f"<tr><td>{esc(view.get('run_id'))}</td><td>{esc(view.get('status'))}</td>"
                    f"<td class=num>{usd(cost)}</td><td class=num>{usd(estimate)}</td><td class=num>{usd(ceiling)}</td>"
                    f"<td>{bar}</td><td class=num>{usd(view.get('burn_rate_usd_per_hour'))}</td>"
                    f"<td class=num>{int(finite(view.get('gpus_active')))} of {int(finite(view.get('gpus_planned')))}"
                    f"</td></tr>")
    return "".join(rows) + "</table>"
