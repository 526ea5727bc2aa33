"""Cost per outcome: regressions fire, traffic surges and small counts do not, droughts only while
spend goes on, one incident that resolves, and state that survives JSON."""

from __future__ import annotations

import math

import numpy as np
import orjson

from detectors.unit_cost import UnitCostDetector, UnitCostRule

HOUR = 3600.0
START = 1_764_547_200.0  # 2025-12-01T00:00:00Z, a Monday


def detector(rule: UnitCostRule | None = None) -> UnitCostDetector:
    return UnitCostDetector("support", "chat", "ticket_resolved", rule or UnitCostRule())


def hours(det: UnitCostDetector, first: int, count: int, per_hour: float, usd_per_outcome: float, seed: int,
          outcome_factor: float = 1.0, spend_factor: float = 1.0) -> list:
    """`count` hourly periods from hour `first`: Poisson outcomes, spend with 10% noise; every verdict."""
    rng = np.random.default_rng(seed)
    verdicts = []
    for hour in range(first, first + count):
        start = START + hour * HOUR
        spend = per_hour * usd_per_outcome * spend_factor * float(rng.lognormal(-0.005, 0.1))
        outcomes = int(rng.poisson(per_hour * outcome_factor))
        verdict = det.close_period(start, spend, outcomes, start + HOUR + 30)
        if verdict is not None:
            verdicts.append(verdict)
    return verdicts


def test_warms_up_before_it_judges():
    det = detector()
    assert det.expected_usd_per_outcome() is None
    assert hours(det, 0, 11, 100, 0.4, seed=1) == []
    assert det.expected_usd_per_outcome() is None
    hours(det, 11, 1, 100, 0.4, seed=2)
    assert math.isclose(det.expected_usd_per_outcome() or 0, 0.4, rel_tol=0.1)


def test_a_2x_regression_with_flat_spend_fires_within_two_periods_once():
    det = detector()
    assert hours(det, 0, 48, 200, 0.32, seed=3) == []
    verdicts = hours(det, 48, 2, 200, 0.32, seed=4, outcome_factor=0.5)  # same spend, half the tickets
    assert [(v.kind, v.status) for v in verdicts] == [("unit_cost_spike", "firing")]
    spike = verdicts[0]
    assert spike.unit == "usd_per_outcome" and spike.severity == "warning"
    assert spike.details["outcome"] == "ticket_resolved" and spike.incident == "ticket_resolved"
    assert 1.6 < spike.ratio < 2.6 and math.isclose(spike.baseline, 0.32, rel_tol=0.1)
    assert spike.summary.startswith("support/chat: $0.") and "per ticket_resolved" in spike.summary
    assert "x the usual $0.3" in spike.summary
    # The regression goes on: one incident, no repeats; the baseline is not taught the new cost.
    assert hours(det, 50, 6, 200, 0.32, seed=5, outcome_factor=0.5) == []
    assert math.isclose(det.expected_usd_per_outcome() or 0, 0.32, rel_tol=0.1)
    resolved = hours(det, 56, 4, 200, 0.32, seed=6)
    assert [(v.kind, v.status) for v in resolved] == [("unit_cost_spike", "resolved")]
    assert resolved[0].since == spike.ts == spike.since


def test_more_tokens_per_outcome_and_less_spend_fires():
    det = detector()
    hours(det, 0, 48, 200, 0.05, seed=7)
    verdicts = hours(det, 48, 2, 200, 0.05, seed=8, spend_factor=0.8, outcome_factor=0.8 / 3)  # 3x per outcome
    assert [(v.kind, v.status) for v in verdicts] == [("unit_cost_spike", "firing")]


def test_a_10x_traffic_surge_with_the_same_unit_cost_does_not_fire():
    det = detector()
    hours(det, 0, 48, 30, 0.5, seed=9)
    assert hours(det, 48, 8, 30, 0.5, seed=10, outcome_factor=10, spend_factor=10) == []
    assert hours(det, 56, 8, 30, 0.5, seed=11, outcome_factor=0.1, spend_factor=0.1) == []  # and a lull


def test_small_counts_are_noise():
    det = detector()
    hours(det, 0, 48, 3, 2.0, seed=12)
    # One ticket where three were due: $6 per ticket, 3x the usual, and proof of nothing.
    assert det.close_period(START + 48 * HOUR, 6.0, 1, START + 49 * HOUR) is None
    assert det.close_period(START + 49 * HOUR, 6.0, 0, START + 50 * HOUR) is None  # nor is one hour without any


def test_drought_fires_while_spend_goes_on_and_resolves_when_outcomes_return():
    det = detector()
    hours(det, 0, 48, 40, 0.25, seed=13)
    verdicts = hours(det, 48, 4, 40, 0.25, seed=14, outcome_factor=0.0)
    assert [(v.kind, v.status) for v in verdicts] == [("outcome_drought", "firing")]
    drought = verdicts[0]
    assert drought.details["outcome"] == "ticket_resolved" and drought.observed == 0.0
    assert all(math.isfinite(x) for x in (drought.observed, drought.baseline, drought.ratio))
    assert "no ticket_resolved in the last hour" in drought.summary
    back = hours(det, 52, 4, 40, 0.25, seed=15)
    assert [(v.kind, v.status) for v in back] == [("outcome_drought", "resolved")]
    assert back[0].since == drought.since


def test_no_drought_when_spend_stops_too():
    det = detector()
    hours(det, 0, 48, 40, 0.25, seed=16)
    for hour in range(48, 54):  # the feature is off: a few cents of stragglers, no outcomes, nothing to say
        assert det.close_period(START + hour * HOUR, 0.01, 0, START + (hour + 1) * HOUR) is None
    # Empty periods may be skipped altogether; the next ones are judged as usual.
    assert hours(det, 70, 4, 40, 0.25, seed=17) == []


def test_the_daily_shape_of_the_unit_cost_is_learned():
    det = detector()
    rng = np.random.default_rng(18)
    fired = []
    for hour in range(24 * 14):  # days cost $0.30 a ticket, nights $0.55 on a tenth of the traffic
        day = 8 <= hour % 24 < 20
        per_hour, unit = (80, 0.30) if day else (8, 0.55)
        start = START + hour * HOUR
        verdict = det.close_period(start, per_hour * unit * float(rng.lognormal(-0.005, 0.1)),
                                   int(rng.poisson(per_hour)), start + HOUR)
        fired += [verdict] if verdict else []
    assert fired == []
    night = det.expected_usd_per_outcome(START + 3 * HOUR)
    noon = det.expected_usd_per_outcome(START + 12 * HOUR)
    assert night is not None and noon is not None and night > 1.3 * noon


def test_state_round_trips_through_json():
    det = detector()
    hours(det, 0, 48, 60, 0.32, seed=19)
    hours(det, 48, 2, 60, 0.32, seed=20, outcome_factor=0.5)  # an open incident is part of the state
    state = orjson.loads(orjson.dumps(det.to_state()))
    twin = UnitCostDetector("support", "chat", "ticket_resolved", det.rule, state)
    assert twin.to_state() == det.to_state()
    assert twin.expected_usd_per_outcome() == det.expected_usd_per_outcome()
    assert hours(twin, 50, 6, 60, 0.32, seed=21) == hours(det, 50, 6, 60, 0.32, seed=21) != []
    assert twin.to_state() == det.to_state()


def test_a_period_seen_twice_or_without_a_figure_is_ignored():
    det = detector()
    hours(det, 0, 48, 60, 0.32, seed=22)
    before = det.to_state()
    assert det.close_period(START + 47 * HOUR, 100.0, 1, START + 49 * HOUR) is None
    assert det.close_period(START + 48 * HOUR, math.nan, 1, START + 49 * HOUR) is None
    assert det.to_state() == before
