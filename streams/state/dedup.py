"""Counts a repeated `event_id` once: producers retry, and the same file may be published twice.

Ids are kept as 64-bit hashes per team, for `horizon_s` of event time behind the team's
newest event and at most `max_ids_per_team` of them (the oldest go first). An id
repeated after it has left the horizon is counted again; the horizon is a setting.

>>> index = EventIdIndex(horizon_s=3600, max_ids_per_team=10)
>>> h = 12345  # an event_id's hash, streams/input/rows.py::id_hash
>>> index.seen("search", h), index.remember("search", h, 100.0), index.seen("search", h)
(False, None, True)
"""

from __future__ import annotations


class EventIdIndex:
    """In-memory index of recent ids per team; rebuilt from the `event_ids` table after recovery."""

    def __init__(self, horizon_s: float, max_ids_per_team: int = 1_000_000) -> None:
        self.horizon_s = horizon_s
        self.max_ids_per_team = max_ids_per_team
        self._ids: dict[str, dict[int, float]] = {}  # per team: hash -> ts, in the order remembered

    def seen(self, team: str, hashed: int) -> bool:
        ids = self._ids.get(team)
        return ids is not None and hashed in ids

    def remember(self, team: str, hashed: int, ts: float) -> None:
        ids = self.of_team(team)
        ids[hashed] = ts
        if len(ids) > self.max_ids_per_team:
            self.trim(team)

    def of_team(self, team: str) -> dict[int, float]:
        """The team's ids, for a caller that checks and adds many in a row; `trim` afterwards."""
        ids = self._ids.get(team)
        if ids is None:
            ids = self._ids[team] = {}
        return ids

    def trim(self, team: str) -> None:
        """Forget the oldest ids beyond `max_ids_per_team`."""
        ids = self._ids.get(team)
        while ids is not None and len(ids) > self.max_ids_per_team:
            del ids[next(iter(ids))]

    def prune(self, team: str, newest_ts: float) -> None:
        """Forget ids older than the horizon behind `newest_ts` (insertion order is roughly time order)."""
        ids = self._ids.get(team)
        if not ids:
            return
        cutoff = newest_ts - self.horizon_s
        while ids:
            oldest_id, oldest_ts = next(iter(ids.items()))
            if oldest_ts >= cutoff:
                break
            del ids[oldest_id]

    def clear(self) -> None:
        self._ids.clear()

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._ids.values())
