"""Runs the detectors over a team's ledger rows, in the order they are counted.

The live worker and `spendwatch replay` both call `apply_and_judge`: rows in release order
(streams/input/kinds.py) go into the ledger and through `TeamWatch`, row by row, with the team's
newest event time as the clock, so the same events raise the same alerts whatever order
Kafka delivered them in. Detector state lives in the ledger (`ledger["detect"]`), so it
travels in the same changelog record as the figures and survives restarts and rebalances.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from alerting.actions import commands_for
from alerting.model import make_alert, rfc3339
from detectors.budget import BudgetRule, BudgetTracker
from detectors.spike import FlashSpikeDetector, SpikeRule
from detectors.training import RunSnapshot, TrainingRule, judge_run
from detectors.verdict import Verdict
from streams.input.rows import ATTRIBUTION
from streams.settings import Settings
from streams.state.dedup import EventIdIndex
from streams.state.ledger import Applied, Ledger, WindowPolicy, apply_in_order, burn_rate_usd_per_hour

#: Alert fields that are times: given as Unix times by the detectors, written RFC 3339 (CONTRACT.md).
TIMES = frozenset({"period_start", "period_end"})


class RuleBook:
    """The thresholds in force per team and endpoint, resolved once from settings."""

    def __init__(self, settings: Settings, settle_s: float = 5.0) -> None:
        self.settings = settings
        self.settle_s = settle_s
        self.spike_rule = lru_cache(maxsize=100_000)(self._spike_rule)
        self.training_rule = lru_cache(maxsize=10_000)(self._training_rule)
        self.budgets: dict[str, list[BudgetRule]] = {}  # team -> its budgets
        for budget in settings.budgets:
            self.budgets.setdefault(budget.team, []).append(BudgetRule(
                name=budget.name, team=budget.team, period=budget.period, amount_usd=budget.amount_usd,
                endpoint=budget.endpoint, model=budget.model, thresholds=budget.thresholds, timezone=budget.timezone))

    def _spike_rule(self, team: str, endpoint: str) -> SpikeRule:
        s = self.settings
        return SpikeRule(window_s=s.window_seconds, ratio=s.threshold("spike_ratio", team, endpoint),
                         min_usd=s.threshold("spike_min_usd", team, endpoint),
                         min_tokens=int(s.threshold("spike_min_tokens", team, endpoint)),
                         min_calls=int(s.threshold("spike_min_calls", team, endpoint)),
                         spans=s.spike_spans, settle_s=self.settle_s)

    def _training_rule(self, team: str) -> TrainingRule:
        s = self.settings
        return TrainingRule(buffer=s.threshold("training_buffer", team),
                            ceiling_usd=s.threshold("training_ceiling_usd", team))


class TeamWatch:
    """The detectors of one team for the length of one delta; `close()` writes their state back."""

    def __init__(self, ledger: Ledger, team: str, rules: RuleBook, policy: WindowPolicy) -> None:
        self.ledger, self.team, self.rules, self.policy = ledger, team, rules, policy
        self.state = ledger.setdefault("detect", {"clock": 0.0, "spikes": {}})
        self.spikes: dict[str, FlashSpikeDetector] = {}
        self.verdicts: list[Verdict] = []
        self.window_s = rules.settings.window_seconds
        self.clock: float = self.state["clock"]  # the team's newest event time; written back by close()
        self.judge_from = self._next_judgement()
        rules_of_team = rules.budgets.get(team, ())
        states = ledger.setdefault("budgets", {}) if rules_of_team else {}
        # Their state is the ledger's own dicts: written in place, nothing to copy back.
        self.budgets = [BudgetTracker(rule, states.setdefault(rule.name, {})) for rule in rules_of_team]

    def _spike(self, endpoint: str) -> FlashSpikeDetector:
        detector = self.spikes.get(endpoint)
        if detector is None:
            detector = FlashSpikeDetector(self.team, endpoint, self.rules.spike_rule(self.team, endpoint),
                                          self.state["spikes"].get(endpoint))
            self.spikes[endpoint] = detector
        return detector

    def _next_judgement(self) -> float:
        """A little before the clock's next window boundary (plus settle): no judging happens until then."""
        settle = self.rules.settle_s
        return ((self.clock - settle) // self.window_s + 1) * self.window_s + settle - 0.001

    def _tick(self, ts: float) -> None:
        """Advance the team clock; at each window boundary (plus settle) every endpoint is judged."""
        before = self.clock
        self.clock = ts
        settle = self.rules.settle_s
        if (ts - settle) // self.window_s != (before - settle) // self.window_s:
            for endpoint in list(self.state["spikes"]) + [e for e in self.spikes if e not in self.state["spikes"]]:
                self.verdicts.extend(self._spike(endpoint).advance(ts))
        self.judge_from = self._next_judgement()

    def on_usage(self, row: Sequence[Any]) -> None:
        _offset, endpoint, ts, prompt, completion, cost, _unpriced, _hashed, _m, _u, _s, _p, _v = row
        if ts > self.clock:
            if ts >= self.judge_from:  # `_tick` decides exactly; this only skips it between boundaries
                self._tick(ts)
            else:
                self.clock = ts
        detector = self.spikes.get(endpoint) or self._spike(endpoint)
        verdict = detector.observe(ts, prompt + completion, cost, row[ATTRIBUTION:])
        if verdict is not None:
            self.verdicts.append(verdict)
        for budget in self.budgets:
            # A call outside the budget still moves the team's clock, and so its periods, on.
            self.verdicts += budget.observe(ts, cost) if budget.rule.covers(endpoint, row[ATTRIBUTION]) \
                else budget.advance(ts)

    def on_run(self, row: Sequence[Any]) -> None:
        """After a GPU sample or a lifecycle event: is the run heading past its limit?"""
        _position, run_id, _gpu_id_or_status, ts, *_rest = row  # GpuRow and RunRow start alike
        run = self.ledger["runs"][run_id]
        snapshot = RunSnapshot(run_id=run_id, team=self.team, ts=max(ts, run["high"]), started=run["started"],
                               cost_usd=run["cost_usd"],
                               burn_rate_usd_per_hour=burn_rate_usd_per_hour(run, self.policy),
                               estimated_cost_usd=run["estimated_cost_usd"], ceiling_usd=run["ceiling_usd"],
                               expected_hours=run["expected_hours"], status=run["status"])
        verdict = judge_run(snapshot, self.rules.training_rule(self.team), run.get("alert_since"))
        if verdict is not None:
            run["alert_since"] = verdict.since if verdict.status == "firing" else None
            self.verdicts.append(verdict)

    @property
    def windows_judged(self) -> int:
        return sum(detector.judged for detector in self.spikes.values())

    def close(self) -> list[Verdict]:
        self.state["clock"] = self.clock
        for endpoint, detector in self.spikes.items():
            self.state["spikes"][endpoint] = detector.to_state()
        return self.verdicts


def apply_and_judge(ledger: Ledger, team: str, entries: Iterable[tuple[str, Sequence[Any]]], rules: RuleBook,
                    policy: WindowPolicy, ids: EventIdIndex,
                    with_accounts: bool = True) -> tuple[Applied, list[Verdict], int]:
    """Apply rows in release order and run the detectors over them: (what was applied, verdicts, windows judged)."""
    watch = TeamWatch(ledger, team, rules, policy)
    applied = apply_in_order(ledger, team, entries, policy, ids, on_usage=watch.on_usage, on_run=watch.on_run,
                             with_accounts=with_accounts)
    return applied, watch.close(), watch.windows_judged


def alert_from_verdict(verdict: Verdict, base_url: str) -> dict[str, Any]:
    """The alert message for a verdict, with a link to the worker's figures behind it."""
    from urllib.parse import quote, urlencode

    if verdict.run_id is not None:
        links = {"run": f"{base_url}/runs/{quote(verdict.run_id, safe='')}"}
    elif verdict.kind.startswith("budget_"):
        links = {"budgets": f"{base_url}/budgets?" + urlencode({"team": verdict.team})}
    else:
        links = {"spend": f"{base_url}/spend?" + urlencode({"team": verdict.team, "endpoint": verdict.endpoint})}
    fields = verdict.as_dict()
    if fields["details"]:
        fields["details"] = {name: rfc3339(value) if name in TIMES else value
                             for name, value in fields["details"].items()}
    return make_alert(**fields, links=links)


def commands_from_alert(alert: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """The commands for the actions topic an alert calls for, for a team that opted in (SPENDWATCH_ACTIONS)."""
    setting = settings.action_setting(alert["team"])
    return [] if setting is None else commands_for(alert, setting.dry_run)
