"""Event-time watermarks, Flink-style: a time every source partition has moved past.

The ledger applies a team's rows in event-time order (streams/input/kinds.py), so that a backlog
read unevenly across partitions, a restart or a takeover gives the same windows and alerts
as `spendwatch replay`. It may apply a row only once no source partition can still bring an
earlier one: that time is the watermark.

- Ingest side, `ProgressTracker`: per input partition this worker owns, the newest event
  time forwarded so far, and whether the partition is *idle*: everything in it has been
  forwarded (by offset, against the broker's high watermark) and nothing new came for
  `idle_after_s`. After each micro-batch, every second, and as soon as a partition turns idle,
  the ingest agent sends every deltas partition a progress report, after the deltas it describes.
- Ledger side, `Watermark`: per deltas partition, the latest report of every input
  partition. The watermark is the oldest newest-event-time among the partitions that are not
  idle, less `max_out_of_order_s` (how far out of order one partition may be), and it is
  held at minus infinity while any partition that exists has not reported or has data whose
  time is not known yet. An idle partition does not hold it; when every partition is idle
  it is plus infinity: everything that arrived may be applied.

A partition with unread data is never idle, so a backlog is always applied in order. A row
that still arrives behind the watermark (a producer later than `max_out_of_order_s`, or an
idle partition waking up with old data) is applied at once, counted as out of order.

>>> mark = Watermark(max_out_of_order_s=5)
>>> mark.report({"partitions": {"u": 2}, "sources": {"u:0": [100.0, False]}})
>>> mark.value()  # u:1 has not reported
-inf
>>> mark.report({"partitions": {"u": 2}, "sources": {"u:1": [130.0, False]}}); mark.value()
95.0
>>> mark.report({"partitions": {"u": 2}, "sources": {"u:0": [100.0, True]}}); mark.value()
125.0
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The key of a progress report on the deltas topic (team names never hold control characters).
PROGRESS_KEY = b"\x00progress"


@dataclass
class ProgressTracker:
    """Ingest side: how far each owned input partition has been forwarded."""

    idle_after_s: float
    clock: Callable[[], float] = time.monotonic
    last_offset: dict[str, int] = field(default_factory=dict)
    newest: dict[str, float] = field(default_factory=dict)
    caught_up_since: dict[str, float] = field(default_factory=dict)
    reported_idle: set[str] = field(default_factory=set)  # the sources the last report called idle

    def forwarded(self, source: str, last_offset: int, newest_ts: float | None) -> None:
        """A micro-batch's deltas from `source` have been sent."""
        self.last_offset[source] = max(last_offset, self.last_offset.get(source, -1))
        if newest_ts is not None and newest_ts > self.newest.get(source, -math.inf):
            self.newest[source] = newest_ts
        self.caught_up_since.pop(source, None)  # data just came: quiet time starts again

    def report(self, owned: Mapping[str, tuple[int | None, int | None]]) -> dict[str, list[Any]]:
        """{source: [newest event time or None, idle]} for each owned source.

        `owned` maps each source this worker owns to (offset processing resumed from,
        the broker's high watermark), either None while unknown.
        """
        now = self.clock()
        out: dict[str, list[Any]] = {}
        for source, (resumed_at, highwater) in owned.items():
            done = self.last_offset.get(source)
            if resumed_at is not None and (done is None or done < resumed_at - 1):
                done = resumed_at - 1  # owned again after another worker had it: it read up to its commit
            caught_up = done is not None and highwater is not None and done + 1 >= highwater
            if caught_up:
                since = self.caught_up_since.setdefault(source, now)
            else:
                self.caught_up_since.pop(source, None)
            idle = caught_up and now - since >= self.idle_after_s
            out[source] = [self.newest.get(source), idle]
            if idle:
                self.reported_idle.add(source)
            else:
                self.reported_idle.discard(source)
        return out

    def idle_due(self) -> bool:
        """Whether a partition has turned idle since the last report.

        Its turning idle may release rows (the last burst before a quiet spell waits for it), so the
        ingest agent reports it at once rather than at the next second's report: up to a second
        off the alert latency.
        """
        now = self.clock()
        return any(source not in self.reported_idle and now - since >= self.idle_after_s
                   for source, since in self.caught_up_since.items())


@dataclass
class Watermark:
    """Ledger side, for one deltas partition: the reports of every input partition."""

    max_out_of_order_s: float
    partitions: dict[str, int] = field(default_factory=dict)  # input topic -> partition count
    sources: dict[str, list[Any]] = field(default_factory=dict)  # source -> [newest ts or None, idle]

    def report(self, progress: Mapping[str, Any]) -> None:
        self.partitions.update(progress["partitions"])
        for source, (newest, idle) in progress["sources"].items():
            known = self.sources.get(source)
            if known is not None and known[0] is not None and (newest is None or newest < known[0]):
                newest = known[0]  # event time only moves forward (a new owner starts from its commit)
            self.sources[source] = [newest, bool(idle)]

    def activate(self, source: str) -> None:
        """A delta from `source` arrived: it is not idle, whatever its last report said."""
        known = self.sources.get(source)
        self.sources[source] = [None if known is None else known[0], False]

    def holders(self) -> list[str]:
        """The input partitions holding the watermark where it is: not reported, unknown time, or the oldest."""
        out = []
        value = self.value() + self.max_out_of_order_s
        for topic, count in self.partitions.items():
            for partition in range(count):
                source = f"{topic}:{partition}"
                known = self.sources.get(source)
                if known is None or (not known[1] and (known[0] is None or known[0] <= value)):
                    out.append(f"{source}={'unreported' if known is None else known[0]}")
        return out

    def value(self) -> float:
        if not self.partitions:
            return -math.inf
        oldest = math.inf
        for topic, count in self.partitions.items():
            for partition in range(count):
                known = self.sources.get(f"{topic}:{partition}")
                if known is None:
                    return -math.inf
                newest, idle = known
                if idle:
                    continue
                if newest is None:
                    return -math.inf
                oldest = min(oldest, newest)
        return oldest - self.max_out_of_order_s

