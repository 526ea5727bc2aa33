"""Counts a repeated `event_id` once: producers retry, and the same file may be published twice.

Ids are kept as 64-bit hashes per team, for `horizon_s` of event time behind the team's
newest event and at most `max_ids_per_team` of them (the oldest go first). An id
repeated after it has left the horizon is counted again; the horizon is a setting.

>>> index = EventIdIndex(horizon_s=3600, max_ids_per_team=10)
>>> h = id_hash("req-1")
>>> index.seen("search", h), index.remember("search", h, 100.0), index.seen("search", h)
(False, None, True)
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict


def id_hash(event_id: str) -> int:
    """A stable 63-bit hash (fits a JSON integer and a signed 64-bit slot)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big") >> 1


class EventIdIndex:
    """In-memory index of recent ids per team; rebuilt from the `event_ids` table after recovery."""

    def __init__(self, horizon_s: float, max_ids_per_team: int = 1_000_000) -> None:
        self.horizon_s = horizon_s
        self.max_ids_per_team = max_ids_per_team
        self._ids: dict[str, OrderedDict[int, float]] = {}

    def seen(self, team: str, hashed: int) -> bool:
        ids = self._ids.get(team)
        return ids is not None and hashed in ids

    def remember(self, team: str, hashed: int, ts: float) -> None:
        ids = self._ids.setdefault(team, OrderedDict())
        ids[hashed] = ts
        if len(ids) > self.max_ids_per_team:
            ids.popitem(last=False)

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
