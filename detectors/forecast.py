"""Where a budget's period will end: spend so far plus what the team's own weekly shape says is
still to come, with an interval, and the day the budget will be crossed.

Learned online, one hour at a time, in event time: a level (dollars an hour, after the shape is
taken out), an hour-of-day and a day-of-week factor (so a quiet weekend or night is the shape,
not a trend), and the spread of each hour around its forecast. A spike moves the projection
within the hour through the spend it adds; the level (half-life about a day) carries a lasting
change, such as a launch, into the rest of the period within a day. State: 24 + 7 factors and
five numbers, whatever the traffic.

>>> forecast = Forecaster({})
>>> start = 1_764_547_200.0  # a Monday, 00:00 UTC
>>> for hour in range(24 * 14):
...     forecast.observe(start + hour * 3600, 10.0)  # $10 an hour, steady
>>> view = forecast.project(start + 24 * 14 * 3600, end=start + 24 * 28 * 3600, spent=0.0)
>>> round(view.expected), view.low <= view.expected <= view.high
(3360, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

HOUR = 3600.0
LEVEL_ALPHA = 0.03  # per hour: half-life ~1 day, long enough to smooth a day's cycle while it is learned
SHAPE_ALPHA = 0.1  # per day for an hour-of-day factor, per week for a day-of-week one
SPREAD_ALPHA = 0.05
WARM_HOURS = 168  # a week, every hour and weekday seen once; before that no forecast alert
Z = 1.645  # 90% interval
#: Hours skipped at once after a gap; beyond this the gap is treated as this many quiet hours.
MAX_GAP_HOURS = 24 * 7


@dataclass(frozen=True)
class Projection:
    expected: float  # period-end spend
    low: float
    high: float
    crosses_at: float | None  # event time the expected path passes `amount` (None: it does not)


class Forecaster:
    """Hourly spend learning; `state` is a plain dict (kept in the team's ledger)."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        state.setdefault("hour", 0.0)  # start of the hour being filled (0: none yet)
        state.setdefault("sum", 0.0)  # its spend so far
        state.setdefault("level", 0.0)
        state.setdefault("spread", 0.5)  # EW variance of log(actual / forecast) per hour
        state.setdefault("hours", 0)  # hours learned
        state.setdefault("hod", [1.0] * 24)
        state.setdefault("dow", [1.0] * 7)

    def observe(self, ts: float, cost_usd: float) -> None:
        hour = ts - ts % HOUR
        if self.state["hour"] == 0.0:
            self.state["hour"] = hour
        elif hour > self.state["hour"]:
            self._close_hours_until(hour)
        if hour == self.state["hour"]:
            self.state["sum"] += cost_usd
        # else: late for an hour already learned; it is in the spend, not in the shape

    def _close_hours_until(self, hour: float) -> None:
        gap = int((hour - self.state["hour"]) // HOUR)
        self._learn(self.state["hour"], self.state["sum"])
        for skipped in range(1, min(gap, MAX_GAP_HOURS)):
            self._learn(self.state["hour"] + skipped * HOUR, 0.0)
        self.state["hour"], self.state["sum"] = hour, 0.0

    def _factor(self, hour: float) -> float:
        moment = datetime.fromtimestamp(hour, tz=UTC)
        return self.state["hod"][moment.hour] * self.state["dow"][moment.weekday()]

    def _learn(self, hour: float, spend: float) -> None:
        state = self.state
        factor = max(self._factor(hour), 1e-3)
        expected = state["level"] * factor
        if state["hours"] > 0:
            miss = math.log((spend + 1e-6) / (expected + 1e-6))
            state["spread"] += SPREAD_ALPHA * (min(miss * miss, 25.0) - state["spread"])
        deseasoned = spend / factor
        state["level"] = deseasoned if state["hours"] == 0 else \
            state["level"] + LEVEL_ALPHA * (deseasoned - state["level"])
        if state["level"] > 0:
            moment = datetime.fromtimestamp(hour, tz=UTC)
            ratio = min(spend / (state["level"] * factor), 10.0)  # one wild hour must not bend the shape
            hod, dow = state["hod"], state["dow"]
            hod[moment.hour] = max(1e-3, hod[moment.hour] * (1 + SHAPE_ALPHA * (ratio - 1)))
            dow[moment.weekday()] = max(1e-3, dow[moment.weekday()] * (1 + SHAPE_ALPHA / 24 * (ratio - 1)))
            # Keep the factors' means at 1, so the level alone carries the amount.
            for factors in (hod, dow):
                mean = sum(factors) / len(factors)
                factors[:] = [round(f / mean, 6) for f in factors]
        state["level"] = round(state["level"], 9)
        state["spread"] = round(state["spread"], 6)
        state["hours"] += 1

    @property
    def warm(self) -> bool:
        return self.state["hours"] >= WARM_HOURS

    def project(self, now: float, end: float, spent: float, amount: float | None = None) -> Projection:
        """Period-end spend from `now`: `spent` so far plus the shape's remaining hours."""
        level = self.state["level"]
        total, crosses_at, hours = spent, None, 0
        hour = now - now % HOUR
        # The current hour: what is left of its share.
        rest = max(0.0, min(end, hour + HOUR) - now) / HOUR * level * self._factor(hour)
        total += rest
        if amount is not None and spent < amount <= total:
            crosses_at = now
        hour += HOUR
        while hour < end:
            total += level * self._factor(hour) * min(1.0, (end - hour) / HOUR)
            hours += 1
            if amount is not None and crosses_at is None and total >= amount > spent:
                crosses_at = hour
            hour += HOUR
        ahead = total - spent
        sigma = math.sqrt(self.state["spread"] / max(1, hours) +
                          self.state["spread"] * LEVEL_ALPHA / (2 - LEVEL_ALPHA))
        return Projection(expected=total, low=spent + ahead * math.exp(-Z * sigma),
                          high=spent + ahead * math.exp(Z * sigma), crosses_at=crosses_at)
