"""The ledger stage without Kafka: any delivery order, and a crash after any write, end as replay does.

A stand-in ingest turns a workload into the deltas topic's messages (deltas and progress
reports, per deltas partition, as streams/worker/agents.py sends them), reading the input
partitions in a chosen order; `LedgerStage` consumes them as the ledger agent does. The
table is a dict that logs its writes, so a crash can be cut after any one of them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from streams.input.intake import RawMessage, kind_of_source, parts_by_team, take_in
from streams.settings import Settings
from streams.state.dedup import EventIdIndex
from streams.state.deltas import encode_deltas
from streams.state.judging import RuleBook, alert_from_verdict
from streams.state.ledger import WindowPolicy
from streams.state.store import LedgerStage, LedgerStore, encode_progress
from streams.state.watermarks import PROGRESS_KEY, ProgressTracker
from streams.tools.replay import Row, detect
from tests.spiky_traffic import WINDOW_S, many_teams_usage, runaway_run

KINDS = {"u": "usage", "g": "gpu", "r": "runs"}
PARTITIONS = {"u": 3, "g": 1, "r": 1}
DELTA_PARTITIONS = 2
NOW = 1_800_000_000.0


def settings() -> Settings:
    return Settings(_env_file=None, window_seconds=WINDOW_S)


class LoggedTable(dict):
    """A dict that records every write, so a crash can keep any prefix of them."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, bytes | None]] = []

    def __setitem__(self, key: str, value: bytes) -> None:
        self.log.append((key, value))
        super().__setitem__(key, value)

    def pop(self, key: str, *default: Any) -> Any:
        self.log.append((key, None))
        return super().pop(key, *default)


ALERT = "\x01alert"  # a log entry that is not a write: an alert published at that point


def prefix_of(log: list[tuple[str, bytes | None]], count: int) -> LoggedTable:
    table = LoggedTable()
    for key, value in log[:count]:
        if key == ALERT:
            continue
        if value is None:
            dict.pop(table, key, None)
        else:
            dict.__setitem__(table, key, value)
    return table


def workload() -> dict[str, list[bytes]]:
    """Input messages per source partition, each partition in event-time order."""
    start = NOW - 3600
    usage = many_teams_usage(start, teams=3)
    runs, samples = runaway_run(start)
    rng = random.Random(5)
    inputs: dict[str, list[bytes]] = {f"u:{p}": [] for p in range(PARTITIONS["u"])}
    for i in range(0, len(usage), 40):
        inputs[f"u:{rng.randrange(PARTITIONS['u'])}"].append(orjson.dumps(usage[i:i + 40]))
    inputs["g:0"] = [orjson.dumps(sample) for sample in samples]
    inputs["r:0"] = [orjson.dumps(run) for run in runs]
    return inputs


def schedule(inputs: dict[str, list[bytes]], order: list[str], batch: int, round_robin: bool) -> list[str]:
    """Which source partition each micro-batch reads: one after another, or in turns."""
    turns = {source: -(-len(inputs[source]) // batch) for source in order}
    if not round_robin:
        return [source for source in order for _ in range(turns[source])]
    out = []
    while any(turns.values()):
        for source in order:
            if turns[source]:
                out.append(source)
                turns[source] -= 1
    return out


def deltas_log(inputs: dict[str, list[bytes]], reads: list[str], batch: int) -> list[list[tuple[bytes, bytes]]]:
    """The deltas topic as an ingest reading `batch` messages of each source in `reads` writes it."""
    logs: list[list[tuple[bytes, bytes]]] = [[] for _ in range(DELTA_PARTITIONS)]
    tracker = ProgressTracker(idle_after_s=0.0, clock=lambda: 0.0)
    read = {source: 0 for source in inputs}
    owned = {source: (0, len(messages)) for source, messages in inputs.items()}  # (resumed at, high watermark)
    for source in reads:
        topic, partition = source.split(":")
        values = inputs[source][read[source]:read[source] + batch]
        chunk = [RawMessage(topic, int(partition), read[source] + i, value) for i, value in enumerate(values)]
        intake = take_in(chunk, KINDS, NOW, 300, settings().gpu_prices)
        for team, parts in parts_by_team(intake).items():
            for value in encode_deltas(parts, 20_000):
                logs[hash_team(team)].append((team.encode(), value))
        read[source] += len(chunk)
        for src, (last, newest) in intake.sources.items():
            tracker.forwarded(src, last, newest)
        progress = encode_progress(PARTITIONS, tracker.report(owned))
        for log in logs:
            log.append((PROGRESS_KEY, progress))
    return logs


def hash_team(team: str) -> int:
    return sum(team.encode()) % DELTA_PARTITIONS


def new_stage(table: dict) -> tuple[LedgerStage, list[dict[str, Any]]]:
    config = settings()
    store = LedgerStore(table, RuleBook(config), WindowPolicy.from_settings(config),
                        EventIdIndex(config.dedup_horizon_seconds),
                        lambda source: kind_of_source(source, {t: k for t, k in KINDS.items()}),
                        max_value_bytes=4_000, horizon_s=config.dedup_horizon_seconds)
    return LedgerStage(store, config.max_out_of_order_seconds), []


def consume(stage: LedgerStage, alerts: list[dict[str, Any]], logs: list[list[tuple[bytes, bytes]]],
            bundle: int = 1) -> None:
    """Each deltas partition in order, interleaved round-robin, `bundle` messages at a time, as the agent reads them."""
    positions = [0] * len(logs)
    while any(p < len(log) for p, log in zip(positions, logs, strict=False)):
        for partition, log in enumerate(logs):
            if positions[partition] < len(log):
                run = log[positions[partition]:positions[partition] + bundle]
                positions[partition] += len(run)
                for step in stage.steps(partition, run):
                    for verdict in step.verdicts:
                        alerts.append(alert_from_verdict(verdict, "http://x"))
                        if isinstance(stage.store.table, LoggedTable):
                            stage.store.table.log.append((ALERT, alerts[-1]["alert_id"].encode()))
                    stage.store.commit(step)


def figures(stage: LedgerStage) -> dict[str, Any]:
    return {team: {"accounts": {k: (v["total"][:3], round(v["total"][3], 9), v["windows"])
                                for k, v in ledger["accounts"].items()},
                   "runs": {r: round(run["cost_usd"], 9) for r, run in ledger["runs"].items()}}
            for team, ledger in stage.store.teams()}


def replay_of(inputs: dict[str, list[bytes]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rows: list[Row] = []
    kind_order = {"usage": 2, "gpu": 1, "runs": 0}
    for source, messages in inputs.items():
        topic, partition = source.split(":")
        intake = take_in([RawMessage(topic, int(partition), i, v) for i, v in enumerate(messages)],
                         KINDS, NOW, 300, settings().gpu_prices)
        for (team, _), delta in intake.deltas.items():
            rows.extend((0.0, kind_order[KINDS[topic]], 0, team, row) for row in delta)
    ledgers: dict[str, Any] = {}
    alerts = list(detect(rows, settings(), ledgers=ledgers))
    wanted = {team: {"accounts": {k: (v["total"][:3], round(v["total"][3], 9), v["windows"])
                                  for k, v in ledger["accounts"].items()},
                     "runs": {r: round(run["cost_usd"], 9) for r, run in ledger["runs"].items()}}
              for team, ledger in ledgers.items()}
    return wanted, alerts


def identities(alerts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted({(a["alert_id"], a["status"], a["observed"], a["baseline"]) for a in alerts})


READS = {
    "one partition after another, usage first": (["u:2", "u:1", "u:0", "g:0", "r:0"], False),
    "one partition after another, runs first": (["r:0", "g:0", "u:0", "u:1", "u:2"], False),
    "in turns": (["u:0", "g:0", "u:1", "r:0", "u:2"], True),
}


@pytest.mark.parametrize("bundle", [1, 3, 1_000_000])
@pytest.mark.parametrize("reads", READS)
def test_any_read_order_gives_replays_figures_and_alerts(reads, bundle):
    """Whether the agent takes the deltas one at a time, a few, or all at once."""
    inputs = workload()
    wanted, replayed = replay_of(inputs)
    assert len(replayed) >= 7  # a spike that fires and resolves for each of 3 teams, and the runaway run
    stage, alerts = new_stage({})
    order, round_robin = READS[reads]
    consume(stage, alerts, deltas_log(inputs, schedule(inputs, order, 7, round_robin), batch=7), bundle)
    assert figures(stage) == wanted
    assert identities(alerts) == identities(replayed)


def crash_points(log_length: int) -> Iterator[int]:
    rng = random.Random(11)
    return iter(sorted(rng.sample(range(1, log_length), 25)))


@pytest.mark.parametrize(("reads", "bundle"), [("in turns", 1), ("one partition after another, usage first", 1),
                                               ("in turns", 4)])
def test_a_crash_after_any_write_ends_as_if_nothing_happened(reads, bundle):
    inputs = workload()
    order, round_robin = READS[reads]
    logs = deltas_log(inputs, schedule(inputs, order, 9, round_robin), batch=9)
    table = LoggedTable()
    stage, alerts = new_stage(table)
    consume(stage, alerts, logs, bundle)
    wanted = figures(stage)
    for cut in crash_points(len(table.log)):
        survived = prefix_of(table.log, cut)
        published = {value.decode() for key, value in table.log[:cut] if key == ALERT}
        again, again_alerts = new_stage(survived)
        again.recover(hash_team)
        consume(again, again_alerts, logs, bundle)  # Kafka re-delivers from the last commit: here, from the very start
        assert figures(again) == wanted, f"crash after write {cut}"
        # Each alert was published before the cut, or is raised again after it; none is new.
        assert published | {a["alert_id"] for a in again_alerts} == {a["alert_id"] for a in alerts}
        assert set(identities(again_alerts)) <= set(identities(alerts))


def test_a_partition_owned_again_after_another_worker_moved_it_on_can_go_idle():
    tracker = ProgressTracker(idle_after_s=0.0, clock=lambda: 0.0)
    tracker.forwarded("u:0", 10, 100.0)  # this worker read up to offset 10 once...
    # ...then another worker read it to 500 and committed; it is ours again, with nothing new.
    assert tracker.report({"u:0": (501, 501)}) == {"u:0": [100.0, True]}
    assert tracker.report({"u:0": (501, 600)}) == {"u:0": [100.0, False]}  # new data: not idle


def test_a_partition_turning_idle_is_due_for_a_report_until_one_says_so():
    now = [0.0]
    tracker = ProgressTracker(idle_after_s=5.0, clock=lambda: now[0])
    tracker.forwarded("u:0", 9, 100.0)
    assert tracker.report({"u:0": (0, 10)}) == {"u:0": [100.0, False]}  # read to its end: quiet from now
    now[0] = 4.9
    assert not tracker.idle_due()
    now[0] = 5.0
    assert tracker.idle_due()  # the ingest agent reports now, not at the next second's report
    assert tracker.report({"u:0": (0, 10)}) == {"u:0": [100.0, True]}
    assert not tracker.idle_due()  # said once is enough
    tracker.forwarded("u:0", 10, 101.0)  # new data: quiet starts again
    assert tracker.report({"u:0": (0, 11)}) == {"u:0": [101.0, False]}
    now[0] = 9.9
    assert not tracker.idle_due()
    now[0] = 10.0
    assert tracker.idle_due()


def test_id_chunks_behind_the_horizon_are_deleted_and_recovery_still_counts_a_repeat_once():
    """Each step's ids are a chunk; chunks wholly behind the horizon go, oldest first, step by step."""
    from streams.input.rows import id_hash
    from streams.state.store import SEP

    horizon = 100.0
    config = settings()
    table: dict[str, bytes] = {}

    def new_store() -> LedgerStore:
        return LedgerStore(table, RuleBook(config), WindowPolicy.from_settings(config), EventIdIndex(horizon),
                           lambda source: "usage", max_value_bytes=4_000, horizon_s=horizon)

    def usage(position: int, ts: float, event_id: str) -> tuple:
        return (position, "chat", ts, 10, 2, 0.001, 0, id_hash(event_id), "gpt-4o", "", "", "", "")

    store = new_store()
    for n in range(1, 601):  # one event a second for 10 minutes, one step each
        store.commit(store.step("search", 0, NOW + n, [("u:0", [usage(n, NOW + n, f"e{n}")])]))
    chunks = sorted(int(key.split(SEP)[2]) for key in table if key.startswith(f"search{SEP}i{SEP}"))
    assert chunks == list(range(500, 601))  # the last 100 s (and the one on the cutoff): the rest deleted
    assert [op for op, _ in store.id_chunks["search"]] == chunks

    store = new_store()  # after a restart the index comes back from the chunks
    store.recover(lambda team: 0)
    step = store.step("search", 0, NOW + 601, [("u:0", [usage(601, NOW + 601, "e550"), usage(602, NOW + 601, "e1")])])
    assert step.applied.duplicates == 1  # e550 is inside the horizon; e1 left it long ago and counts again
