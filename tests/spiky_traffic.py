"""A small workload with one flash spike and one runaway run, as JSON events (for replay and the broker)."""

from __future__ import annotations

import random
import time
from typing import Any

WINDOW_S = 10  # short windows keep the end-to-end tests short: 30 windows of warm-up = 5 minutes
LOOPING_USER = "loop-agent"  # the spike's extra calls: an agent stuck in a loop


def spiky_usage(start: float, minutes: int = 12, spike_at_s: float = 480, spike_for_s: float = 60,
                seed: int = 1, team: str = "search") -> list[dict[str, Any]]:
    """Two endpoints at about 5 calls/s; `chat-api` goes 15x for a minute, the extra calls all `LOOPING_USER`'s."""
    rng = random.Random(seed)
    who = random.Random(seed + 99)  # draws of their own: the calls are the same with or without attribution
    events = []
    for second in range(minutes * 60):
        for endpoint in ("chat-api", "rerank"):
            rate = 5.0 * (15 if endpoint == "chat-api" and spike_at_s <= second < spike_at_s + spike_for_s else 1)
            for _ in range(int(rate) + (rng.random() < rate - int(rate))):
                looping = rate > 5 and who.random() < 14 / 15
                events.append({"ts": round(start + second + rng.random(), 3), "team": team,
                               "endpoint": endpoint, "model": "gpt-4o", "prompt_tokens": rng.randint(800, 1600),
                               "completion_tokens": rng.randint(100, 300),
                               "event_id": f"{team}-{seed}-{len(events)}",
                               "user": LOOPING_USER if looping else who.choice(("ana", "ben", "chen")),
                               "service": who.choice(("web", "batch"))})
    events.sort(key=lambda e: e["ts"])
    return events


def runaway_run(start: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A run planned at 4 GPUs for an hour ($16) that doubles to 8 GPUs after 5 minutes."""
    runs = [{"ts": start, "team": "research", "run_id": "ft-1", "status": "started",
             "estimated_cost_usd": 16.0, "gpus": 4, "gpu_type": "H100", "expected_hours": 1.0}]
    samples = []
    for minute in range(10):
        for gpu in range(4 if minute < 5 else 8):
            samples.append({"ts": start + 60 * minute + 1, "team": "research", "run_id": "ft-1",
                            "gpu_id": f"g{gpu}", "gpu_type": "H100", "utilization": 95, "interval_s": 60})
    return runs, samples


def recent_start(minutes: int) -> float:
    """A start time such that the whole workload lies in the recent past."""
    return float(int(time.time()) - minutes * 60 - 120)


def many_teams_usage(start: float, teams: int = 4) -> list[dict[str, Any]]:
    """The spiky workload for several teams at once (spikes at different times), in event-time order."""
    events = []
    for n in range(teams):
        events += spiky_usage(start, seed=10 + n, team=f"team-{n}", spike_at_s=420 + 40 * n)
    events.sort(key=lambda e: (e["ts"], e["event_id"]))
    return events
