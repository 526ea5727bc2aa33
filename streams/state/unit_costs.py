"""Cost per outcome: a team's spend and outcomes tallied per period, each closed period judged.

Spend and outcomes join on team and endpoint (the feature both sides name). Periods are
`SPENDWATCH_OUTCOME_PERIOD_SECONDS` long, aligned to UTC, and a row counts in the period of its
own event time. A period is closed, and each (endpoint, outcome) judged by its
`UnitCostDetector` (detectors/unit_cost.py), once the team's clock passes its end plus the
settle time, like a window; a row for a period already closed still counts in the totals
(`/spend`, the ledger's outcome counts) but no longer in the figure judged.

An endpoint's spend is tallied from its first outcome on: until an endpoint has outcomes there
is nothing to divide by, and tallying every endpoint of every team would cost every call.

The state is the team's `ledger["unit_costs"]`, written in place, so it travels in the ledger's
changelog record and `spendwatch replay` and the live worker judge the same figures:

    {"open": {period_start: {"spend": {endpoint: usd}, "outcomes": {key: count}}},
     "closed_through": end of the newest closed period, "detectors": {key: detector state},
     "last": {key: the newest closed period's figures}}

where a key is `endpoint\\x1foutcome`.
"""

from __future__ import annotations

from typing import Any

from alerting.model import rfc3339
from detectors.unit_cost import UnitCostDetector, UnitCostRule
from detectors.verdict import Verdict
from streams.state.ledger import OUTCOME_SEP


class UnitCostWatch:
    """One team's cost per outcome for the length of one delta; its state is the ledger's own dict."""

    def __init__(self, team: str, rule: UnitCostRule, settle_s: float, state: dict[str, Any]) -> None:
        self.team, self.rule, self.settle_s, self.state = team, rule, settle_s, state
        self.period_s = rule.period_s
        self.open: dict[str, dict[str, dict[str, float]]] = state.setdefault("open", {})
        self.detector_states: dict[str, Any] = state.setdefault("detectors", {})
        self.last: dict[str, dict[str, Any]] = state.setdefault("last", {})
        self.closed_through: float = state.setdefault("closed_through", float("-inf"))
        self.endpoints = {key.split(OUTCOME_SEP, 1)[0] for key in self.detector_states}
        self.detectors: dict[str, UnitCostDetector] = {}

    def _bucket(self, ts: float) -> dict[str, dict[str, float]] | None:
        start = ts - ts % self.period_s
        if start < self.closed_through:
            return None  # its period is judged already
        key = str(int(start))
        bucket = self.open.get(key)
        if bucket is None:
            bucket = self.open[key] = {"spend": {}, "outcomes": {}}
        return bucket

    def on_spend(self, ts: float, endpoint: str, cost_usd: float) -> None:
        if endpoint in self.endpoints:
            bucket = self._bucket(ts)
            if bucket is not None:
                spend = bucket["spend"]
                spend[endpoint] = spend.get(endpoint, 0.0) + cost_usd

    def on_outcome(self, ts: float, endpoint: str, outcome: str, count: int) -> None:
        key = f"{endpoint}{OUTCOME_SEP}{outcome}"
        if key not in self.detector_states:
            self.detector_states[key] = None  # known from now on; its detector is made when first judged
            self.endpoints.add(endpoint)
        bucket = self._bucket(ts)
        if bucket is not None:
            outcomes = bucket["outcomes"]
            outcomes[key] = outcomes.get(key, 0) + count

    def next_close(self) -> float:
        """The clock at which the oldest open period can be closed (infinity: none open)."""
        if not self.open:
            return float("inf")
        return min(int(start) for start in self.open) + self.period_s + self.settle_s

    def close_through(self, clock: float) -> list[Verdict]:
        """Close every open period that ended (plus settle) by `clock`, oldest first, judging each key."""
        verdicts: list[Verdict] = []
        for start in sorted(int(key) for key in self.open):
            if start + self.period_s + self.settle_s > clock:
                break
            bucket = self.open.pop(str(start))
            for key in self.detector_states:
                endpoint = key.split(OUTCOME_SEP, 1)[0]
                spend, outcomes = bucket["spend"].get(endpoint, 0.0), int(bucket["outcomes"].get(key, 0))
                if spend == 0 and outcomes == 0:
                    continue  # nothing happened on it: a gap, not a figure
                detector = self._detector(key)
                verdict = detector.close_period(float(start), spend, outcomes, clock)
                if verdict is not None:
                    verdicts.append(verdict)
                self.last[key] = figures(start, spend, outcomes, detector.expected_usd_per_outcome())
            self.closed_through = self.state["closed_through"] = float(start + self.period_s)
        return verdicts

    def _detector(self, key: str) -> UnitCostDetector:
        detector = self.detectors.get(key)
        if detector is None:
            endpoint, outcome = key.split(OUTCOME_SEP, 1)
            detector = self.detectors[key] = UnitCostDetector(self.team, endpoint, outcome, self.rule,
                                                              self.detector_states[key])
        return detector

    def close(self) -> None:
        """Write the detectors' state back into the ledger."""
        for key, detector in self.detectors.items():
            self.detector_states[key] = detector.to_state()


def figures(period_start: float, spend_usd: float, outcomes: int, expected: float | None) -> dict[str, Any]:
    """One period's figures as `/unit-costs` shows them; no outcomes is no figure (null), never 0 or infinity."""
    return {"period_start": rfc3339(max(period_start, 0.0)), "spend_usd": round(spend_usd, 6), "outcomes": outcomes,
            "usd_per_outcome": round(spend_usd / outcomes, 6) if outcomes else None,
            "expected_usd_per_outcome": None if expected is None else round(expected, 6)}


def unit_cost_views(team: str, state: dict[str, Any] | None, rule: UnitCostRule) -> list[dict[str, Any]]:
    """`GET /unit-costs`' entries for a team: each key's open period, with its newest closed one as `previous`."""
    if not state:
        return []
    views = []
    newest_open = max((int(start) for start in state.get("open", {})), default=None)
    for key, detector_state in sorted(state.get("detectors", {}).items()):
        endpoint, outcome = key.split(OUTCOME_SEP, 1)
        expected = UnitCostDetector(team, endpoint, outcome, rule, detector_state).expected_usd_per_outcome()
        if newest_open is not None:
            bucket = state["open"][str(newest_open)]
            current = figures(newest_open, bucket["spend"].get(endpoint, 0.0),
                              int(bucket["outcomes"].get(key, 0)), expected)
        else:
            current = figures(state.get("closed_through", 0.0), 0.0, 0, expected)
        views.append({"team": team, "endpoint": endpoint, "outcome": outcome, **current,
                      "previous": state.get("last", {}).get(key)})
    return views
