"""`python -m evaluation.history`: does the worker's CPU per event grow with how much it has seen?

The issue "Speed" asks that CPU per event over 3,000,000 events be within 1.5x of that over
30,000. Each run starts a worker on an empty topic, waits until it owns the topic's partitions,
then publishes N of `make bench`'s events (200 keys over 50 teams, an hour of event time) and
samples the worker process's CPU time (user + system, from /proc) and the events it has applied
(`spendwatch_events_total{result="accepted"}`, counted as each ledger step applies them) five
times a second until all N are applied. CPU per event is the CPU from just before publishing to
the last event applied, over N: start-up and the group join are left out, which a run over 30,000
events (under a second of work) could not afford otherwise, and the same holds for both sizes.
Within the long run it also gives CPU per event over its first 10% and over 80-95%.

Ids are kept for `HORIZON_S` of event time, not the default day: with a day, the hour of events
would never leave the de-duplication index, and forgetting them is part of a long run's steady
state (forgetting from the front of a dict was quadratic, streams/state/dedup.py).

The workers run as `make bench`'s do (`THROUGHPUT_SETTINGS`). A worker publisher-bound (one event
a message: the publisher sends about as fast as the worker drains) takes smaller bundles at a
time, which costs more per event at both sizes alike.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from evaluation.bench import (
    THROUGHPUT_SETTINGS,
    accepted,
    events,
    metric_value,
    metrics_text,
    publish,
    start_worker,
    worker_env,
)
from streams.tools.broker import EmbeddedBroker, free_port

HORIZON_S = 900
TOPIC = "history"
PARTITIONS = 4
#: (load, events per message, the short run's events, the long run's events)
LOADS = [("100 events a message", 100, 30_000, 3_000_000), ("one event a message", 1, 30_000, 1_000_000)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@dataclass(frozen=True)
class Run:
    events: int
    samples: list[tuple[int, float]]  # (events applied, CPU seconds since just before publishing)

    @property
    def cpu_per_event_us(self) -> float:
        return self.samples[-1][1] / self.events * 1e6

    def stretch_us(self, low: float, high: float) -> float:
        """CPU microseconds per event from the first sample at or past `low` of the events to the first past `high`."""
        start = next(sample for sample in self.samples if sample[0] >= low * self.events)
        end = next(sample for sample in self.samples if sample[0] >= high * self.events and sample[0] > start[0])
        return (end[1] - start[1]) / (end[0] - start[0]) * 1e6


def messages(count: int, per_message: int, seed: int) -> list[bytes]:
    batch = events(count, seed)
    if per_message == 1:
        return [orjson.dumps(event) for event in batch]
    return [orjson.dumps(batch[i:i + per_message]) for i in range(0, count, per_message)]


def owns_partitions(port: int) -> bool:
    return metric_value(metrics_text(port), "spendwatch_assigned_partitions", f'topic="{TOPIC}"') >= PARTITIONS


def measure(count: int, per_message: int) -> Run:
    """One worker, on a fresh broker, applying `count` events published once it is ready."""
    values = messages(count, per_message, seed=count)
    with EmbeddedBroker() as broker:
        broker.create_topics([TOPIC], partitions=PARTITIONS)
        port = free_port()
        process = start_worker(worker_env(broker, TOPIC, port, SPENDWATCH_DEDUP_HORIZON_SECONDS=str(HORIZON_S),
                                          **THROUGHPUT_SETTINGS))
        publisher: threading.Thread | None = None
        try:
            deadline = time.monotonic() + 120
            while not owns_partitions(port):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the worker did not take the topic's partitions within 120 s")
                time.sleep(0.2)
            time.sleep(2)  # the rest of start-up: tables recovered, timers started
            base = cpu_seconds(process.pid)
            # Published from a thread, so the samples cover the events the worker applies meanwhile.
            publisher = threading.Thread(target=asyncio.run, args=(publish(broker.bootstrap, TOPIC, values),))
            publisher.start()
            samples: list[tuple[int, float]] = []
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                applied = int(accepted(port))
                samples.append((applied, cpu_seconds(process.pid) - base))
                if applied >= count:
                    return Run(count, samples)
                time.sleep(0.2)
            raise RuntimeError(f"the worker applied {accepted(port):.0f} of {count} events")
        finally:
            if publisher is not None:
                publisher.join()
            process.terminate()
            process.wait(30)


def growth(per_message: int, short: int, long: int) -> tuple[Run, Run]:
    return measure(short, per_message), measure(long, per_message)


def main() -> None:
    print(f"worker CPU per event against history (python -m evaluation.history), {time.strftime('%Y-%m-%d')}",
          flush=True)
    for label, per_message, short, long in LOADS:
        small, big = growth(per_message, short, long)
        print(f"  {label}: {small.cpu_per_event_us:.1f} us of CPU an event over {short:,} events, "
              f"{big.cpu_per_event_us:.1f} over {long:,}: {big.cpu_per_event_us / small.cpu_per_event_us:.2f}x "
              f"(target <= 1.5x); within the long run {big.stretch_us(0.0, 0.10):.1f} over the first 10%, "
              f"{big.stretch_us(0.80, 0.95):.1f} over 80-95%", flush=True)


if __name__ == "__main__":
    sys.exit(main())
