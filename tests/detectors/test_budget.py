"""Budgets: thresholds once per period, rollover, time zones, restarts; the month-end forecast."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import orjson

from detectors.budget import BudgetRule, BudgetTracker, period_bounds

DEC_1 = datetime(2025, 12, 1, tzinfo=UTC).timestamp()  # a Monday
HOUR, DAY = 3600.0, 86400.0


def spend(tracker: BudgetTracker, start: float, hours: int, per_hour, seed: int = 0) -> list:
    """Calls every 10 minutes costing `per_hour(ts) / 6` each; every verdict."""
    rng = random.Random(seed)
    verdicts = []
    for step in range(hours * 6):
        ts = start + step * 600 + rng.uniform(0, 599)
        verdicts += tracker.observe(ts, per_hour(ts) / 6 * rng.uniform(0.7, 1.3))
    return verdicts


def weekly(base: float):
    """Busy weekdays, quiet nights, quieter weekends."""
    def rate(ts: float) -> float:
        moment = datetime.fromtimestamp(ts, tz=UTC)
        day = 0.3 if moment.weekday() >= 5 else 1.0
        return base * day * (1.6 if 8 <= moment.hour < 20 else 0.4)
    return rate


def test_each_threshold_fires_once_a_period_and_resolves_when_it_rolls_over():
    tracker = BudgetTracker(BudgetRule(name="b", team="t", period="day", amount_usd=240.0))
    verdicts = spend(tracker, DEC_1, 24, lambda ts: 12.0)  # about $288 in the day
    assert [(v.kind, v.status, v.details["threshold_pct"]) for v in verdicts if v.kind == "budget_threshold"] == \
        [("budget_threshold", "firing", 50), ("budget_threshold", "firing", 80), ("budget_threshold", "firing", 100)]
    assert [v.severity for v in verdicts] == ["warning", "error", "critical"]
    rolled = tracker.observe(DEC_1 + DAY + 5, 1.0)
    assert [(v.status, v.details["threshold_pct"]) for v in rolled] == [("resolved", 50), ("resolved", 80),
                                                                        ("resolved", 100)]
    assert [v.since for v in rolled] == [v.since for v in verdicts]  # the same incidents
    assert tracker.state["spent"] == 1.0 and tracker.state["crossed"] == {}


def test_a_restart_repeats_nothing():
    rule = BudgetRule(name="b", team="t", period="month", amount_usd=1000.0)
    first = BudgetTracker(rule)
    assert [v.details["threshold_pct"] for v in spend(first, DEC_1, 60, lambda ts: 10.0)] == [50]
    again = BudgetTracker(rule, orjson.loads(orjson.dumps(first.state)))  # the ledger's round trip
    later = spend(again, DEC_1 + 60 * HOUR, 30, lambda ts: 10.0, seed=1)
    assert [v.details["threshold_pct"] for v in later if v.kind == "budget_threshold"] == [80]


def test_periods_follow_the_budgets_time_zone():
    start, end = period_bounds(DEC_1 + 12 * HOUR, "day", "Europe/Berlin")
    assert (datetime.fromtimestamp(start, tz=UTC).hour, end - start) == (23, DAY)
    start, end = period_bounds(DEC_1 + 3 * DAY, "week", "UTC")
    assert start == DEC_1 and end == DEC_1 + 7 * DAY
    start, end = period_bounds(datetime(2026, 3, 15, tzinfo=UTC).timestamp(), "month", "America/New_York")
    assert datetime.fromtimestamp(start, tz=UTC) == datetime(2026, 3, 1, 5, tzinfo=UTC)
    assert end - start == 31 * DAY - HOUR  # March loses an hour to daylight saving time


def test_a_quiet_weekend_is_the_shape_and_a_month_under_budget_raises_no_forecast():
    rule = BudgetRule(name="b", team="t", period="month", amount_usd=31 * 24 * 10.0)  # a $10/h average fits
    tracker = BudgetTracker(rule)
    history = spend(tracker, DEC_1 - 28 * DAY, 28 * 24, weekly(10.0 / 0.82))  # November, same shape
    month = spend(tracker, DEC_1, 31 * 24, weekly(8.5 / 0.82), seed=3)  # December: 15% under
    assert [v for v in history + month if v.kind == "budget_forecast"] == []


def test_a_step_change_mid_month_is_forecast_days_before_the_budget_is_crossed():
    rule = BudgetRule(name="b", team="t", period="month", amount_usd=31 * 24 * 10.0)
    tracker = BudgetTracker(rule)
    spend(tracker, DEC_1 - 28 * DAY, 28 * 24, weekly(8.0 / 0.82))
    before = spend(tracker, DEC_1, 10 * 24, weekly(8.0 / 0.82), seed=4)
    after = spend(tracker, DEC_1 + 10 * DAY, 21 * 24, weekly(24.0 / 0.82), seed=5)  # a launch: 3x from day 10
    assert [v for v in before if v.kind == "budget_forecast"] == []
    [forecast] = [v for v in after if v.kind == "budget_forecast"]
    [crossed] = [v for v in after if v.kind == "budget_threshold" and v.details["threshold_pct"] == 100]
    assert forecast.ts - (DEC_1 + 10 * DAY) < DAY  # within a day of the change
    assert crossed.ts - forecast.ts > 3 * DAY  # days of warning
    assert forecast.details["forecast_low_usd"] > rule.amount_usd
    assert forecast.details["crosses_on"].startswith("2025-12-")
