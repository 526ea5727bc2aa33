"""`spendwatch replay`: the live detectors over JSONL files, offline, in event-time order.

Each line is what a Kafka message would hold (an event or an array of events). Events
are validated and priced exactly as the worker does, sorted by event time (ties keep
file order), and fed through the same `TeamWatch` as the worker, so replay and the live
worker raise the same alerts for the same events in the same order.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, BinaryIO, Iterable, Iterator

import orjson

from streams import gc_tuning
from streams.dedup import EventIdIndex
from streams.detection import RuleBook, TeamWatch, alert_from_verdict
from streams.intake import GPU, RUNS, USAGE, Intake, decode_events, gpu_row, run_row, usage_row
from streams.ledger import WindowPolicy, apply_gpu, apply_runs, new_ledger
from streams.settings import Settings

KIND_ORDER = {RUNS: 0, GPU: 1, USAGE: 2}  # at equal times a run starts before its samples count


@dataclass
class ReplaySummary:
    events: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        total = sum(self.events.values())
        rate = total / self.seconds if self.seconds else 0.0
        out = [f"replayed {total} events in {self.seconds:.2f}s ({rate:,.0f} events/s): "
               + ", ".join(f"{kind} {n}" for kind, n in sorted(self.events.items()))]
        if self.rejected:
            out.append("rejected: " + ", ".join(f"{reason} {n}" for reason, n in sorted(self.rejected.items())))
        if self.duplicates:
            out.append(f"repeated event_id, counted once: {self.duplicates}")
        out.append("alerts: " + (", ".join(f"{k} {n}" for k, n in sorted(self.alerts.items())) or "none"))
        return out


def read_rows(lines: Iterable[bytes], kind: str, settings: Settings, summary: ReplaySummary,
              now: float) -> list[tuple[float, int, int, str, list[Any]]]:
    """(ts, kind order, sequence, team, row) for every valid event in the lines."""
    rows = []
    intake = Intake()
    for seq, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        events, rejections = decode_events(kind, line, now, settings.future_tolerance_seconds)
        for rejection in rejections:
            summary.rejected[rejection.reason] += 1
        for event in events:
            if kind == USAGE:
                row = usage_row(seq, event, intake)
            elif kind == GPU:
                row = gpu_row(seq, event, settings.gpu_prices)
            else:
                row = run_row(seq, event)
            rows.append((event.ts, KIND_ORDER[kind], seq, event.team, row))
        summary.events[kind] += len(events)
    return rows


def replay(inputs: dict[str, BinaryIO], output: BinaryIO, settings: Settings,
           now: float | None = None) -> ReplaySummary:
    """Run the detectors over `inputs` ({"usage"|"gpu"|"runs": file}) and write alerts as JSONL."""
    started = time.perf_counter()
    summary = ReplaySummary()
    now = time.time() if now is None else now
    rows: list[Row] = []
    with gc_tuning.paused():  # every row lives until the end: collections would only walk them
        for kind, stream in inputs.items():
            rows.extend(read_rows(stream, kind, settings, summary, now))
        rows.sort(key=itemgetter(0, 1, 2))

        for alert in detect(rows, settings, summary):
            output.write(orjson.dumps(alert) + b"\n")
            summary.alerts[f"{alert['kind']}/{alert['status']}"] += 1
    summary.seconds = time.perf_counter() - started
    return summary


Row = tuple[float, int, int, str, list[Any]]


def detect(rows: list[Row], settings: Settings, summary: ReplaySummary | None = None) -> Iterator[dict[str, Any]]:
    """Alerts from rows already in event-time order, through the worker's own TeamWatch."""
    policy = WindowPolicy.from_settings(settings)
    rules = RuleBook(settings)
    ids = EventIdIndex(settings.dedup_horizon_seconds)
    ledgers: dict[str, dict[str, Any]] = {}
    watches: dict[str, TeamWatch] = {}
    for sequence, (_ts, kind_order, _seq, team, row) in enumerate(rows):
        watch = watches.get(team)
        if watch is None:
            ledgers[team] = new_ledger()
            watch = watches[team] = TeamWatch(ledgers[team], team, rules, policy)
        row[0] = sequence  # one ordered source: every row is fresh
        if kind_order == KIND_ORDER[USAGE]:
            hashed = row[7]
            if hashed:
                if ids.seen(team, hashed):
                    if summary is not None:
                        summary.duplicates += 1
                    continue
                ids.remember(team, hashed, row[2])
            watch.on_usage(row)
        elif kind_order == KIND_ORDER[GPU]:
            apply_gpu(ledgers[team], "replay", [row], policy, on_row=watch.on_run)
        else:
            apply_runs(ledgers[team], "replay", [row], on_row=watch.on_run)
        if watch.verdicts:
            for verdict in watch.verdicts:
                yield alert_from_verdict(verdict, settings.base_url)
            watch.verdicts.clear()
