"""Each key's normal level: river exponentially weighted means, shaped by the hour of day.

`SeasonalBaseline` follows river's anomaly-detector protocol (`learn_one`, `score_one`,
higher score = more anomalous) and keeps three levels (calls, tokens and dollars a
window) as `river.stats.EWMean`s, with a 24-slot hour-of-day profile on top so a daily
peak is expected rather than alarming. Warm-up lives here: until `grace_period` windows
have been learned the baseline does not claim to know what is normal.

State is a short list of floats (`to_state` / `from_state`), so it is stored as JSON in
the Faust table next to the windows and never pickled.

>>> baseline = SeasonalBaseline(fading_factor=0.1, grace_period=3)
>>> for _ in range(5):
...     baseline.learn_one({"hour": 9, "calls": 10.0, "tokens": 5000.0, "cost": 0.5})
>>> baseline.ready, baseline.expected(9)
(True, (10.0, 5000.0, 0.5))
>>> round(baseline.score_one({"hour": 9, "calls": 150.0, "tokens": 75000.0, "cost": 7.5}), 1)
15.0
>>> SeasonalBaseline.from_state(baseline.to_state(), 0.1, 3).expected(9) == baseline.expected(9)
True
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from river import base, stats

METRICS = ("calls", "tokens", "cost")
HOURS = 24
PROFILE_BOUNDS = (0.05, 20.0)
MIN_WEIGHT = 0.02  # the slowest learning: a key expecting a call in 50 windows or fewer


def _ewmean(fading_factor: float, value: float | None) -> stats.EWMean:
    mean = stats.EWMean(fading_factor=fading_factor)
    if value is not None:
        mean.update(value)  # river's first update sets the mean exactly: a lossless restore
    return mean


class SeasonalBaseline(base.AnomalyDetector):
    """Expected calls, tokens and cost per window for one key, by hour of day."""

    def __init__(self, fading_factor: float = 0.02, profile_rate: float = 0.05, grace_period: int = 30) -> None:
        self.fading_factor = fading_factor
        self.profile_rate = profile_rate
        self.grace_period = grace_period
        self.learned = 0
        self.levels = {metric: _ewmean(fading_factor, None) for metric in METRICS}
        self.profile = [1.0] * HOURS

    @property
    def ready(self) -> bool:
        return self.learned >= self.grace_period

    def expected(self, hour: int) -> tuple[float, float, float]:
        """Expected (calls, tokens, cost) for a window in this hour of day."""
        factor = self.profile[hour]
        return tuple(self.levels[m].get() * factor for m in METRICS)  # type: ignore[return-value]

    def learn_one(self, x: dict[Hashable, Any], shape: bool = True) -> None:
        """Learn one completed window: {"hour", "calls", "tokens", "cost"}.

        `shape=False` learns the levels only, not the hour-of-day profile: a window of a change learned as the new
        normal (an hour-long scale-out) is that day's, not the key's daily shape (learned into its hour, it had
        the next day's scale-out expected at 4x the usual: `make eval`'s serving section).

        During warm-up the level is the plain mean of what has been seen (an exponentially
        weighted mean would lean on the very first window for an hour); after it, river's
        EWMean with `fading_factor`.
        """
        hour = int(x["hour"])
        factor = self.profile[hour]
        calls_level = self.levels["calls"].get()
        weight = self.weight(calls_level * factor)
        if shape and self.learned >= 1 and calls_level > 0:
            # The profile learns how this hour compares with the key's level.
            target = min(max(x["calls"] / calls_level, PROFILE_BOUNDS[0]), PROFILE_BOUNDS[1])
            # Six significant digits, as learned: the same in memory and restored from state, half the bytes.
            self.profile[hour] = float(f"{factor + self.profile_rate * weight * (target - factor):.6g}")
        for metric in METRICS:
            value = x[metric] / factor
            mean = self.levels[metric].get()
            if 0 < self.learned < self.grace_period:
                self.levels[metric] = _ewmean(self.fading_factor, mean + (value - mean) / (self.learned + 1))
            elif weight < 1 and self.learned:
                # A quiet key: a plain mean until the slower fading takes over (no early window outweighs the rest).
                rate = max(self.fading_factor * weight, 1 / (self.learned + 1))
                self.levels[metric] = _ewmean(self.fading_factor, mean + rate * (value - mean))
            else:
                self.levels[metric].update(value)
            # Six significant digits, as learned (like the profile): the same restored from state, fewer bytes.
            self.levels[metric] = _ewmean(self.fading_factor, float(f"{self.levels[metric].get():.6g}"))
        self.learned += 1

    @staticmethod
    def weight(expected_calls: float) -> float:
        """How much one window says about a key: a window of a key that expects under a call says little.

        The levels fade and the profile learns this much slower (a key with a call every 20 windows
        would otherwise judge by its last two or three calls and by an hour-of-day shape of noise).
        """
        return min(1.0, max(expected_calls, MIN_WEIGHT))

    def learn_quiet(self, windows: int) -> None:
        """Learn `windows` empty windows at once (a long silence): each level decays geometrically."""
        if self.learned == 0:
            return
        decay = (1 - self.fading_factor * self.weight(self.levels["calls"].get())) ** windows
        self.levels = {m: _ewmean(self.fading_factor, self.levels[m].get() * decay) for m in METRICS}
        self.learned += windows

    def score_one(self, x: dict[Hashable, Any]) -> float:
        """How many times its expected level the window is, on the metric that is furthest above."""
        expected = self.expected(int(x["hour"]))
        ratios = [x[m] / e for m, e in zip(METRICS[1:], expected[1:], strict=False) if e > 0]
        return max(ratios, default=0.0)

    def to_state(self) -> list[Any]:
        return [self.learned, [self.levels[m].get() for m in METRICS], list(self.profile)]

    @classmethod
    def from_state(cls, state: list[Any] | None, fading_factor: float, grace_period: int,
                   profile_rate: float = 0.05) -> SeasonalBaseline:
        baseline = cls(fading_factor=fading_factor, profile_rate=profile_rate, grace_period=grace_period)
        if state:
            learned, levels, profile = state
            baseline.learned = learned
            if learned:
                baseline.levels = {m: _ewmean(fading_factor, v) for m, v in zip(METRICS, levels, strict=False)}
            baseline.profile = list(profile)
        return baseline
