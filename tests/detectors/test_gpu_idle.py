"""Idle GPUs: a hung run fires within 75 minutes, pauses and scrape gaps never do, and the alert
resolves when the GPUs work again or go away; the state survives a JSON round trip."""

from __future__ import annotations

import random
from collections.abc import Callable

import orjson

from detectors.gpu_idle import GpuIdleDetector, IdleRule
from detectors.verdict import Verdict

T0 = 1_764_547_200.0  # 2025-12-01T00:00:00Z
MINUTE, HOUR = 60.0, 3600.0
RUN = {"team": "research", "endpoint": None, "run_id": "llama-ft-7"}
ENDPOINT = {"team": "search", "endpoint": "rerank", "run_id": None}


def feed(detector: GpuIdleDetector, start: float, end: float, utilization: Callable[[float], float | None],
         gpus: int = 4, scrape_s: float = 30.0, price: float = 2.5) -> list[Verdict]:
    """Scrape `gpus` GPUs every `scrape_s` from `start` to `end`; `utilization(ts)` None skips the scrape.

    The jitter comes from the time, not a generator, so a feed cut in pieces gives the same samples."""
    verdicts = []
    ts = start
    while ts < end:
        level = utilization(ts)
        if level is not None:
            for gpu in range(gpus):
                jitter = random.Random(f"{ts}:{gpu}")
                verdict = detector.observe(ts + jitter.uniform(0, 0.5), f"gpu{gpu}",
                                           max(0.0, level + jitter.uniform(-3, 3)), price)
                if verdict is not None:
                    verdicts.append(verdict)
        ts += scrape_s
    return verdicts


def busy_then_hung(hang_at: float) -> Callable[[float], float]:
    return lambda ts: 85.0 if ts < hang_at else 2.5


def test_a_hung_run_fires_once_within_75_minutes_with_its_gpus_and_idle_dollars():
    hang_at = T0 + 2 * HOUR
    detector = GpuIdleDetector(RUN, IdleRule())
    verdicts = feed(detector, T0, hang_at + 90 * MINUTE, busy_then_hung(hang_at))
    assert [v.status for v in verdicts] == ["firing"]
    fired = verdicts[0]
    assert hang_at + 36 * MINUTE <= fired.ts <= hang_at + 75 * MINUTE
    assert abs(fired.since - hang_at) <= 2 * MINUTE
    assert (fired.kind, fired.severity, fired.unit, fired.baseline) == ("gpu_idle", "warning", "utilization_pct", 10.0)
    assert fired.observed < 10.0
    assert (fired.team, fired.run_id, fired.endpoint) == ("research", "llama-ft-7", None)
    assert fired.details is not None
    assert fired.details["gpus"] == 4 and fired.details["idle_usd_per_hour"] == 10.0
    assert "hung" in fired.summary and "stop_run" in fired.summary


def test_an_idle_serving_endpoint_could_scale_down():
    detector = GpuIdleDetector(ENDPOINT, IdleRule())
    verdicts = feed(detector, T0, T0 + 3 * HOUR, lambda ts: 40.0 if ts < T0 + HOUR else 1.0, gpus=2, price=4.0)
    assert [v.status for v in verdicts] == ["firing"]
    assert (verdicts[0].team, verdicts[0].endpoint, verdicts[0].run_id) == ("search", "rerank", None)
    assert verdicts[0].details is not None and verdicts[0].details["idle_usd_per_hour"] == 8.0
    assert "scale down" in verdicts[0].summary


def test_checkpoint_pauses_of_20_minutes_do_not_fire():
    def checkpointing(ts: float) -> float:
        return 0.0 if (ts - T0) % HOUR >= 40 * MINUTE else 85.0  # 20 minutes at 0% every hour
    assert feed(GpuIdleDetector(RUN, IdleRule()), T0, T0 + 8 * HOUR, checkpointing) == []


def test_scrape_gaps_are_not_idleness():
    def gappy(ts: float) -> float | None:
        return None if T0 + 2 * HOUR <= ts < T0 + 2 * HOUR + 40 * MINUTE else 85.0
    assert feed(GpuIdleDetector(RUN, IdleRule()), T0, T0 + 5 * HOUR, gappy) == []

    def pause_then_gap(ts: float) -> float | None:  # what little evidence the hour holds is a pause
        if T0 + 2 * HOUR <= ts < T0 + 2 * HOUR + 20 * MINUTE:
            return 0.0
        if T0 + 2 * HOUR + 20 * MINUTE <= ts < T0 + 3 * HOUR:
            return None
        return 85.0
    assert feed(GpuIdleDetector(RUN, IdleRule()), T0, T0 + 5 * HOUR, pause_then_gap) == []


def test_a_hang_with_a_scrape_gap_in_its_first_hour_fires_within_75_minutes():
    """The hour before minute 75 holds under 36 minutes of evidence: the window reaches back for the rest, no
    further (before the hang the run worked, and those minutes would hide it)."""
    hang_at = T0 + 2 * HOUR

    def hung_then_gap(ts: float) -> float | None:
        if hang_at + 10 * MINUTE <= ts < hang_at + 45 * MINUTE:
            return None  # the exporter was down for 35 minutes
        return busy_then_hung(hang_at)(ts)
    verdicts = feed(GpuIdleDetector(RUN, IdleRule()), T0, hang_at + 90 * MINUTE, hung_then_gap)
    assert [v.status for v in verdicts] == ["firing"]
    assert hang_at + 60 * MINUTE <= verdicts[0].ts <= hang_at + 75 * MINUTE
    assert verdicts[0].observed < 10.0 and abs(verdicts[0].since - hang_at) <= 2 * MINUTE
    assert feed(GpuIdleDetector(RUN, IdleRule(lookback=1.0)), T0, hang_at + 75 * MINUTE, hung_then_gap) == []


def test_samples_without_utilization_carry_no_evidence():
    detector = GpuIdleDetector(RUN, IdleRule())
    verdicts = [detector.observe(T0 + 60 * n, "gpu0", None, 2.0) for n in range(180)]
    assert verdicts == [None] * 180


def test_one_idle_gpu_among_busy_ones_is_not_an_idle_subject():
    detector = GpuIdleDetector(RUN, IdleRule())
    verdicts = []
    for n in range(240):
        for gpu in range(4):
            verdicts.append(detector.observe(T0 + 60 * n, f"gpu{gpu}", 0.0 if gpu == 3 else 80.0, 2.0))
    assert [v for v in verdicts if v is not None] == []


def test_it_resolves_promptly_when_the_gpus_work_again():
    hang_at = T0 + HOUR
    back_at = hang_at + 2 * HOUR
    detector = GpuIdleDetector(RUN, IdleRule())
    verdicts = feed(detector, T0, back_at + HOUR, lambda ts: 2.0 if hang_at <= ts < back_at else 85.0)
    assert [v.status for v in verdicts] == ["firing", "resolved"]
    fired, resolved = verdicts
    assert resolved.since == fired.since
    assert back_at < resolved.ts <= back_at + 10 * MINUTE
    assert resolved.observed >= 15.0 and "work again" in resolved.summary


def test_it_resolves_when_the_gpus_go_away_and_does_not_fire_again_at_once():
    detector = GpuIdleDetector(RUN, IdleRule())
    verdicts = feed(detector, T0, T0 + 2 * HOUR, lambda ts: 1.0)
    assert [v.status for v in verdicts] == ["firing"]
    last = T0 + 2 * HOUR
    assert detector.advance(last + 200) is None  # within max_interval_s: a late scrape, not gone
    gone = detector.advance(last + 400)
    assert gone is not None and gone.status == "resolved" and gone.since == verdicts[0].since
    assert "went away" in gone.summary
    assert detector.advance(last + 500) is None
    # Back an hour later, still idle: a new incident needs new evidence, not the old hour.
    again = feed(detector, last + HOUR, last + 3 * HOUR, lambda ts: 1.0)
    assert [v.status for v in again] == ["firing"]
    assert again[0].ts >= last + HOUR + 36 * MINUTE and again[0].since >= last + HOUR


def test_observe_after_a_long_silence_resolves_like_advance():
    detector = GpuIdleDetector(RUN, IdleRule())
    assert [v.status for v in feed(detector, T0, T0 + 2 * HOUR, lambda ts: 1.0)] == ["firing"]
    verdict = detector.observe(T0 + 3 * HOUR, "gpu0", 1.0, 2.5)
    assert verdict is not None and verdict.status == "resolved"


def test_state_round_trips_through_json_and_stays_bounded():
    hang_at = T0 + 3 * HOUR

    def trace(ts: float) -> float | None:
        if T0 + HOUR <= ts < T0 + HOUR + 15 * MINUTE:
            return None
        return 0.0 if T0 + 2 * HOUR <= ts < T0 + 2 * HOUR + 20 * MINUTE else busy_then_hung(hang_at)(ts)

    whole = feed(GpuIdleDetector(RUN, IdleRule()), T0, T0 + 6 * HOUR, trace)
    pieces: list[Verdict] = []
    state = None
    for hour in range(6):  # a restart every hour, the state read back from its changelog
        detector = GpuIdleDetector(RUN, IdleRule(), orjson.loads(orjson.dumps(state)) if state else None)
        pieces += feed(detector, T0 + hour * HOUR, T0 + (hour + 1) * HOUR, trace)
        state = detector.to_state()
    assert [v.status for v in whole] == ["firing"]
    assert [(v.status, v.ts, v.since, v.observed) for v in pieces] == [(v.status, v.ts, v.since, v.observed)
                                                                      for v in whole]
    assert state is not None
    assert len(state["buckets"]) <= IdleRule().minutes * IdleRule().lookback + 2 and len(state["gpus"]) == 4
    assert len(orjson.dumps(state)) < 8_000
