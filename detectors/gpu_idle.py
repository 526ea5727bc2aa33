"""Idle GPUs: the GPUs of one training run or serving endpoint averaging under a utilization
threshold over a trailing window, with most of that window covered by samples.

Each sample pays for the time since that GPU's previous one, as the ledger counts GPU cost
(`streams/state/ledger.py`), and a gap longer than `max_interval_s` pays for nothing: a scrape gap
is no evidence, so it can neither look idle nor dilute a busy run. Evidence is kept in
per-minute buckets over the trailing window (GPU-seconds, utilization x GPU-seconds, and the
wall-clock seconds some GPU covered), so the state stays small whatever the scrape rate.

The window is judged each time the subject's clock enters a new minute, over the minutes before
it. `gpu_idle` fires once when the window averages under `utilization_pct` with at least
`coverage` of it covered; it resolves when the last `resolve_minutes` average at least
`utilization_pct x resolve_factor` (so it resolves promptly without flapping on a threshold
straddler), or when every GPU of the subject has been silent for longer than `max_interval_s`
(they went away: a run ended, an endpoint scaled to zero). After a resolve only evidence from
then on can fire it again.

>>> detector = GpuIdleDetector({"team": "research", "endpoint": None, "run_id": "r1"}, IdleRule())
>>> verdicts = [detector.observe(60.0 * n, "gpu0", 2.0, 3.5) for n in range(120)]
>>> fired = [v for v in verdicts if v is not None]
>>> [(v.status, v.observed, v.since, v.details["gpus"], v.details["idle_usd_per_hour"]) for v in fired]
[('firing', 2.0, 0.0, 1, 3.5)]
>>> fired[0].ts / 60  # 36 minutes of evidence: 0.6 of the hour
36.0
>>> back = [detector.observe(7200.0 + 60 * n, "gpu0", 80.0, 3.5) for n in range(5)]
>>> [(n, v.status, v.since) for n, v in enumerate(back) if v is not None]  # 10 minutes over 15%
[(1, 'resolved', 0.0)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from detectors.verdict import Status, Verdict

MINUTE = 60.0


@dataclass(frozen=True)
class IdleRule:
    utilization_pct: float = 10.0  # SPENDWATCH_GPU_IDLE_UTILIZATION
    minutes: float = 60.0  # SPENDWATCH_GPU_IDLE_MINUTES
    max_interval_s: float = 300.0  # a gap longer than this between samples of a GPU is not evidence
    # Share of the window samples must cover before it is judged: "most" of it. Higher misses more of the
    # hangs a scrape gap falls into (evaluation/gpu_idle.py, seeds 101-115: 95.2% of idle hours caught in
    # time at 0.75, 96.9% at 0.6, no false incident either way); lower is still safe from 20-minute
    # checkpoint pauses next to a gap (it takes a pause of 34 minutes with nothing else covered at 0.6).
    coverage: float = 0.6
    # Where a scrape gap leaves the window short of that, it reaches back, up to this many times its length, only
    # as far as it takes to hold those minutes of evidence: every hang caught late had a 20-60 minute gap in its
    # first hour (evaluation/gpu_idle.py, seeds 101-115: 96.9% of idle hours in time without, 99.4% with, no false
    # incident either way). Reaching back a fixed 75 minutes instead took in the work before the hang (98.7%), 90
    # minutes hid more (96.9%). A checkpoint pause cannot fill the minutes alone.
    lookback: float = 1.5
    resolve_minutes: float = 10.0  # the shorter window that says the GPUs work again
    resolve_factor: float = 1.5  # ... when it averages at least utilization_pct x this
    resolve_coverage: float = 0.5


class GpuIdleDetector:
    """Idle GPUs of one subject: `{"team", "endpoint", "run_id"}`, a run (run_id) or an endpoint.

    Feed it the subject's GPU samples in event-time order (`observe`), and the clock when it moves
    on without them (`advance`). `to_state()` is JSON-able and bounded: one bucket per minute of the
    window, one entry per GPU heard from within `max_interval_s`.
    """

    def __init__(self, subject: dict[str, str | None], rule: IdleRule, state: dict[str, Any] | None = None) -> None:
        self.subject = subject
        self.rule = rule
        self.state: dict[str, Any] = state if state is not None else {}
        self.state.setdefault("gpus", {})  # gpu_id -> [last sample's ts, its USD per hour]
        self.state.setdefault("buckets", {})  # str(minute) -> [utilization x GPU-s, GPU-s, wall s covered]
        self.state.setdefault("covered_until", None)  # wall time covered so far (see _add_evidence); None: none
        self.state.setdefault("minute", None)  # the minute the clock is in: those before it are judged
        self.state.setdefault("floor", None)  # evidence before this cannot fire (a resolve came after it)
        self.state.setdefault("since", None)  # when the firing incident's idle stretch began

    @property
    def window_minutes(self) -> int:
        return max(1, round(self.rule.minutes))

    @property
    def kept_minutes(self) -> int:
        """The minutes of buckets kept: the window's, reaching back as far as `lookback` lets it."""
        return max(self.window_minutes, round(self.rule.minutes * self.rule.lookback))

    def to_state(self) -> dict[str, Any]:
        return {**self.state, "gpus": {k: list(v) for k, v in self.state["gpus"].items()},
                "buckets": {k: list(v) for k, v in self.state["buckets"].items()}}

    def observe(self, ts: float, gpu_id: str, utilization: float | None, usd_per_hour: float) -> Verdict | None:
        """Count one GPU sample; a verdict when it fires or resolves the subject's incident."""
        gone = self.advance(ts)  # the same answer whether or not the caller advanced the clock first
        gpus = self.state["gpus"]
        last = gpus.get(gpu_id)
        if last is not None and ts < last[0]:
            return gone  # late for this GPU: its time is already paid for
        if utilization is not None and last is not None and 0.0 < ts - last[0] <= self.rule.max_interval_s:
            self._add_evidence(last[0], ts, min(max(float(utilization), 0.0), 100.0))
        gpus[gpu_id] = [ts, usd_per_hour]
        minute = math.floor(ts / MINUTE)
        if self.state["minute"] is None or minute > self.state["minute"]:
            self.state["minute"] = minute
            self._forget(ts, minute)
            if gone is None:  # else they just went away: the floor keeps this minute from firing again
                return self._judge(ts, minute - 1)
        return gone

    def advance(self, ts: float) -> Verdict | None:
        """The clock moved on to `ts`: a firing incident resolves if every GPU went silent."""
        if self.state["since"] is None:
            return None
        recent = ts - self.rule.max_interval_s
        if any(last >= recent for last, _price in self.state["gpus"].values()):
            return None
        newest = max((last for last, _price in self.state["gpus"].values()), default=None)
        silent = "" if newest is None else f" for {ts - newest:,.0f} s"
        return self._resolve(ts, None, f"{self._name()}: its GPUs went away (no sample{silent})")

    def _add_evidence(self, start: float, end: float, utilization: float) -> None:
        """Spread [start, end] at `utilization` over the minute buckets it spans.

        Wall-clock coverage is what some GPU covered: with samples in event-time order, the part of
        [start, end] past `covered_until`. It may undercount a hole another GPU fills late, which
        only makes the detector slower to fire, never quicker."""
        oldest = (self.state["minute"] or 0) - self.kept_minutes - 1
        covered_until = self.state["covered_until"]
        wall_from = start if covered_until is None else max(start, covered_until)
        self.state["covered_until"] = end if covered_until is None else max(covered_until, end)
        for minute in range(math.floor(start / MINUTE), math.floor(end / MINUTE) + 1):
            lo, hi = max(start, minute * MINUTE), min(end, (minute + 1) * MINUTE)
            if hi <= lo or minute < oldest:
                continue
            bucket = self.state["buckets"].setdefault(str(minute), [0.0, 0.0, 0.0])
            bucket[0] += utilization * (hi - lo)
            bucket[1] += hi - lo
            bucket[2] += max(0.0, hi - max(lo, wall_from))

    def _forget(self, ts: float, minute: int) -> None:
        """Keep the window's buckets and the GPUs still heard from: the state stays bounded."""
        oldest = minute - self.kept_minutes - 1
        buckets = self.state["buckets"]
        for key in [k for k in buckets if int(k) < oldest]:
            del buckets[key]
        recent = ts - self.rule.max_interval_s
        gpus = self.state["gpus"]
        for gpu_id in [g for g, (last, _price) in gpus.items() if last < recent]:
            del gpus[gpu_id]

    def _window(self, last_minute: int, minutes: int) -> tuple[float | None, float, int]:
        """Average utilization, covered share and first minute of the `minutes` ending at `last_minute`
        (only evidence since the floor)."""
        first = last_minute - minutes + 1
        floor = self.state["floor"]
        busy = gpu_s = wall = 0.0
        for minute in range(first if floor is None else max(first, math.ceil(floor / MINUTE)), last_minute + 1):
            bucket = self.state["buckets"].get(str(minute))
            if bucket is not None:
                busy, gpu_s, wall = busy + bucket[0], gpu_s + bucket[1], wall + bucket[2]
        average = busy / gpu_s if gpu_s > 0 else None
        return average, wall / (minutes * MINUTE), first

    def _judge(self, ts: float, last_minute: int) -> Verdict | None:
        rule = self.rule
        if self.state["since"] is not None:
            average = self._working(last_minute)
            if average is not None:
                return self._resolve(ts, average, f"{self._name()}: its GPUs work again, averaging {average:.1f}% "
                                                  f"over the last {rule.resolve_minutes:g} minutes")
            return None
        average, covered, first = self._window(last_minute, self.window_minutes)
        if covered < rule.coverage and self.kept_minutes > self.window_minutes:
            minutes = self._minutes_of_evidence(last_minute)
            if minutes is not None:
                average, wall, first = self._window(last_minute, minutes)
                covered = wall * minutes / self.window_minutes  # the same minutes of evidence asked
        if average is None or covered < rule.coverage or average >= rule.utilization_pct or self._working(last_minute):
            return None
        since = self._idle_since(first, last_minute)
        self.state["since"] = since
        gpus, usd_per_hour = self._recent_gpus(ts)
        what = ("it looks hung: check it and stop it (a stop_run command may follow where the team has "
                "opted in to actions)" if self.subject.get("run_id") else "it could scale down")
        summary = (f"{self._name()}: {gpus} GPU{'s' if gpus != 1 else ''} averaged {average:.1f}% utilization over "
                   f"the last {rule.minutes:g} minutes (under {rule.utilization_pct:g}%), ${usd_per_hour:,.2f}/h "
                   f"idle; {what}")
        return self._verdict("firing", ts, average, since, summary, first * MINUTE,
                             {"gpus": gpus, "idle_usd_per_hour": round(usd_per_hour, 4),
                              "coverage": round(covered, 3)})

    def _minutes_of_evidence(self, last_minute: int) -> int | None:
        """The fewest minutes ending at `last_minute`, up to `kept_minutes`, that hold the window's share of
        covered time (`coverage` x `minutes`); None where even those do not. Only as far back as needed: older
        minutes are the work before a hang, which would hide it."""
        needed = self.rule.coverage * self.rule.minutes * MINUTE
        floor = self.state["floor"]
        wall = 0.0
        for minutes in range(1, self.kept_minutes + 1):
            minute = last_minute - minutes + 1
            if floor is not None and minute < math.ceil(floor / MINUTE):
                return None
            bucket = self.state["buckets"].get(str(minute))
            wall += bucket[2] if bucket is not None else 0.0
            if wall >= needed - 1e-9:
                return minutes
        return None

    def _working(self, last_minute: int) -> float | None:
        """The short window's average when it says the GPUs work: what resolves an incident, and what
        keeps the long window's lag from firing one just after an idle stretch ended."""
        rule = self.rule
        average, covered, _first = self._window(last_minute, max(1, round(rule.resolve_minutes)))
        if average is not None and covered >= rule.resolve_coverage \
                and average >= rule.utilization_pct * rule.resolve_factor:
            return average
        return None

    def _idle_since(self, first: int, last_minute: int) -> float:
        """The first minute of the trailing run of idle minutes (a gap does not break it), else the
        window's first evidence."""
        since = None
        earliest = None
        for minute in range(last_minute, first - 1, -1):
            if self.state["floor"] is not None and minute * MINUTE < self.state["floor"]:
                break
            bucket = self.state["buckets"].get(str(minute))
            if bucket is None or bucket[1] <= 0:
                continue
            earliest = minute
            if bucket[0] / bucket[1] >= self.rule.utilization_pct:
                break
            since = minute
        start = since if since is not None else earliest
        return (start if start is not None else first) * MINUTE

    def _resolve(self, ts: float, average: float | None, summary: str) -> Verdict:
        since = self.state["since"]
        self.state["since"] = None
        self.state["floor"] = ts
        gpus, usd_per_hour = self._recent_gpus(ts)
        return self._verdict("resolved", ts, average or 0.0, since, summary, None,
                             {"gpus": gpus, "idle_usd_per_hour": round(usd_per_hour, 4)})

    def _recent_gpus(self, ts: float) -> tuple[int, float]:
        recent = [price for last, price in self.state["gpus"].values() if last >= ts - self.rule.max_interval_s]
        return len(recent), float(sum(recent))

    def _name(self) -> str:
        team = self.subject.get("team") or ""
        if self.subject.get("run_id"):
            return f"training run {self.subject['run_id']} ({team})"
        return f"serving endpoint {self.subject.get('endpoint')} ({team})"

    def _verdict(self, status: Status, ts: float, average: float, since: float, summary: str,
                 window_start: float | None, details: dict[str, Any]) -> Verdict:
        threshold = self.rule.utilization_pct
        run_id = self.subject.get("run_id")
        return Verdict(kind="gpu_idle", status=status, severity="warning", ts=ts,
                       team=self.subject.get("team") or "", endpoint=None if run_id else self.subject.get("endpoint"),
                       run_id=run_id, observed=round(average, 2), baseline=threshold,
                       ratio=round(average / threshold, 3) if threshold else math.inf, unit="utilization_pct",
                       summary=summary, since=since, window_start=window_start,
                       window_s=round(self.rule.minutes * MINUTE), details=details)
