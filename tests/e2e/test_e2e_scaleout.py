"""End to end with two workers in one consumer group on the embedded broker (issue 5).

The reference for "the same totals and the same alerts as one worker" is what one worker
is shown to produce elsewhere: exact sums (test_e2e_ingest) and `spendwatch replay`'s
alerts, which equal the single worker's (test_e2e_detection).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import orjson
import pytest

from tests.conftest import wait_for
from tests.e2e.test_e2e_ingest import expected_totals, malformed_messages, metric, totals_match, usage_events
from tests.kafka_helpers import publish, read_all
from tests.spiky_traffic import WINDOW_S, many_teams_usage, recent_start
from tests.standins import StandIn
from tests.tools.test_replay import replay, write_jsonl

pytestmark = pytest.mark.e2e




def replayed_alerts(tmp_path: Path, usage: list[dict]) -> list[dict]:
    write_jsonl(tmp_path / "usage.jsonl", usage, per_line=50)
    alerts, _ = replay(tmp_path, "replayed", usage=tmp_path / "usage.jsonl")
    return alerts


def slack_env(standin: StandIn) -> dict[str, str]:
    return {"SPENDWATCH_WINDOW_SECONDS": str(WINDOW_S),
            "SPENDWATCH_SLACK_WEBHOOK_URL": f"{standin.url}/services/T0/B0/secret"}


def owned_partitions(worker) -> int:
    """How many partitions of the deltas topic (where the tables live) the worker owns now."""
    for line in worker.get("/metrics").text.splitlines():
        if line.startswith("spendwatch_assigned_partitions{") and "team-deltas" in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def test_two_workers_give_the_same_totals_and_alerts_as_one(broker, topics, make_worker, standin, tmp_path):
    usage = many_teams_usage(recent_start(12))
    expected_alerts = replayed_alerts(tmp_path, usage)
    assert len(expected_alerts) == 8  # a spike that fires and resolves for each of 4 teams
    first, second = make_worker(**slack_env(standin)), make_worker(**slack_env(standin))
    wait_for(lambda: owned_partitions(first) and owned_partitions(second), what="both workers to own partitions")

    publish(broker.bootstrap, topics.usage, [(0, orjson.dumps(usage[i:i + 50])) for i in range(0, len(usage), 50)])
    expected = expected_totals(usage)
    for worker in (first, second):  # either worker answers for every key
        wait_for(lambda worker=worker: totals_match(worker, expected), timeout=180,
                 what="exact totals from both workers")
    live = [orjson.loads(r.value) for r in read_all(broker.bootstrap, topics.alerts, expected=8)]
    assert sorted(a["alert_id"] for a in live) == sorted(a["alert_id"] for a in expected_alerts)
    wait_for(lambda: len(standin.of("slack")) >= 8, what="eight Slack messages")
    listed = first.get("/spend").json()["teams"]
    assert sorted(t["team"] for t in listed) == [f"team-{n}" for n in range(4)]
    assert len(first.get("/alerts").json()["alerts"]) == 8  # merged from both workers


def test_one_of_two_killed_mid_stream_the_other_takes_over(broker, topics, make_worker, standin, tmp_path):
    usage = many_teams_usage(recent_start(12))
    expected_alerts = replayed_alerts(tmp_path, usage)
    first, second = make_worker(**slack_env(standin)), make_worker(**slack_env(standin))
    wait_for(lambda: owned_partitions(first) and owned_partitions(second), what="both workers to own partitions")

    messages = [(0, orjson.dumps(usage[i:i + 50])) for i in range(0, len(usage), 50)]
    half = len(messages) // 2
    publish(broker.bootstrap, topics.usage, messages[:half])
    wait_for(lambda: second.get("/spend", local="1").json()["teams"], what="the second worker to count")
    second.kill()
    publish(broker.bootstrap, topics.usage, messages[half:])

    wait_for(lambda: owned_partitions(first) == 4, timeout=60, what="the survivor to take every partition")
    wait_for(lambda: totals_match(first, expected_totals(usage)), timeout=180, what="exact totals after takeover")
    wait_for(lambda: len(standin.of("slack")) >= len(expected_alerts), timeout=120, what="every alert in Slack")
    time.sleep(5)
    delivered = standin.of("slack")
    assert len(delivered) == len(expected_alerts)  # none lost, none repeated
    assert sorted(m["text"] for m in delivered) == sorted(set(m["text"] for m in delivered))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_ten_thousand_malformed_messages_memory_stays_bounded(broker, topics, make_worker):
    now = time.time()
    kinds = malformed_messages(now)
    worker = make_worker()
    warm = usage_events(2_000, seed=21)
    publish(broker.bootstrap, topics.usage, [(i % 4, orjson.dumps(e)) for i, e in enumerate(warm)])
    wait_for(lambda: totals_match(worker, expected_totals(warm)), what="warm-up events")
    before = rss_kb(worker.process.pid)

    valid = usage_events(10_000, seed=22)
    rng = random.Random(23)
    stream = [(rng.randrange(4), orjson.dumps(e)) for e in valid]
    for i in range(10_000):
        stream.insert(rng.randrange(len(stream) + 1), (rng.randrange(4), kinds[i % len(kinds)][1]))
    publish(broker.bootstrap, topics.usage, stream)
    wait_for(lambda: totals_match(worker, expected_totals(warm + valid)), timeout=180, what="every valid event")
    wait_for(lambda: metric(worker, "spendwatch_dead_letters_total") == 10_000, what="every bad one dead-lettered")
    assert len(read_all(broker.bootstrap, topics.dead_letter, expected=10_000)) == 10_000
    after = rss_kb(worker.process.pid)
    growth_mb = (after - before) / 1024
    print(f"worker RSS {before / 1024:.0f} MB -> {after / 1024:.0f} MB over 10,000 malformed + 10,000 valid")
    assert growth_mb < 64, f"RSS grew {growth_mb:.0f} MB"
    assert os.path.exists(f"/proc/{worker.process.pid}")  # still running


@pytest.mark.serial
def test_sigterm_stops_within_ten_seconds_with_offsets_committed(broker, topics, make_worker):
    events = usage_events(3_000, seed=31)
    worker = make_worker()
    publish(broker.bootstrap, topics.usage, [(i % 4, orjson.dumps(e)) for i, e in enumerate(events)])
    wait_for(lambda: totals_match(worker, expected_totals(events)), what="the events to be counted")
    time.sleep(2)  # let the periodic commit run once; SIGTERM must commit the rest anyway
    started = time.monotonic()
    worker.process.terminate()
    worker.process.wait(timeout=30)
    stopped_in = time.monotonic() - started
    assert stopped_in < 10, f"took {stopped_in:.1f}s to stop"

    again = make_worker()
    wait_for(lambda: totals_match(again, expected_totals(events)), what="the totals back from the changelog")
    time.sleep(3)
    # Nothing was re-delivered to count twice or to skip: the offsets were committed on the way out.
    assert metric(again, "spendwatch_events_total", result="replayed") == 0
    assert metric(again, "spendwatch_events_total", result="accepted") == 0
