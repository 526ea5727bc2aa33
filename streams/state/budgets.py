"""`GET /budgets`: each budget as its team's ledger has it, with the month-end forecast (CONTRACT.md)."""

from __future__ import annotations

import copy
from typing import Any

from alerting.model import rfc3339
from detectors.budget import BudgetRule, BudgetTracker, period_bounds
from streams.state.ledger import Ledger


def budget_view(rule: BudgetRule, ledger: Ledger | None, now: float) -> dict[str, Any]:
    """The budget's period, spend, forecast and thresholds crossed, as of the team's newest event.

    `now` (the wall clock) places a budget nothing has been spent against yet, or whose period has
    since ended with no spend to roll it over.
    """
    state = copy.deepcopy(((ledger or {}).get("budgets") or {}).get(rule.name) or {})  # a view never writes
    tracker = BudgetTracker(rule, state)
    clock = max((ledger or {}).get("detect", {}).get("clock", 0.0), state.get("start", 0.0))
    if now >= tracker.state["end"]:  # the period is over, or there never was one
        tracker.state.update(spent=0.0, crossed={})
        tracker.state["start"], tracker.state["end"] = period_bounds(now, rule.period, rule.timezone)
        clock = max(clock, tracker.state["start"])
    view = tracker.projection(clock)
    body: dict[str, Any] = {
        "budget": rule.name, "team": rule.team, "period": rule.period, "timezone": rule.timezone,
        "period_start": rfc3339(tracker.state["start"]), "period_end": rfc3339(tracker.state["end"]),
        "amount_usd": rule.amount_usd, "spent_usd": round(tracker.state["spent"], 6),
        "forecast_usd": round(view.expected, 2), "forecast_low_usd": round(view.low, 2),
        "forecast_high_usd": round(view.high, 2),
        "thresholds": list(rule.thresholds),
        "thresholds_crossed": sorted(int(pct) for pct in tracker.state["crossed"]),
        "days_left": round(max(0.0, tracker.state["end"] - max(now, clock)) / 86400, 2),
        "forecast_learned_hours": tracker.forecaster.state["hours"],
    }
    for name in ("endpoint", "model", "category"):
        if getattr(rule, name) is not None:
            body[name] = getattr(rule, name)
    crosses_on = tracker.crosses_on(view)
    if crosses_on is not None:
        body["crosses_on"] = crosses_on
    return body
