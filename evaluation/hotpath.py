"""Where each event's microseconds go in the worker's own code, without Kafka or Faust.

`python -m evaluation.hotpath [EVENTS]` runs the pure stages the worker and replay run per
event, on `make bench`'s data, best of three: `take_in` (decode, validate, price, group
into deltas), the ledger stage (apply each delta with windows, de-duplication and
detection, and pack the ledger as the table does), and `spendwatch replay`. A profiling
aid for docs/benchmarks.md: the worker's figure in `make bench` is this plus Faust,
aiokafka and the broker.
"""

from __future__ import annotations

import io
import sys
import time
from typing import Callable

import orjson

from evaluation.bench import events
from streams import gc_tuning
from streams.dedup import EventIdIndex
from streams.delta_codec import decode_delta, encode_delta
from streams.detection import RuleBook, TeamWatch
from streams.intake import USAGE, Intake, RawMessage, parts_by_team, take_in
from streams.ledger import WindowPolicy, apply_usage, new_ledger
from streams.replay import replay
from streams.settings import Settings


def best_of(runs: int, stage: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        stage()
        best = min(best, time.perf_counter() - started)
    return best


def main(count: int = 300_000) -> None:
    settings = Settings(_env_file=None)
    batched = events(count, seed=1)
    payloads = [orjson.dumps(batched[i:i + 100]) for i in range(0, count, 100)]
    messages = [RawMessage("usage", i % 4, i // 4, payload) for i, payload in enumerate(payloads)]
    policy = WindowPolicy.from_settings(settings)
    intakes: list[Intake] = []

    def ingest() -> None:
        intakes.clear()
        for i in range(0, len(messages), 500):  # micro-batches as the ingest agent takes them
            intakes.append(take_in(messages[i:i + 500], {"usage": USAGE}, time.time(),
                                   settings.future_tolerance_seconds, settings.gpu_prices))

    ingest()
    deltas = [(team, encode_delta(parts))  # one per team per micro-batch, as agents.forward sends them
              for intake in intakes for team, parts in parts_by_team(intake, {"usage": USAGE}).items()]

    def ledger() -> None:
        rules, ids, tables = RuleBook(settings), EventIdIndex(settings.dedup_horizon_seconds), {}
        for team, value in deltas:
            state = orjson.loads(tables[team]) if team in tables else new_ledger()
            watch = TeamWatch(state, team, rules, policy)
            for source, rows in decode_delta(value):
                apply_usage(state, team, source, rows, policy, ids, on_row=watch.on_usage)
            watch.close()
            tables[team] = orjson.dumps(state)

    def replayed() -> None:
        replay({"usage": io.BytesIO(b"\n".join(payloads))}, io.BytesIO(), settings)

    gc_tuning.tune_for_worker()  # as the worker runs
    print(f"{count:,} events, 100 per message, {len(deltas):,} deltas")
    for name, stage in (("take_in", ingest), ("ledger", ledger), ("replay", replayed)):
        seconds = best_of(3, stage)
        print(f"  {name:8s} {count / seconds:>10,.0f} events/s  {seconds / count * 1e6:5.2f} us/event")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300_000)
