"""At most one log line a minute per reason: a client that retries a bad request, or a stream of
bad records, must not fill the log (each reason's count is still in the metrics).

>>> clock = iter([0.0, 10.0, 30.0, 61.0]).__next__
>>> limit = PerReason(60.0, clock)
>>> limit.due("unauthorized"), limit.due("unauthorized"), limit.due("unauthorized", 2), limit.due("unauthorized")
(1, None, None, 4)
"""

from __future__ import annotations

import time
from collections.abc import Callable


class PerReason:
    """Says when a reason may be logged again, and how many it held back since its last line."""

    def __init__(self, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s, self.clock = interval_s, clock
        self.last: dict[str, float] = {}
        self.held: dict[str, int] = {}

    def due(self, reason: str, count: int = 1) -> int | None:
        """`count` more of `reason`: the number to log (these and those held back) when a line is due, else None."""
        now = self.clock()
        held = self.held.get(reason, 0) + count
        last = self.last.get(reason)
        if last is not None and now - last < self.interval_s:
            self.held[reason] = held
            return None
        self.last[reason], self.held[reason] = now, 0
        return held
