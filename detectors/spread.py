"""How much a key's spend and calls vary from window to window, for the tests that must know it.

Two statistics per key, learned from the same normal windows as the baseline:

- **The spread of the amount.** `z = ln(spend / expected spend)` per window, with an
  exponentially weighted mean and variance (West's update, as river's `stats.EWVar`, after a
  plain mean over the first windows). A key whose spend is *lumpy* (a cloud meter or a bill
  line: one event a period carrying the whole period, its amount varying 3-5x) has a large
  spread, and a period at 10x its mean comes by chance every few days. There the amount must
  also pass a test of its own: `z >= mean + Z x sd` for one window, `Z x sd / sqrt(k)` for the
  mean z of k windows, with Z the normal quantile of the detector's alpha (4.75 for 1e-6). On
  keys with a steady amount this bar sits below `ln(ratio)` and changes nothing.
- **How regular the calls are.** The mean of `(calls - expected)^2 / expected`: about 1 for
  calls that come at random (Poisson), about 0 for a meter's one event a period. The Poisson
  count test means nothing for regular calls (a meter never sends a second event), so it is
  not applied to them.
- **How long its bursts last.** A meter's normal life can hold bursts: a period or three at several
  times its usual amount, recurring (a nightly export, a batch). Each run of *high* windows in a
  row (judged by the caller: far above the usual z) that ends without an incident is a burst the
  key has shown; `burst` is the longest, fading slowly. A jump on such a key must hold longer than
  its bursts do before it can fire, as a daily batch job's spend must pass a bar its batches set.

>>> spread = AmountSpread()
>>> for amount in [1.0, 3.0, 0.5, 2.0] * 20:  # lumpy: 0.5x to 3x
...     spread.learn(amount, expected=1.5, calls=1, expected_calls=1.0, fading_factor=0.02)
>>> round(spread.mean, 2), round(spread.sd, 2), spread.regular
(-0.13, 0.68, True)
"""

from __future__ import annotations

import math
from typing import Any

#: Spend below this share of the expected counts as this share (an empty window's log is -infinity).
FLOOR_SHARE = 1e-3
#: Calls at most this dispersed (variance over mean) are regular, not random.
REGULAR_DISPERSION = 0.25
#: How fast the longest burst is forgotten, per window judged, as a share of the fading factor: slower than the
#: levels (bursts a day or more apart must not be forgotten between them), about 200 windows at 0.02.
BURST_FADING_SHARE = 0.25


def amount_z(spend: float, expected: float) -> float:
    """A window's spend against the expected, in the log: 0 is as expected, ln(10) is 10x."""
    return math.log(max(spend, FLOOR_SHARE * expected) / expected)


class AmountSpread:
    """Exponentially weighted mean and variance of `amount_z`, and the dispersion of the calls."""

    def __init__(self, learned: int = 0, mean: float = 0.0, variance: float = 0.0, dispersion: float = 1.0,
                 burst: float = 0.0, run: int = 0) -> None:
        self.learned, self.mean, self.variance, self.dispersion = learned, mean, variance, dispersion
        self.burst = burst  # the longest run of high windows that ended without an incident, fading
        self.run = run  # high windows in a row up to the newest judged

    @property
    def sd(self) -> float:
        return math.sqrt(self.variance)

    @property
    def regular(self) -> bool:
        return self.dispersion <= REGULAR_DISPERSION

    def learn(self, spend: float, expected: float, calls: int, expected_calls: float, fading_factor: float) -> None:
        """One normal window (nothing is learned without an expectation to compare with).

        Its calls teach the dispersion; its spend, where it had calls, the spread.
        """
        if expected <= 0 or expected_calls <= 0:
            return
        rate = max(fading_factor, 1 / (self.learned + 1))
        self.dispersion += rate * ((calls - expected_calls) ** 2 / expected_calls - self.dispersion)
        if calls:  # a meter that skipped a period reported nothing: that is not a period that cost nothing
            change = amount_z(spend, expected) - self.mean
            self.mean += rate * change
            self.variance = (1 - rate) * (self.variance + rate * change * change)
        self.learned += 1
        # Six significant digits, as learned: the same in memory and restored from state.
        self.mean, self.variance, self.dispersion = (float(f"{value:.6g}") for value in
                                                     (self.mean, self.variance, self.dispersion))

    def count_burst(self, high: bool, normal: bool, fading_factor: float) -> None:
        """One window judged outside an incident: `high` continues a run, a `normal` one ends it (a burst);
        one neither (not high alone, but over a span) leaves it open."""
        faded = self.burst * (1 - BURST_FADING_SHARE * fading_factor)
        self.burst = float(f"{faded:.6g}") if faded >= 0.5 else 0.0  # under half a window: forgotten
        if high:
            self.run += 1
        elif normal:
            self.burst = max(self.burst, float(self.run))
            self.run = 0

    def forget_run(self) -> None:
        """The run turned into an incident: a jump, not a burst of the key's normal life."""
        self.run = 0

    def to_state(self) -> list[Any]:
        state = [self.learned, self.mean, self.variance, self.dispersion]
        return [*state, self.burst, self.run] if self.burst or self.run else state

    @classmethod
    def from_state(cls, state: list[Any] | None) -> AmountSpread:
        return cls(*state) if state else cls()
