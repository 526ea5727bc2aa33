"""Budgets: a team's (or endpoint's, or model's) spend over a day, week or calendar month in its
time zone, against an amount, with one alert per threshold crossed per period.

Pure and in event time, so `spendwatch replay` raises the same alerts as the worker. The state
(`BudgetTracker.state`) is a small dict kept in the team's ledger: a threshold alerted in a
period is remembered there, so a restart never repeats it. The first spend seen in a new period
rolls it over: the old period's threshold alerts resolve, and counting starts again at zero.

>>> rule = BudgetRule(name="search-day", team="search", period="day", amount_usd=100.0)
>>> tracker = BudgetTracker(rule)
>>> day = 1_764_547_200.0  # 2025-12-01T00:00:00Z
>>> [v.status for ts in range(9) for v in tracker.observe(day + ts * 3600, 11.0)]
['firing', 'firing']
>>> tracker.state["crossed"], round(tracker.state["spent"], 2)
({'50': 1764561600.0, '80': 1764572400.0}, 99.0)
>>> [(v.status, v.details["threshold_pct"]) for v in tracker.observe(day + 86400 + 60, 1.0)]
[('resolved', 50), ('resolved', 80)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from detectors.amounts import usd
from detectors.forecast import Forecaster, Projection
from detectors.verdict import Severity, Verdict

Period = Literal["day", "week", "month"]
PERIOD_WORDS = {"day": "daily", "week": "weekly", "month": "monthly"}


@dataclass(frozen=True)
class BudgetRule:
    name: str
    team: str
    period: Period
    amount_usd: float
    endpoint: str | None = None  # None: every endpoint of the team
    model: str | None = None  # None: every model
    thresholds: tuple[int, ...] = (50, 80, 100)  # percent of the amount
    timezone: str = "UTC"
    category: str | None = None  # api_tokens, inference_serving or training; None: every dollar

    def covers(self, endpoint: str, model: str, category: str = "api_tokens") -> bool:
        """Whether a dollar of this endpoint, model and category counts (a GPU's dollar has no model, and a
        training run's no endpoint)."""
        return (self.endpoint is None or self.endpoint == endpoint) and (self.model is None or self.model == model) \
            and (self.category is None or self.category == category)


def period_bounds(ts: float, period: Period, timezone: str) -> tuple[float, float]:
    """The period holding `ts`, as (start, end) Unix times: local midnight, Monday, the 1st."""
    zone = ZoneInfo(timezone)
    local = datetime.fromtimestamp(ts, tz=zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        start -= timedelta(days=start.weekday())
    elif period == "month":
        start = start.replace(day=1)
    if period == "day":
        end = start + timedelta(days=1)
    elif period == "week":
        end = start + timedelta(days=7)
    else:
        end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
    # Aware arithmetic in one zone is wall-clock: across a DST change a day is 23 or 25 hours long.
    return start.timestamp(), end.timestamp()


def severity_of(pct: int) -> Severity:
    return "critical" if pct >= 100 else "error" if pct >= 80 else "warning"


@dataclass
class BudgetTracker:
    rule: BudgetRule
    state: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state.setdefault("start", 0.0)  # no period yet: the first call opens one
        self.state.setdefault("end", 0.0)
        self.state.setdefault("spent", 0.0)
        self.state.setdefault("crossed", {})  # threshold (as text: a JSON key) -> event time it was crossed
        self.state.setdefault("forecast_since", None)  # when the firing budget_forecast began
        self.forecaster = Forecaster(self.state.setdefault("forecast", {}))  # learns across periods

    def advance(self, ts: float) -> list[Verdict]:
        """Roll over to the period holding `ts` if it is a later one: the old period's alerts resolve."""
        if ts < self.state["end"]:
            return []
        verdicts = [self._threshold_verdict("resolved", int(pct), since, self.state["end"])
                    for pct, since in sorted(self.state["crossed"].items(), key=lambda item: int(item[0]))]
        if self.state.get("forecast_since") is not None:
            verdicts.append(self._forecast_verdict("resolved", self.state["end"], None))
        start, end = period_bounds(ts, self.rule.period, self.rule.timezone)
        self.state.update(start=start, end=end, spent=0.0, crossed={}, forecast_since=None)
        return verdicts

    def observe(self, ts: float, cost_usd: float) -> list[Verdict]:
        """Count one call's cost; the verdicts it causes (rollover resolves, thresholds crossed)."""
        verdicts = self.advance(ts)
        if ts < self.state["start"]:
            return verdicts  # late for a period already closed: counted in the totals, not in the budget
        hour = self.forecaster.state["hour"]
        self.forecaster.observe(ts, cost_usd)
        self.state["spent"] += cost_usd
        spent, amount = self.state["spent"], self.rule.amount_usd
        for pct in self.rule.thresholds:
            if spent >= amount * pct / 100 and str(pct) not in self.state["crossed"]:
                self.state["crossed"][str(pct)] = ts
                verdicts.append(self._threshold_verdict("firing", pct, ts, ts))
        if self.forecaster.state["hour"] != hour:  # an hour closed: the projection is worth a new look
            verdicts += self._judge_forecast(ts)
        return verdicts

    def projection(self, now: float) -> Projection:
        return self.forecaster.project(now, self.state["end"], self.state["spent"], self.rule.amount_usd)

    def _judge_forecast(self, ts: float) -> list[Verdict]:
        """`budget_forecast` fires when even the interval's low end passes the budget (and the shape is
        learned, and the budget is not already spent: the 100% threshold says that); it resolves when
        the projection falls back under 95% of it, or the period rolls over."""
        amount, firing = self.rule.amount_usd, self.state.get("forecast_since") is not None
        view = self.projection(ts)
        if not firing and self.forecaster.warm and self.state["spent"] < amount < view.low:
            self.state["forecast_since"] = ts
            return [self._forecast_verdict("firing", ts, view)]
        if firing and view.expected < 0.95 * amount:
            verdict = self._forecast_verdict("resolved", ts, view)
            self.state["forecast_since"] = None
            return [verdict]
        return []

    def crosses_on(self, view: Projection) -> str | None:
        if view.crosses_at is None:
            return None
        return datetime.fromtimestamp(view.crosses_at, tz=ZoneInfo(self.rule.timezone)).date().isoformat()

    def _forecast_verdict(self, status: Literal["firing", "resolved"], ts: float, view: Projection | None) -> Verdict:
        rule, since = self.rule, self.state.get("forecast_since") or ts
        what = f"{rule.team}{'/' + rule.endpoint if rule.endpoint else ''}{' ' + rule.model if rule.model else ''}"
        expected = view.expected if view is not None else self.state["spent"]
        details = self.details()
        if view is not None:
            details.update(forecast_low_usd=round(view.low, 2), forecast_high_usd=round(view.high, 2))
            if self.crosses_on(view):
                details["crosses_on"] = self.crosses_on(view)
        if status == "firing":
            summary = (f"{what}: {PERIOD_WORDS[rule.period]} budget {rule.name!r} is on course for "
                       f"{usd(expected)} against {usd(rule.amount_usd)} (90%: {usd(details['forecast_low_usd'])} to "
                       f"{usd(details['forecast_high_usd'])}); it will be crossed on {details.get('crosses_on')}; "
                       f"{usd(self.state['spent'])} spent so far")
        else:
            summary = f"{what}: budget {rule.name!r} is no longer projected to go over ({usd(expected)})"
        return Verdict(kind="budget_forecast", status=status, severity="warning", ts=ts, team=rule.team,
                       endpoint=rule.endpoint, run_id=None, observed=round(expected, 2), baseline=rule.amount_usd,
                       ratio=round(expected / rule.amount_usd, 6), unit="usd", summary=summary, since=since,
                       incident=rule.name, details=details)

    def _threshold_verdict(self, status: Literal["firing", "resolved"], pct: int, since: float,
                           ts: float) -> Verdict:
        rule, spent = self.rule, self.state["spent"]
        what = f"{rule.team}{'/' + rule.endpoint if rule.endpoint else ''}{' ' + rule.model if rule.model else ''}"
        left = max(0.0, (self.state["end"] - ts) / 86400)
        if status == "firing":
            summary = (f"{what}: {PERIOD_WORDS[rule.period]} budget {rule.name!r} is {pct}% spent: {usd(spent)} of "
                       f"{usd(rule.amount_usd)}, {left:.1f} days before the period ends")
        else:
            summary = (f"{what}: {PERIOD_WORDS[rule.period]} budget {rule.name!r} period is over; it ended at "
                       f"{usd(spent)} of {usd(rule.amount_usd)}")
        return Verdict(kind="budget_threshold", status=status, severity=severity_of(pct), ts=ts, team=rule.team,
                       endpoint=rule.endpoint, run_id=None, observed=round(spent, 6), baseline=rule.amount_usd,
                       ratio=round(spent / rule.amount_usd, 6), unit="usd", summary=summary, since=since,
                       incident=f"{rule.name}|{pct}", details=self.details(threshold_pct=pct))

    def details(self, **more: Any) -> dict[str, Any]:
        """The contract's budget fields: the budget's name and its period (RFC 3339 by the caller)."""
        return {"budget": self.rule.name, "period_start": self.state["start"], "period_end": self.state["end"],
                **more}
