"""Where each event's microseconds go in the worker's own code, without Kafka or Faust.

`python -m evaluation.hotpath [EVENTS]` runs the pure stages the worker and replay run per
event, best of three, on two workloads: `make bench`'s (200 keys, an hour: sparse per key) and
issue 38's busy keys (evaluation/busy_keys.py: 16 keys at about 170 calls a minute, a surge and
a model switch among them), where a call's detection work is the largest. The stages: `take_in`
(decode, validate, price, group into deltas), the ledger stage (take each delta in, release rows
at each progress report, apply them with windows, de-duplication and detection, and write the
records as the table does), and `spendwatch replay`. A profiling aid for docs/benchmarks.md: the
worker's figure in `make bench` is this plus Faust, aiokafka and the broker.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable

import orjson

from evaluation.bench import events
from evaluation.busy_keys import busy_events
from streams import gc_tuning
from streams.input.intake import Intake, RawMessage, parts_by_team, take_in
from streams.input.kinds import USAGE
from streams.settings import Settings
from streams.state.dedup import EventIdIndex
from streams.state.deltas import encode_deltas
from streams.state.judging import RuleBook
from streams.state.ledger import WindowPolicy
from streams.state.store import LedgerStage, LedgerStore, encode_progress
from streams.state.watermarks import PROGRESS_KEY
from streams.tools.replay import replay

BUNDLE = 100  # deltas messages taken as one run (the live worker takes what each fetch brings)


def best_of(runs: int, stage: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        stage()
        best = min(best, time.perf_counter() - started)
    return best


WORKLOADS = {"sparse": events, "busy": busy_events}


def stage_timings(count: int = 300_000, verbose: bool = False, workload: str = "sparse") -> dict[str, float]:
    """Microseconds per event of each stage on one of `WORKLOADS`, best of three."""
    settings = Settings(_env_file=None)
    batched = WORKLOADS[workload](count, seed=1)
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
    deltas: list[tuple[bytes, bytes]] = []  # the deltas topic as agents.forward and send_progress write it
    newest: dict[str, list] = {}
    for intake in intakes:
        for team, parts in parts_by_team(intake).items():
            deltas.extend((team.encode(), value) for value in encode_deltas(parts, settings.max_message_bytes))
        for source, (_, ts) in intake.sources.items():
            newest[source] = [ts, False]
        deltas.append((PROGRESS_KEY, encode_progress({"usage": 4}, dict(newest))))

    def ledger() -> None:
        store = LedgerStore({}, RuleBook(settings), policy, EventIdIndex(settings.dedup_horizon_seconds),
                            lambda source: USAGE, settings.max_message_bytes, settings.dedup_horizon_seconds)
        stage = LedgerStage(store, settings.max_out_of_order_seconds)
        for start in range(0, len(deltas), BUNDLE):
            for step in stage.steps(0, deltas[start:start + BUNDLE]):
                store.commit(step)

    def replayed() -> None:
        replay({"usage": io.BytesIO(b"\n".join(payloads))}, io.BytesIO(), settings)

    gc_tuning.tune_for_worker()  # as the worker runs
    if verbose:
        print(f"{workload} keys: {count:,} events, 100 per message, {len(deltas):,} deltas")
    timings = {}
    for name, stage in (("take_in", ingest), ("ledger", ledger), ("replay", replayed)):
        seconds = best_of(3, stage)
        timings[name] = seconds / count * 1e6
        if verbose:
            print(f"  {name:8s} {count / seconds:>10,.0f} events/s  {timings[name]:5.2f} us/event")
    return timings


def compared(count: int = 300_000, verbose: bool = False) -> dict[str, dict[str, float]]:
    """Both workloads' stage timings, and each stage's busy-to-sparse ratio (issue 38: within 1.5x)."""
    timings = {workload: stage_timings(count, verbose, workload) for workload in WORKLOADS}
    if verbose:
        ratios = ", ".join(f"{name} {timings['busy'][name] / timings['sparse'][name]:.2f}x"
                           for name in timings["sparse"])
        print(f"busy keys against sparse, per event: {ratios}")
    return timings


if __name__ == "__main__":
    compared(int(sys.argv[1]) if len(sys.argv) > 1 else 300_000, verbose=True)
