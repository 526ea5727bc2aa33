"""Cost per outcome for one (team, endpoint, outcome), judged once per closed period: what each
resolved ticket costs, against what it usually costs.

The usual cost is learned online as exponentially weighted sums of spend and of outcomes, so it
is sum(spend) / sum(outcomes): a traffic surge moves both together and leaves it alone. A slot
per hour of the day (for periods that divide a day) learns the daily shape, shrunk toward the
overall level until the slot has outcomes of its own. Only periods that look normal are learned
(river's `protect_anomaly_detector`), unless a change has lasted `accept_after_periods`: then
it is the new normal.

A period's spend divided by the usual cost is the count of outcomes it should have brought
(lambda). `unit_cost_spike` fires when cost per outcome is at least `ratio` x the usual AND the
outcomes are significantly fewer than lambda (lower tail < `alpha`); `outcome_drought` when none
came at all while P(0 | lambda) < `alpha`. The count test allows for the spread that spend noise
adds (a negative binomial whose spread is learned from normal periods), and also looks at
the last `pool_periods` periods together, so a quiet key's regression is caught once its
outcomes add up. No outcomes is no figure: never a cost of 0 or infinity.

>>> rule = UnitCostRule(warmup_periods=4)
>>> detector = UnitCostDetector("support", "chat", "ticket_resolved", rule)
>>> [detector.close_period(h * 3600.0, 40.0, 100, h * 3600.0 + 3600) for h in range(6)]
[None, None, None, None, None, None]
>>> detector.expected_usd_per_outcome()
0.4
>>> verdict = detector.close_period(6 * 3600.0, 40.0, 45, 7 * 3600.0)  # same spend, fewer tickets
>>> verdict.kind, verdict.status, verdict.observed, verdict.baseline
('unit_cost_spike', 'firing', 0.8889, 0.4)
>>> verdict.summary
'support/chat: $0.89 per ticket_resolved, 2.2x the usual $0.40 (45 in the last hour for $40.00; 100 expected)'
>>> detector.close_period(7 * 3600.0, 80.0, 200, 8 * 3600.0) is None  # twice the traffic, same cost: normal
True
>>> resolved = detector.close_period(8 * 3600.0, 40.0, 98, 9 * 3600.0)  # normal again: the incident is over
>>> resolved.status, resolved.since, resolved.summary
('resolved', 25200.0, 'support/chat: $0.40 per ticket_resolved in the last 2 hours, back under 2x the usual $0.40')
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Literal

from detectors.amounts import usd
from detectors.poisson import lower_tail
from detectors.verdict import Verdict

DAY = 86400.0
SPIKE, DROUGHT = "unit_cost_spike", "outcome_drought"


@dataclass(frozen=True)
class UnitCostRule:
    period_s: int = 3600  # SPENDWATCH_OUTCOME_PERIOD_SECONDS
    ratio: float = 2.0  # SPENDWATCH_UNIT_COST_RATIO
    alpha: float = 1e-3  # significance of the count test (over 1 to pool_periods periods: 0.12 false a key-week)
    drought_alpha: float = 1e-4  # ... and of no outcomes at all
    # A cost that doubled shows as 1.7x-2.3x by chance: a figure under `ratio` still fires when the count is
    # this likely (upper tail) at `ratio` x the usual cost. 0.5 asks for the figure itself to reach `ratio`.
    ratio_alpha: float = 0.05
    warmup_periods: int = 12  # periods learned before any judgement
    warmup_outcomes: float = 20.0  # and outcomes (weighted): a level from 3 tickets is a guess
    half_life_periods: float = 72.0  # the overall level and the spread
    slot_half_life_days: float = 7.0  # the hour-of-day slots (each learns once a day)
    slot_prior_days: float = 3.0  # a slot trusts its own figure after about this many days of it
    pool_periods: int = 12  # the count test also looks at the last 2..pool_periods periods together
    learn_alpha: float = 0.01  # a period whose count is this unlikely (either tail) is not learned
    resolve_periods: int = 2  # normal periods in a row that end an incident (one lucky period does not)
    accept_after_periods: int = 48  # unless nothing was learned for this long: a lasting change is the new normal
    prior_overdispersion: float = 2.0  # phi before any is learned: Var(N - lambda) = phi * lambda


class UnitCostDetector:
    """Pure: the caller hands in each closed period's spend and outcomes; state is a JSON-able dict."""

    def __init__(self, team: str, endpoint: str, outcome: str, rule: UnitCostRule,
                 state: dict[str, Any] | None = None) -> None:
        self.team, self.endpoint, self.outcome, self.rule = team, endpoint, outcome, rule
        self.state: dict[str, Any] = copy.deepcopy(state) if state is not None else {}
        self.state.setdefault("last", None)  # start of the newest period seen
        self.state.setdefault("level", [0.0, 0.0])  # weighted spend, weighted outcomes
        self.state.setdefault("spread", [0.0, 0.0])  # weighted sums of (N - lambda)^2 and of lambda
        self.state.setdefault("slots", {})  # hour-of-day slot (as text) -> [spend, outcomes, last learned, days]
        self.state.setdefault("learned", 0)  # periods learned
        self.state.setdefault("unlearned", 0)  # periods in a row not learned
        self.state.setdefault("recent", [])  # [start, spend, outcomes, lambda] of the last pool_periods periods
        self.state.setdefault("since", {})  # kind -> event time its open incident began
        self.state.setdefault("calm", 0)  # normal periods in a row

    def to_state(self) -> dict[str, Any]:
        return copy.deepcopy(self.state)

    # -- learning ---------------------------------------------------------------------------------

    def _slot(self, period_start: float) -> str | None:
        period = self.rule.period_s
        if period <= 0 or period > DAY or DAY % period:
            return None  # no hour-of-day shape for periods that do not divide a day
        return str(int((period_start % DAY) // period))

    def warm(self) -> bool:
        return self.state["learned"] >= self.rule.warmup_periods and self.state["level"][1] >= self.rule.warmup_outcomes

    def _expected(self, period_start: float) -> tuple[float, float] | None:
        """The usual cost per outcome for this period's slot, and its own relative variance."""
        spend, outcomes = self.state["level"]
        if not self.warm() or spend <= 0:
            return None
        level = spend / outcomes
        slot = self.state["slots"].get(self._slot(period_start) or "")
        # Relative variances: a level learned from n outcomes is off by about phi / n.
        phi = self.overdispersion()
        if slot is None:
            return level, phi / outcomes
        fade = 0.5 ** ((period_start - slot[2]) / DAY / self.rule.slot_half_life_days)
        slot_spend, slot_outcomes = slot[0] * fade, slot[1] * fade
        # The overall level counts as a few days of the slot's own outcomes: a quiet night slot learns its
        # shape as fast as a busy noon one.
        prior = self.rule.slot_prior_days * slot[1] / slot[3] if slot[3] > 0 else 0.0
        total = slot_outcomes + prior
        if total <= 0:
            return level, phi / outcomes
        return ((slot_spend + prior * level) / total,
                phi * slot_outcomes / total ** 2 + (prior / total) ** 2 * phi / outcomes)

    def expected_usd_per_outcome(self, period_start: float | None = None) -> float | None:
        """The learned level for the slot of `period_start` (default: the newest period); None while warming up."""
        start = period_start if period_start is not None else self.state["last"]
        expected = self._expected(start if start is not None else 0.0)
        return round(expected[0], 6) if expected else None

    def overdispersion(self) -> float:
        """phi: Var(N - lambda) / lambda in normal periods, 1 for Poisson outcomes and exact spend.

        The cost of each call varies, so a period's spend is a sum over its calls and its noise, counted in
        outcomes, grows like lambda (not lambda squared): a quiet night is as noisy as its few calls make it.
        """
        weight = 50.0  # the prior counts as periods that expected 50 outcomes in all
        squares, scale = self.state["spread"]
        return min(50.0, max(1.0, (squares + self.rule.prior_overdispersion * weight) / (scale + weight)))

    def _dispersion(self, lam: float, uncertainty: float) -> float:
        """The negative binomial's c2 for a count that stands for `lam`: phi spread over lam, plus the level's
        own error (shared by every period of a window, so it does not shrink with lam)."""
        return (self.overdispersion() - 1.0) / lam + uncertainty if lam > 0 else uncertainty

    def _learn(self, period_start: float, spend: float, outcomes: int, lam: float | None) -> None:
        level = self.state["level"]
        level[0] += spend
        level[1] += outcomes
        if lam is not None and lam > 0:
            spread = self.state["spread"]
            spread[0] += (outcomes - lam) ** 2
            spread[1] += lam
        key = self._slot(period_start)
        if key is not None:
            slot = self.state["slots"].get(key, [0.0, 0.0, period_start, 0.0])
            fade = 0.5 ** ((period_start - slot[2]) / DAY / self.rule.slot_half_life_days)
            self.state["slots"][key] = [slot[0] * fade + spend, slot[1] * fade + outcomes, period_start,
                                        slot[3] * fade + 1.0]
        self.state["learned"] += 1
        self.state["unlearned"] = 0

    def _fade(self, period_start: float) -> None:
        last = self.state["last"]
        if last is not None:
            fade = 0.5 ** ((period_start - last) / self.rule.period_s / self.rule.half_life_periods)
            self.state["level"] = [value * fade for value in self.state["level"]]
            self.state["spread"] = [value * fade for value in self.state["spread"]]
        self.state["last"] = period_start

    # -- judging ----------------------------------------------------------------------------------

    def close_period(self, period_start: float, spend_usd: float, outcomes: int, ts: float) -> Verdict | None:
        """Judge one closed period (in order; empty periods may be skipped); learn it if it looks normal."""
        last = self.state["last"]
        if (last is not None and period_start <= last) or not math.isfinite(spend_usd):
            return None  # a period judged already, or nothing a figure can come from
        spend, count = max(0.0, spend_usd), max(0, int(outcomes))
        self._fade(period_start)
        expected = self._expected(period_start)
        if expected is None:
            self.state["recent"] = []
            self._learn(period_start, spend, count, None)
            return None
        usual, uncertainty = expected
        lam = spend / usual
        horizon = period_start - self.rule.pool_periods * self.rule.period_s
        self.state["recent"] = [entry for entry in self.state["recent"] if entry[0] > horizon]
        self.state["recent"].append([period_start, spend, count, lam])
        verdict = self._judge(period_start, spend, count, usual, uncertainty, ts)
        c2 = self._dispersion(lam, uncertainty)
        anomalous = (lower_tail(count, lam, c2) < self.rule.learn_alpha
                     or 1.0 - lower_tail(count - 1, lam, c2) < self.rule.learn_alpha)
        if (not anomalous and not self.state["since"]) or self.state["unlearned"] >= self.rule.accept_after_periods:
            self._learn(period_start, spend, count, lam)
        else:
            self.state["unlearned"] += 1
        return verdict

    def _judge(self, period_start: float, spend: float, count: int, usual: float, uncertainty: float,
               ts: float) -> Verdict | None:
        since, ratio = self.state["since"], self.rule.ratio
        # Back to normal: nearer the usual cost than `ratio` x it (under sqrt(ratio) x: 1.41x for 2), where the
        # count is likelier at the usual cost. A cost that doubled is under 2x in about half its periods.
        normal = count > 0 and spend < math.sqrt(ratio) * usual * count
        self.state["calm"] = self.state["calm"] + 1 if normal else 0
        recent, newest = self.state["recent"], self.state["recent"][-1]
        calm = self.state["calm"] >= self.rule.resolve_periods
        for kind in (DROUGHT, SPIKE):
            if kind in since and (calm or (kind == DROUGHT and spend <= 0)):
                window = recent[-self.rule.resolve_periods:] if calm else [newest]
                self.state["recent"] = [newest]  # an incident's periods are never pooled into the next one
                return self._verdict(kind, "resolved", ts, window, usual)
        if DROUGHT not in since and count == 0 and spend > 0:
            dry: list[list[float]] = []
            for entry in reversed(recent):  # the run of periods without outcomes that ends now
                if entry[2] > 0:
                    break
                dry.insert(0, entry)
            if self._significant(dry, uncertainty, self.rule.drought_alpha):
                return self._verdict(DROUGHT, "firing", ts, dry, usual)
        # The newest period must point the same way (above the usual cost): a window is not judged on old news.
        if SPIKE not in since and DROUGHT not in since and newest[3] > newest[2]:
            for size in range(1, len(recent) + 1):
                window = recent[-size:]
                if sum(entry[2] for entry in window) > 0 and self._significant(window, uncertainty, self.rule.alpha) \
                        and self._reaches_ratio(window, uncertainty):
                    return self._verdict(SPIKE, "firing", ts, window, usual)
        return None

    def _significant(self, window: list[list[float]], uncertainty: float, alpha: float) -> bool:
        """Are the window's outcomes significantly fewer than its spend stands for?"""
        lam = sum(entry[3] for entry in window)
        if lam <= 0:
            return False
        return lower_tail(int(sum(entry[2] for entry in window)), lam, self._dispersion(lam, uncertainty)) < alpha

    def _reaches_ratio(self, window: list[list[float]], uncertainty: float) -> bool:
        """Is the window's cost per outcome `ratio` x the usual or more, or short of it only by chance?"""
        outcomes, lam = int(sum(entry[2] for entry in window)), sum(entry[3] for entry in window)
        if lam >= self.rule.ratio * outcomes:
            return True
        # At ratio x the usual cost the count stands for lam / ratio, with the same spend noise (in outcomes:
        # (phi - 1) * lam / ratio**2), which is this c2 again.
        c2 = self._dispersion(lam, uncertainty)
        return 1.0 - lower_tail(outcomes - 1, lam / self.rule.ratio, c2) >= self.rule.ratio_alpha

    def _verdict(self, kind: str, status: Literal["firing", "resolved"], ts: float, window: list[list[float]],
                 usual: float) -> Verdict:
        spend, count = sum(entry[1] for entry in window), int(sum(entry[2] for entry in window))
        lam = sum(entry[3] for entry in window)
        start, span_s = window[0][0], len(window) * self.rule.period_s
        what, span = f"{self.team}/{self.endpoint}", _span(span_s)
        if status == "firing":
            self.state["since"][kind] = ts
            since = ts
        else:
            since = self.state["since"].pop(kind)
        if kind == SPIKE:
            observed, baseline = spend / count, spend / lam if lam > 0 else usual
            if status == "firing":
                summary = (f"{what}: {usd(observed)} per {self.outcome}, {observed / baseline:.1f}x the usual "
                           f"{usd(baseline)} ({count} in the last {span} for {usd(spend)}; {lam:.0f} expected)")
            else:
                summary = (f"{what}: {usd(observed)} per {self.outcome} in the last {span}, back under "
                           f"{self.rule.ratio:g}x the usual {usd(baseline)}")
            figures = dict(observed=round(observed, 4), baseline=round(baseline, 4),
                           ratio=round(observed / baseline, 3), unit="usd_per_outcome")
        else:
            if status == "firing":
                summary = (f"{what}: no {self.outcome} in the last {span} while {usd(spend)} was spent; about "
                           f"{lam:.0f} were expected at the usual {usd(usual)} each")
            elif count:
                summary = f"{what}: {self.outcome} is coming again ({count} in the last {span} for {usd(spend)})"
            else:
                summary = f"{what}: spend stopped too; no {self.outcome} is expected"
            figures = dict(observed=float(count), baseline=round(lam, 2),
                           ratio=round(count / lam, 3) if lam else 0.0, unit="outcomes")
        details = {"outcome": self.outcome, "outcomes": count, "expected_outcomes": round(lam, 2),
                   "spend_usd": round(spend, 6), "expected_usd_per_outcome": round(usual, 6)}
        return Verdict(kind=kind, status=status, severity="warning", ts=ts, team=self.team, endpoint=self.endpoint,
                       run_id=None, summary=summary, since=since, window_start=start, window_s=span_s,
                       incident=self.outcome, details=details, **figures)  # type: ignore[arg-type]


def _span(seconds: float) -> str:
    """'hour', '2 hours', 'minute', '15 minutes': the words after "in the last"."""
    if seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return "hour" if hours == 1 else f"{hours} hours"
    minutes = round(seconds / 60)
    return "minute" if minutes == 1 else f"{minutes} minutes"
