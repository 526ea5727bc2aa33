"""`make eval`, budgets: how well the month-end forecast does on generated months, against the
plain run-rate projection (spend so far / time so far x the month), and what its alerts cost.

Each month belongs to a team of its own, with four weeks of history before it: an hourly
spend with a weekly shape (quiet nights and weekends in proportions drawn per team), lognormal
noise, and now and then a launch (a lasting 1.5-3x step from a random day), a step down, or a
one-off burst (an agent loop: 5-15x for 2-8 hours). The budget is the month's planned spend (the
baseline level times the month) times 1.02 to 1.3: months with a launch tend to go over, the
others end under. Every month goes through the detector's own `BudgetTracker`, four calls an hour.

Reported: the median absolute percentage error of the projected month-end spend at days 7,
14 and 21, the forecast's and the run-rate's side by side; for months that go over budget, how
long before the 100% crossing `budget_forecast` fired (median, and how many it missed); and
how many months that ended under budget had a `budget_forecast`.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime

from detectors.budget import BudgetRule, BudgetTracker

HOUR, DAY = 3600.0, 86400.0
MONTHS_PER_SEED = 40
CHECK_DAYS = (7, 14, 21)


@dataclass
class Month:
    start: float
    end: float
    hourly: list[float]  # spend per hour from start - 28 days to end
    budget: float
    event: str  # none, launch, step_down, burst


def generate_month(rng: random.Random, index: int) -> Month:
    years, month = divmod(index, 12)
    start = datetime(2024 + years, month + 1, 1, tzinfo=UTC).timestamp()
    years, month = divmod(index + 1, 12)
    month_end = datetime(2024 + years, month + 1, 1, tzinfo=UTC).timestamp()
    first = start - 28 * DAY
    base = rng.uniform(2.0, 200.0)  # dollars an hour, before the shape
    weekend, night, sigma = rng.uniform(0.15, 0.9), rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.6)
    event = rng.choices(["none", "launch", "step_down", "burst"], weights=[4, 2, 1, 1])[0]
    change_at = start + rng.uniform(4, 22) * DAY
    factor = rng.uniform(1.5, 3.0) if event == "launch" else rng.uniform(0.4, 0.7) if event == "step_down" \
        else rng.uniform(5, 15)
    burst_hours = rng.uniform(2, 8)
    hourly = []
    hour = first
    while hour < month_end:
        moment = datetime.fromtimestamp(hour, tz=UTC)
        shape = (weekend if moment.weekday() >= 5 else 1.0) * (1.0 if 8 <= moment.hour < 20 else night)
        level = base
        if event in ("launch", "step_down") and hour >= change_at:
            level *= factor
        if event == "burst" and change_at <= hour < change_at + burst_hours * HOUR:
            level *= factor
        hourly.append(level * shape * math.exp(rng.gauss(-sigma * sigma / 2, sigma)))
        hour += HOUR
    mean_shape = sum((weekend if d >= 5 else 1.0) * (1.0 if 8 <= h < 20 else night) for d in range(7)
                     for h in range(24)) / 168
    planned = base * mean_shape * (month_end - start) / HOUR
    return Month(start, month_end, hourly, planned * rng.uniform(1.02, 1.3), event)


def run_month(month: Month, rng: random.Random) -> dict[str, object]:
    rule = BudgetRule(name="eval", team="eval", period="month", amount_usd=month.budget)
    tracker = BudgetTracker(rule)
    first = month.start - 28 * DAY
    checks = {month.start + day * DAY: day for day in CHECK_DAYS}
    projections: dict[int, tuple[float, float]] = {}
    forecast_at = crossed_at = None
    for n, spend in enumerate(month.hourly):
        hour = first + n * HOUR
        if hour in checks and hour >= month.start:
            spent = tracker.state["spent"]
            elapsed = (hour - month.start) / (month.end - month.start)
            projections[checks[hour]] = (tracker.projection(hour).expected, spent / elapsed)
        for _ in range(4):
            verdicts = tracker.observe(hour + rng.uniform(0, HOUR - 1e-3), spend / 4)
            for verdict in verdicts:
                if verdict.ts < month.start or verdict.status != "firing":
                    continue
                if verdict.kind == "budget_forecast" and forecast_at is None:
                    forecast_at = verdict.ts
                if verdict.kind == "budget_threshold" and verdict.details and verdict.details["threshold_pct"] == 100:
                    crossed_at = verdict.ts
    actual = sum(month.hourly[int((month.start - first) / HOUR):])
    return {"actual": actual, "over": actual > month.budget, "projections": projections,
            "forecast_at": forecast_at, "crossed_at": crossed_at, "event": month.event}


def budget_scenario(seeds: list[int]) -> None:
    results = []
    for seed in seeds:
        rng = random.Random(seed)
        for index in range(MONTHS_PER_SEED):
            results.append(run_month(generate_month(rng, index), rng))
    over = [r for r in results if r["over"]]
    under = [r for r in results if not r["over"]]
    print(f"\nbudgets: {len(results)} generated months (seeds {' '.join(map(str, seeds))}), "
          f"{len(over)} over budget, {len(under)} under:")
    for day in CHECK_DAYS:
        forecast = [abs(r["projections"][day][0] - r["actual"]) / r["actual"] for r in results]  # type: ignore[index]
        run_rate = [abs(r["projections"][day][1] - r["actual"]) / r["actual"] for r in results]  # type: ignore[index]
        print(f"  day {day}: month-end error (median abs %) forecast {statistics.median(forecast):.1%}, "
              f"run-rate {statistics.median(run_rate):.1%}")
    leads = [(r["crossed_at"] - r["forecast_at"]) / DAY for r in over  # type: ignore[operator]
             if r["forecast_at"] is not None and r["crossed_at"] is not None and r["forecast_at"] < r["crossed_at"]]
    print(f"  over budget: budget_forecast before the crossing in {len(leads)}/{len(over)} months, a median "
          f"{statistics.median(leads or [0]):.1f} days ahead")
    false = sum(r["forecast_at"] is not None for r in under)
    print(f"  under budget: {false}/{len(under)} months had a budget_forecast ({false / max(1, len(under)):.1%}; "
          f"target <= 5%)")
