"""Ten hours of usage, GPU samples and training runs, as a backlog spread over input partitions.

13 keys: 12 (team, endpoint) usage keys with a daily shape and four injected 15x spikes, and
one training run that doubles its GPUs. Each message goes to a partition at random, and
each partition stays in event-time order, as a producer writing in time order leaves it.
`expected` computes what any correct reading must show, from the events alone, by
`spendwatch replay`'s own code.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.settings import Settings
from streams.tools.replay import ReplaySummary, detect, read_rows

KEYS = [("search", "chat-api", "gpt-4o", 0.6), ("search", "rerank", "gpt-4o-mini", 0.8),
        ("search", "embed", "text-embedding-3-small", 0.4), ("support", "assistant", "gpt-4o", 0.3),
        ("support", "triage", "gpt-4o-mini", 0.2), ("growth", "email-writer", "gpt-4o-mini", 0.25),
        ("growth", "ads", "gpt-4o", 0.15), ("research", "agent", "gpt-4o", 0.1),
        ("data", "etl-summarize", "gpt-4o-mini", 0.3), ("data", "classify", "gpt-4o-mini", 0.2),
        ("data", "extract", "gpt-4o", 0.1), ("ops", "oncall-bot", "gpt-4o-mini", 0.05)]
SPIKES = [("search", "chat-api", 3.0), ("growth", "ads", 5.5), ("data", "extract", 7.0), ("support", "triage", 8.5)]
SPIKE_FACTOR, SPIKE_MINUTES = 15, 6
HOURS = 10


@dataclass
class Backlog:
    usage: list[dict[str, Any]] = field(default_factory=list)
    gpu: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.usage) + len(self.gpu) + len(self.runs)

    def messages(self, seed: int, partitions: int = 4) -> dict[str, list[tuple[int, bytes]]]:
        """Per kind, (partition, message) in publishing order: arrays of 1-30 events, each to a random partition."""
        rng = random.Random(seed)
        out: dict[str, list[tuple[int, bytes]]] = {}
        for kind, events in (("usage", self.usage), ("gpu", self.gpu), ("runs", self.runs)):
            messages, i = [], 0
            while i < len(events):
                size = 1 if kind == "runs" or rng.random() < 0.3 else rng.randint(2, 30)
                chunk = events[i:i + size]
                messages.append((rng.randrange(partitions), orjson.dumps(chunk[0] if size == 1 else chunk)))
                i += size
            out[kind] = messages
        return out

    def jsonl(self, kind: str) -> list[bytes]:
        return [orjson.dumps(event) for event in getattr(self, kind)]


def generate(seed: int = 3, hours: int = HOURS, end: float | None = None) -> Backlog:
    rng = random.Random(seed)
    end = float(int(end if end is not None else time.time() - 240))
    start = end - hours * 3600
    backlog = Backlog()
    spikes = {(team, endpoint): start + at * 3600 for team, endpoint, at in SPIKES}
    for team, endpoint, model, rate in KEYS:
        t = start + rng.random()
        spike_at = spikes.get((team, endpoint))
        while t < end:
            hour = ((t % 86400) / 3600 - 14) / 24 * 2 * math.pi
            current = 1.45 * rate * (1 + 0.5 * math.cos(hour))
            if spike_at is not None and spike_at <= t < spike_at + SPIKE_MINUTES * 60:
                current *= SPIKE_FACTOR
            t += rng.expovariate(current)
            if t >= end:
                break
            backlog.usage.append({"ts": round(t, 3), "team": team, "endpoint": endpoint, "model": model,
                                  "prompt_tokens": rng.randint(300, 3000), "completion_tokens": rng.randint(20, 600),
                                  "event_id": f"{team}-{endpoint}-{len(backlog.usage)}"})
    backlog.usage.sort(key=lambda e: e["ts"])
    run_start = start + 3600
    backlog.runs.append({"ts": run_start, "team": "research", "run_id": "ft-backlog", "status": "started",
                         "estimated_cost_usd": 120.0, "gpus": 8, "gpu_type": "H100", "expected_hours": 3.0})
    for minute in range(0, 6 * 60):
        ts = run_start + 60 * minute + 1
        for gpu in range(8 if minute < 90 else 16):
            backlog.gpu.append({"ts": ts, "team": "research", "run_id": "ft-backlog", "gpu_id": f"g{gpu}",
                                "gpu_type": "H100", "utilization": 95, "interval_s": 60})
    backlog.runs.append({"ts": run_start + 6 * 3600 + 30, "team": "research", "run_id": "ft-backlog",
                         "status": "finished"})
    return backlog


def expected(backlog: Backlog, settings: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(each team's final ledger, every alert) as `spendwatch replay` computes them from the events."""
    summary = ReplaySummary()
    rows = []
    for kind in ("usage", "gpu", "runs"):
        rows.extend(read_rows(backlog.jsonl(kind), kind, settings, summary, now=time.time()))
    ledgers: dict[str, Any] = {}
    alerts = list(detect(rows, settings, ledgers=ledgers))
    return ledgers, alerts
