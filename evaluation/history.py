"""`python -m evaluation.history`: does the worker's CPU per event grow with how much it has seen?

A worker drains a topic of N events already published (the same events as `make bench`: 200
keys over 50 teams). Five times a second the CPU time of its process (user + system, from /proc) and
the events it has applied (`spendwatch_events_total{result="accepted"}`, counted as each ledger step
applies them) are sampled. `GET /spend` was read at first, as a user would: its listing is cached
for a second and answers late while the worker is busy, so on a run of a few seconds a stretch was
one or two samples (one event a message, 100,000 events: 38 against 216 us, from 823 events over
1.3 s). Reported per load: CPU per event over an early stretch of the run (from the first event applied, so start-up
is left out, to 10% of the events) and over a late one (80% to 95%, before the last events wait
for the watermark), and their ratio: the issue "Speed" asks that the cost per event not grow
with history. A shorter early stretch (the first 1%) was tried: at 100 events a message it is
one or two bursts of applied rows, under a second, and read 10 us an event where every
3-second stretch of the same run read 27 to 80. The workers run as `make bench`'s do
(`THROUGHPUT_SETTINGS`): with the default 5 s before an empty topic counts as idle, nothing was
applied in a run's first seconds while the ingest agent read ahead, so the early stretch applied
rows whose reading had cost CPU before it began.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import orjson

from evaluation.bench import THROUGHPUT_SETTINGS, accepted, events, publish, start_worker, worker_env
from streams.tools.broker import EmbeddedBroker, free_port

#: (load, events per message, events)
LOADS = [("100 events a message", 100, 3_000_000), ("one event a message", 1, 1_000_000)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def cpu_per_event(broker: EmbeddedBroker, topic: str, expected: int) -> tuple[float, float]:
    """Microseconds of the worker's CPU per event early in the run and late in it."""
    port = free_port()
    process = start_worker(worker_env(broker, topic, port, **THROUGHPUT_SETTINGS))
    samples: list[tuple[int, float]] = []  # (events applied, CPU seconds)
    try:
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            count = int(accepted(port))
            if count:
                samples.append((count, cpu_seconds(process.pid)))
            if count >= expected:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the worker applied {accepted(port):.0f} of {expected} events")
    finally:
        process.terminate()
        process.wait(30)
    return stretch(samples, 0.0, 0.10 * expected), stretch(samples, 0.80 * expected, 0.95 * expected)


def stretch(samples: list[tuple[int, float]], low: float, high: float) -> float:
    """CPU microseconds per event between the first sample at or past `low` events and the first past `high`."""
    start = next(sample for sample in samples if sample[0] >= low)
    end = next(sample for sample in samples if sample[0] >= high and sample[0] > start[0])
    return (end[1] - start[1]) / (end[0] - start[0]) * 1e6


def messages(count: int, per_message: int, seed: int) -> list[bytes]:
    batch = events(count, seed)
    if per_message == 1:
        return [orjson.dumps(event) for event in batch]
    return [orjson.dumps(batch[i:i + per_message]) for i in range(0, count, per_message)]


def main() -> None:
    print(f"worker CPU per event against history (python -m evaluation.history), {time.strftime('%Y-%m-%d')}",
          flush=True)
    for label, per_message, count in LOADS:
        with EmbeddedBroker() as broker:
            broker.create_topics(["history"], partitions=4)
            asyncio.run(publish(broker.bootstrap, "history", messages(count, per_message, seed=count)))
            early, late = cpu_per_event(broker, "history", count)
        print(f"  {label}, {count:,} events: {early:.1f} us of CPU an event over the first 10%, {late:.1f} over "
              f"80-95%: {late / early:.2f}x (target <= 1.5x)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
