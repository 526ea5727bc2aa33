"""Runaway training: a run whose actual or projected cost passes its limit, said as early as the
projection allows.

The limit is `estimated_cost_usd` x (1 + buffer), or the ceiling (`ceiling_usd`, else the
configured one), whichever is lower. The projection is the cost so far plus the current
burn rate over the hours the run still expects to need, and never less than
`lookahead_fraction` of its expected hours: a run past its expected end is assumed to go
on a while longer, so a run taking 3x too long is flagged before it costs 1.5x, while
one that ends within 1.2x is not.

>>> rule = TrainingRule(buffer=0.5, ceiling_usd=100_000)
>>> run = RunSnapshot(run_id="r1", team="research", ts=3600 * 10, started=0.0, cost_usd=10_000.0,
...                   burn_rate_usd_per_hour=2_000.0, estimated_cost_usd=40_000.0, ceiling_usd=None,
...                   expected_hours=20.0, status="running")
>>> judge_run(run, rule, None) is None  # 10k spent, 20k more expected: 30k < 60k
True
>>> doubled = RunSnapshot(**{**run.__dict__, "burn_rate_usd_per_hour": 8_000.0})
>>> verdict = judge_run(doubled, rule, None)
>>> verdict.status, verdict.observed, verdict.baseline  # 10k + 8k/h x 10 h = 90k projected vs 60k
('firing', 90000.0, 60000.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detectors.verdict import Verdict

ENDED = frozenset({"finished", "failed", "cancelled"})


@dataclass(frozen=True)
class TrainingRule:
    buffer: float = 0.5
    ceiling_usd: float = 100_000.0
    lookahead_fraction: float = 0.2
    lookahead_hours_without_estimate: float = 1.0


@dataclass(frozen=True)
class RunSnapshot:
    run_id: str
    team: str
    ts: float  # event time of the newest sample
    started: float | None
    cost_usd: float
    burn_rate_usd_per_hour: float
    estimated_cost_usd: float | None
    ceiling_usd: float | None
    expected_hours: float | None
    status: str


def limit_usd(run: RunSnapshot, rule: TrainingRule) -> tuple[float, str]:
    """The lowest limit that applies and what it is."""
    ceiling = run.ceiling_usd if run.ceiling_usd is not None else rule.ceiling_usd
    if run.estimated_cost_usd:
        budget = run.estimated_cost_usd * (1 + rule.buffer)
        if budget <= ceiling:
            return budget, f"its estimate ${run.estimated_cost_usd:,.0f} + {rule.buffer:.0%}"
    return ceiling, f"its ceiling ${ceiling:,.0f}"


def projected_cost_usd(run: RunSnapshot, rule: TrainingRule) -> float:
    if run.status in ENDED:
        return run.cost_usd
    if run.expected_hours and run.started is not None:
        elapsed_h = max(run.ts - run.started, 0.0) / 3600
        remaining_h = max(run.expected_hours - elapsed_h, rule.lookahead_fraction * run.expected_hours)
    else:
        remaining_h = rule.lookahead_hours_without_estimate
    return run.cost_usd + run.burn_rate_usd_per_hour * remaining_h


def judge_run(run: RunSnapshot, rule: TrainingRule, firing_since: float | None) -> Verdict | None:
    """A firing verdict when the run heads past its limit, a resolved one when a flagged run ends."""
    limit, what = limit_usd(run, rule)
    projected = projected_cost_usd(run, rule)
    if firing_since is not None:
        if run.status in ENDED:
            return _verdict(run, "resolved", run.cost_usd, limit, firing_since,
                            f"training run {run.run_id} ({run.team}) {run.status} at ${run.cost_usd:,.0f}; "
                            f"limit was {what}")
        return None
    if run.status in ENDED or not math.isfinite(projected) or projected < limit:
        return None
    spent_over = run.cost_usd >= limit
    observed = run.cost_usd if spent_over else projected
    summary = (f"training run {run.run_id} ({run.team}) has spent ${run.cost_usd:,.0f}, past {what}"
               if spent_over else
               f"training run {run.run_id} ({run.team}) is projected to cost ${projected:,.0f}, past {what}: "
               f"${run.cost_usd:,.0f} so far, burning ${run.burn_rate_usd_per_hour:,.0f}/h")
    return _verdict(run, "firing", observed, limit, run.ts, summary)


def _verdict(run: RunSnapshot, status: str, observed: float, limit: float, since: float, summary: str) -> Verdict:
    return Verdict(kind="runaway_training", status=status, severity="critical", ts=run.ts,  # type: ignore[arg-type]
                   team=run.team, endpoint=None, run_id=run.run_id, observed=round(observed, 2),
                   baseline=round(limit, 2), ratio=round(observed / limit, 3) if limit else math.inf,
                   unit="usd", summary=summary, since=since)
