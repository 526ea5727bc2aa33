"""Runs the detectors over a team's ledger rows, in the order they are counted.

The live worker and `spendwatch replay` both call `apply_and_judge`: rows in release order
(streams/input/kinds.py) go into the ledger and through `TeamWatch`, row by row, with the team's
newest event time as the clock, so the same events raise the same alerts whatever order
Kafka delivered them in. Detector state lives in the ledger (`ledger["detect"]`), so it
travels in the same changelog record as the figures and survives restarts and rebalances.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from functools import lru_cache
from statistics import median
from typing import Any

from alerting.actions import commands_for
from alerting.model import make_alert, rfc3339
from detectors.budget import BudgetRule, BudgetTracker
from detectors.gpu_idle import GpuIdleDetector, IdleRule
from detectors.serving_price import DAY, ServingPriceDay, judge_day
from detectors.spike import FlashSpikeDetector, SpikeRule
from detectors.tiers import TierCatalog, TierPolicy, TierViolations
from detectors.training import RunSnapshot, TrainingRule, judge_run
from detectors.unit_cost import UnitCostRule
from detectors.verdict import Verdict
from streams.input.kinds import GPU, OUTCOMES
from streams.input.pricing import estimate_cost
from streams.input.rows import ATTRIBUTION
from streams.settings import Settings
from streams.state.categories import INFERENCE_SERVING, TRAINING
from streams.state.dedup import EventIdIndex
from streams.state.ledger import Applied, Ledger, WindowPolicy, apply_in_order, burn_rate_usd_per_hour
from streams.state.unit_costs import UnitCostWatch

#: Alert fields that are times: given as Unix times by the detectors, written RFC 3339 (CONTRACT.md).
TIMES = frozenset({"period_start", "period_end"})
#: Serving GPUs step (an autoscaler takes a minute to go from 2 to 24): a serving endpoint's usual is also judged
#: by a level of its last ten minutes or so (this fading factor), the lower of the two expected. See
#: docs/detection.md, "Idle GPUs and serving scale-outs".
SERVING_LOCAL_FADING = 0.1
#: A serving fleet's windows at this share of the spike bar or more (3.5x the usual at the default 10x) are not
#: learned; calls' windows, at half the bar. A scale-out that begins late in a window reads 2-5x there: learned, a
#: window at 4.8x raised the hour's expected GPU dollars by 28%, and the full windows of a 12x scale-out after it
#: read 9.7x, under the bar (`make run`'s demo, 2 of 16 start times). At 0.25 `make eval`'s serving section caught
#: 56 of 59 scale-outs within 2 windows, not 58. A fleet that stays this much larger is learned after
#: `adapt_after_windows`, as any lasting change is.
SERVING_PROTECT_FRACTION = 0.35


class RuleBook:
    """The thresholds in force per team and endpoint, resolved once from settings."""

    def __init__(self, settings: Settings, settle_s: float = 5.0) -> None:
        self.settings = settings
        self.settle_s = settle_s
        self.spike_rule = lru_cache(maxsize=100_000)(self._spike_rule)
        self.training_rule = lru_cache(maxsize=10_000)(self._training_rule)
        self.serving_spike_rule = lru_cache(maxsize=10_000)(self._serving_spike_rule)
        self.budgets: dict[str, list[BudgetRule]] = {}  # team -> its budgets
        for budget in settings.budgets:
            self.budgets.setdefault(budget.team, []).append(BudgetRule(
                name=budget.name, team=budget.team, period=budget.period, amount_usd=budget.amount_usd,
                endpoint=budget.endpoint, model=budget.model, thresholds=budget.thresholds, timezone=budget.timezone,
                category=budget.category))
        self.tier_catalog = TierCatalog(settings.model_tiers)
        self.tier_policy = TierPolicy((entry.team, entry.endpoint, entry.allow) for entry in settings.tier_policy)
        #: Whether calls are told by tier at all: with neither setting every model is tier `default`.
        self.watch_tiers = bool(self.tier_catalog or self.tier_policy)
        self.idle_rule = IdleRule(utilization_pct=settings.gpu_idle_utilization, minutes=settings.gpu_idle_minutes,
                                  max_interval_s=settings.gpu_max_interval_s)
        self.unit_cost_rule = UnitCostRule(period_s=settings.outcome_period_seconds, ratio=settings.unit_cost_ratio)

    def _spike_rule(self, team: str, endpoint: str) -> SpikeRule:
        s = self.settings
        return SpikeRule(window_s=s.window_seconds, ratio=s.threshold("spike_ratio", team, endpoint),
                         min_usd=s.threshold("spike_min_usd", team, endpoint),
                         min_tokens=int(s.threshold("spike_min_tokens", team, endpoint)),
                         min_calls=int(s.threshold("spike_min_calls", team, endpoint)),
                         spans=s.spike_spans, settle_s=self.settle_s)

    def _serving_spike_rule(self, team: str, endpoint: str) -> SpikeRule:
        return replace(self.spike_rule(team, endpoint), local_fading_factor=SERVING_LOCAL_FADING,
                       protect_fraction=SERVING_PROTECT_FRACTION)

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
        self.serving_spikes: dict[str, FlashSpikeDetector] = {}  # a serving endpoint's GPU dollars
        self.idle: dict[str, GpuIdleDetector] = {}  # "run:<id>" or "endpoint:<name>"
        self.verdicts: list[Verdict] = []
        self.window_s = rules.settings.window_seconds
        self.clock: float = self.state["clock"]  # the team's newest event time; written back by close()
        self.judge_from = self._next_judgement()
        rules_of_team = rules.budgets.get(team, ())
        states = ledger.setdefault("budgets", {}) if rules_of_team else {}
        # Their state is the ledger's own dicts: written in place, nothing to copy back.
        self.budgets = [BudgetTracker(rule, states.setdefault(rule.name, {})) for rule in rules_of_team]
        self.tiers = TierViolations(team, rules.tier_catalog, rules.tier_policy,
                                    rules.settings.tier_violation_quiet_seconds,
                                    ledger.setdefault("tiers", {})) if rules.watch_tiers else None
        # Only a team that has sent outcomes has a figure to keep: the others pay nothing per call for it.
        self.unit_costs = UnitCostWatch(team, rules.unit_cost_rule, rules.settle_s, ledger["unit_costs"]) \
            if "unit_costs" in ledger else None

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
            for endpoint in list(self.state.get("serving", {})) + [e for e in self.serving_spikes
                                                                  if e not in self.state.get("serving", {})]:
                self.verdicts.extend(self._serving(endpoint, self._serving_spike(endpoint).advance(ts)))
            for key in list(self.state.get("idle", {})) + [k for k in self.idle if k not in self.state.get("idle", {})]:
                verdict = self._idle(key).advance(ts)
                if verdict is not None:
                    self.verdicts.append(verdict)
            if "serving_price" in self.state:
                self._close_serving_days(ts)
            if self.tiers is not None:
                self.verdicts.extend(self.tiers.advance(ts))
            if self.unit_costs is not None and self.unit_costs.next_close() <= ts:
                self.verdicts.extend(self.unit_costs.close_through(ts))
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
        if self.unit_costs is not None:
            self.unit_costs.on_spend(ts, endpoint, cost)
        if "serving" in self.ledger and endpoint in self.ledger["serving"]:
            self._tally_served(ts, endpoint, prompt + completion, row)
        if self.tiers is not None:
            verdict = self.tiers.observe(ts, endpoint, row[ATTRIBUTION], cost)
            if verdict is not None:
                self.verdicts.append(verdict)
        for budget in self.budgets:
            # A call outside the budget still moves the team's clock, and so its periods, on.
            self.verdicts += budget.observe(ts, cost) if budget.rule.covers(endpoint, row[ATTRIBUTION]) \
                else budget.advance(ts)

    def on_other(self, kind: str, row: Sequence[Any]) -> None:
        """After a row of a kind other than usage."""
        if kind == OUTCOMES:
            self.on_outcome(row)
            return
        if kind == GPU:
            _position, run_id, gpu_id, ts, _type, price, _interval, utilization, endpoint = row
            verdict = self._idle(f"endpoint:{endpoint}" if endpoint else f"run:{run_id}").observe(
                ts, gpu_id, utilization, price)
            if verdict is not None:
                self.verdicts.append(verdict)
            if self.budgets:
                holder = self.ledger["serving"][endpoint] if endpoint else self.ledger["runs"][run_id]
                category = INFERENCE_SERVING if endpoint else TRAINING
                for budget in self.budgets:
                    self.verdicts += budget.observe(ts, holder["last_sample_usd"]) \
                        if budget.rule.covers(endpoint, "", category) else budget.advance(ts)
            if endpoint:
                self.on_serving(row)
                return
        self.on_run(row)

    def _idle(self, key: str) -> GpuIdleDetector:
        detector = self.idle.get(key)
        if detector is None:
            what, name = key.split(":", 1)
            subject = {"team": self.team, "endpoint": name if what == "endpoint" else None,
                       "run_id": name if what == "run" else None}
            detector = self.idle[key] = GpuIdleDetector(subject, self.rules.idle_rule,
                                                        self.state.setdefault("idle", {}).get(key))
        return detector

    def _serving_spike(self, endpoint: str) -> FlashSpikeDetector:
        detector = self.serving_spikes.get(endpoint)
        if detector is None:
            detector = FlashSpikeDetector(self.team, endpoint, self.rules.serving_spike_rule(self.team, endpoint),
                                          self.state.setdefault("serving", {}).get(endpoint))
            self.serving_spikes[endpoint] = detector
        return detector

    def on_serving(self, row: Sequence[Any]) -> None:
        """A serving GPU's sample: its dollars go through the endpoint's own spike detector, as calls' do."""
        endpoint, ts = row[8], row[3]
        if ts > self.clock:
            if ts >= self.judge_from:
                self._tick(ts)
            else:
                self.clock = ts
        usd = self.ledger["serving"][endpoint]["last_sample_usd"]
        verdict = self._serving_spike(endpoint).observe(ts, 0, usd)
        if verdict is not None:
            self.verdicts.extend(self._serving(endpoint, [verdict]))

    def _tally_served(self, ts: float, endpoint: str, tokens: int, row: Sequence[Any]) -> None:
        """A call served by an endpoint with serving GPUs: its tokens, and what they would cost at the API's price."""
        tallies = self.state.setdefault("serving_price", {})
        tally = tallies.get(endpoint)
        if tally is None:
            # The day under way when the first call came is only part of a day: counted, never judged.
            tally = tallies[endpoint] = {"day": ts // DAY * DAY, "partial": True, "tokens": 0, "api_usd": 0.0,
                                         "priced_tokens": 0, "open": None,
                                         "usd_at_start": self.ledger["serving"][endpoint]["cost_usd"]}
        tally["tokens"] += tokens
        api = estimate_cost(row[ATTRIBUTION], row[3], row[4], row[ATTRIBUTION + 4] or None)
        if api is not None:
            tally["api_usd"] += api
            tally["priced_tokens"] += tokens

    def _close_serving_days(self, ts: float) -> None:
        """At the first judgement after a UTC day ends: each serving endpoint's price per token that day."""
        for endpoint, tally in self.state["serving_price"].items():
            if tally["day"] + DAY + self.rules.settle_s > ts:
                continue
            cost_now = self.ledger["serving"][endpoint]["cost_usd"]
            if not tally["partial"]:
                day = ServingPriceDay(cost_now - tally["usd_at_start"], tally["tokens"], tally["api_usd"],
                                      tally["priced_tokens"])
                verdicts = judge_day(self.team, endpoint, tally["day"], day, tally["open"], ts)
                tally["open"] = next((v.since for v in verdicts if v.status == "firing"), None)
                self.verdicts.extend(verdicts)
            tally.update(day=(ts - self.rules.settle_s) // DAY * DAY, partial=False, tokens=0, api_usd=0.0,
                         priced_tokens=0, usd_at_start=cost_now)

    def _serving(self, endpoint: str, verdicts: list[Verdict]) -> list[Verdict]:
        """A serving spike is a flash spike with cause `gpus` and the GPUs before and after; `incident` keeps it
        apart from a spike of the same endpoint's calls."""
        if not verdicts:
            return verdicts
        serving = self.ledger["serving"][endpoint]
        out = []
        for verdict in verdicts:
            before, after = gpus_before_and_after(serving, verdict.since, verdict.ts, self.window_s,
                                                  self.policy.gpu_max_interval_s)
            summary = (f"{self.team}/{endpoint}: serving GPUs cost {verdict.ratio:,.1f}x the usual, "
                       f"{before:g} -> {after} GPUs" if verdict.status == "firing" else verdict.summary)
            out.append(replace(verdict, cause="gpus", contributors=[], cause_figures=None, incident="gpus",
                               summary=summary, details={"gpus_before": before, "gpus_after": after}))
        return out

    def on_outcome(self, row: Sequence[Any]) -> None:
        _position, endpoint, ts, outcome, count, _hashed = row
        if ts > self.clock:
            if ts >= self.judge_from:
                self._tick(ts)
            else:
                self.clock = ts
        if self.unit_costs is None:
            self.unit_costs = UnitCostWatch(self.team, self.rules.unit_cost_rule, self.rules.settle_s,
                                            self.ledger.setdefault("unit_costs", {}))
        self.unit_costs.on_outcome(ts, endpoint, outcome, count)

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
        for endpoint, detector in self.serving_spikes.items():
            self.state["serving"][endpoint] = detector.to_state()
        for key, idle in self.idle.items():
            self.state["idle"][key] = idle.to_state()
        if self.unit_costs is not None:
            self.unit_costs.close()
        return self.verdicts


def gpus_before_and_after(serving: dict[str, Any], since: float, now: float, window_s: int,
                          max_interval_s: float) -> tuple[float, int]:
    """A serving endpoint's usual GPUs (the median window's average, the window before `since` left out: a scale-out
    may have begun in it), and those heard from lately."""
    before = [hours for start, _usd, hours in serving["windows"] if start + 2 * window_s <= since]
    average = round(median(before) * 3600 / window_s, 1) if before else 0.0
    after = sum(1 for last_ts, _price in serving["gpu_last"].values() if last_ts >= now - max_interval_s)
    return average, after


def apply_and_judge(ledger: Ledger, team: str, entries: Iterable[tuple[str, Sequence[Any]]], rules: RuleBook,
                    policy: WindowPolicy, ids: EventIdIndex,
                    with_accounts: bool = True) -> tuple[Applied, list[Verdict], int]:
    """Apply rows in release order and run the detectors over them: (what was applied, verdicts, windows judged)."""
    watch = TeamWatch(ledger, team, rules, policy)
    applied = apply_in_order(ledger, team, entries, policy, ids, on_usage=watch.on_usage, on_other=watch.on_other,
                             with_accounts=with_accounts)
    return applied, watch.close(), watch.windows_judged


def alert_from_verdict(verdict: Verdict, base_url: str, page_url: str | None = None) -> dict[str, Any]:
    """The alert message for a verdict, with a link to the worker's figures behind it, and to the incident's page
    when `page_url` (SPENDWATCH_PUBLIC_URL: a worker address that people, not only workers, can reach) is set."""
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
    alert = make_alert(**fields, links=links)
    if page_url is not None:
        # The incident's page (issue 37): keyed by the fingerprint, known once the alert is made.
        alert["links"]["page"] = f"{page_url.rstrip('/')}/?" + urlencode({"incident": alert["dedup_key"]})
    return alert


def commands_from_alert(alert: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """The commands for the actions topic an alert calls for, for a team that opted in (SPENDWATCH_ACTIONS)."""
    setting = settings.action_setting(alert["team"])
    return [] if setting is None else commands_for(alert, setting.dry_run)
