"""Is a slow key's surge as large as it reads? The size test over every window since it began (issue 39).

On a key of a call or a few a window the existing bars read a surge's size from one window or a
short span against the baseline's expectation, and both are noisy: a true 6x surge reads 10x in
one window of twenty now and then, and the hour-of-day profile of a key learned from a day of a
call a minute is itself off by 20% (the log of expected over true had sd 0.19-0.24 at 0.5-1 calls
a minute on `make eval`'s tuning seeds). So a 6x surge fired a third of the time.

Here each slow key keeps:

- **its local level**: an exponentially weighted mean of its calls a window (no hour of day),
  fading `LEVEL_FADING` (a time constant of an hour), learned from every window outside an incident
  that came while no surge was under way (not only those the baseline learns: leaving out windows
  at half the bar biased a quiet key's expectation low, a key of 0.4 calls a window read 0.2), and
  from what the baseline learns as a lasting change. Over the hour before a surge such a mean is
  off by 10-14% (the sd of its log at 0.5-5 calls a minute), about half the baseline's error;
- **the evidence since a surge began**: a CUSUM of `calls x ln(SIZE_LOW) - (SIZE_LOW - 1) x level`
  per judged window (the log-likelihood of a surge of `SIZE_LOW` against none) starts when it
  leaves zero and ends when it falls back to it; meanwhile the calls and windows since its start
  are counted, against the level at its start (learned before the surge, not during it).

The size is proven when the calls since the start are too many, at `SIZE_ALPHA`, for a surge of
`SIZE_LOW` x the level at the start, counting the doubt in that level: the count is judged as a
negative binomial (a Poisson whose mean is the level, itself an estimate made of about
`level x (2 - f) / f` calls) rather than a Poisson. One window, or a short span, cannot tell a 10x
surge from a 6x one; twenty windows of it, against a level made of a hundred calls, can.

State: six numbers.

>>> size = SurgeSize()
>>> for _ in range(120):  # a call a window
...     size.learn(1.0)
>>> size.proven(10, 1), size.proven(20, 1)  # one window: 10 calls could be a 5.5x surge, 20 could not
(False, True)
>>> for _ in range(6):  # six windows of a 10x surge prove its size
...     size.judge(10)
>>> size.proven(10, 1)
True
>>> other = SurgeSize([1.0, 120, 0.0, 0, 0, 0.0])
>>> for _ in range(6):  # six windows of a 6x surge do not
...     other.judge(6)
>>> other.proven(6, 1), other.to_state()
(False, [1.0, 120, 34.371, 36, 6, 1.0])
"""

from __future__ import annotations

import math
from typing import Any

from detectors.poisson import lower_tail

#: The local level's fading per window: a time constant of an hour of windows.
LEVEL_FADING = 1 / 60
#: The largest surge that must not fire: the size is proven against this multiple of the level.
SIZE_LOW = 5.5
#: The size test's significance: the chance that a surge of `SIZE_LOW` passes at the moment it is asked.
SIZE_ALPHA = 5e-3
#: The relative variance of the level beyond its calls' own (the daily cycle's drift over its hour of memory): an sd
#: of 11%. At 0.004 (6%) the level's doubt at 5 calls a minute read 7.5% where its error measured 10%, and a 6x surge
#: of 15-20 minutes at 2 calls a minute was proven larger than 5.5x by a level 15% low, late in the surge. Tuned on
#: seeds 11-28 (360 surges each): 4-6x fired 18 -> 13, 10/12x 352 -> 350; at 0.008, 15 and 352; at 0.02, 12 and 345.
LEVEL_DRIFT = 0.012
#: Windows learned before the level is trusted (fewer: the test does not apply, the other bars alone judge).
LEVEL_GRACE = 30
#: Windows a surge is followed before it is a lasting change (the baseline's `adapt_after_windows`): the evidence
#: restarts, so a level that drifted since is not judged against for hours.
LASTING_WINDOWS = 60


class SurgeSize:
    """A slow key's local level and the evidence since its latest surge began."""

    def __init__(self, state: list[Any] | None = None) -> None:
        # level: calls a window; learned: windows learned; score: the CUSUM; calls, windows: since the
        # surge's start; start_level: the level before its first window was learned.
        level, learned, score, calls, windows, start_level = state if state else (0.0, 0, 0.0, 0, 0, 0.0)
        self.level: float = level
        self.learned: int = learned
        self.score: float = score
        self.calls: int = calls
        self.windows: int = windows
        self.start_level: float = start_level

    def to_state(self) -> list[Any] | None:
        if not self.learned:
            return None
        return [self.level, self.learned, self.score, self.calls, self.windows, self.start_level]

    @property
    def ready(self) -> bool:
        return self.learned >= LEVEL_GRACE and self.level > 0

    def learn(self, calls: float) -> None:
        """One normal window: a plain mean over the first windows, then the fading one."""
        rate = max(LEVEL_FADING, 1 / (self.learned + 1))
        self.level = float(f"{self.level + rate * (calls - self.level):.6g}")
        self.learned += 1

    def learn_quiet(self, windows: int) -> None:
        """A long silence learned in one step: the level decays as that many empty windows would make it."""
        if self.learned:
            self.level = float(f"{self.level * (1 - LEVEL_FADING) ** windows:.6g}")
            self.learned += windows
        self.forget()

    def judge(self, calls: int) -> None:
        """One judged window, normal or not: the CUSUM moves, and the evidence since its start with it."""
        if not self.ready:
            return
        level = self.start_level if self.windows else self.level
        step = calls * math.log(SIZE_LOW) - (SIZE_LOW - 1) * level
        if self.score + step <= 0 or self.windows >= LASTING_WINDOWS:
            self.forget()
            return
        self.score = float(f"{self.score + step:.6g}")
        self.calls += calls
        self.windows += 1
        self.start_level = level

    def forget(self) -> None:
        self.score, self.calls, self.windows, self.start_level = 0.0, 0, 0, 0.0

    def doubt(self, level: float, drift: float = LEVEL_DRIFT) -> float:
        """The relative variance of `level` as an estimate of the key's rate: a Poisson mean of about
        `level x (2 - f) / f` calls (fewer during warm-up), plus the daily cycle's `drift`."""
        windows = min(self.learned, (2 - LEVEL_FADING) / LEVEL_FADING)
        return 1 / (windows * level) + drift

    def proven(self, calls: int, windows: int, alpha: float = SIZE_ALPHA, drift: float = LEVEL_DRIFT) -> bool:
        """Whether the calls since the surge began, with `calls` more over `windows` more windows (those not
        judged yet, the open one counted whole), prove a surge larger than `SIZE_LOW` x the level at its start, at
        `alpha`, with `drift` as the daily cycle's part of the level's doubt.

        True where the level is not learned yet: the test cannot judge, the other bars alone do.
        """
        if not self.ready:
            return True
        level = self.start_level if self.windows else self.level
        total = self.calls + calls
        mean = SIZE_LOW * level * (self.windows + windows)
        return total > 0 and 1.0 - lower_tail(total - 1, mean, self.doubt(level, drift)) < alpha
