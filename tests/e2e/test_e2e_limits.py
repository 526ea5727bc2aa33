"""Nothing we produce goes over the message limit, whatever the input (the probes of issue "Exact").

Before: a 200,000-event backlog in arrays of 100 crashed ingest twice (deltas of 1.2 and 1.6 MB);
one array of 50,000 events counted 0; a 5 MB garbage message made a dead letter too large to
send and lost the good events of its batch; a team with 20,000 endpoints grew a ledger record
over 1 MB and the worker exited. Each probe now ends with exact totals and a live worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import make_usage, wait_for
from tests.e2e.test_e2e_ingest import expected_totals, metric, totals_match
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.e2e


def publish_large(bootstrap: str, topic: str, messages: list[tuple[int, bytes]]) -> None:
    """Like a producer configured for big messages (the broker takes them; our own limit is what is tested)."""

    async def send_all() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=16 * 2**20)
        await producer.start()
        try:
            for partition, value in messages:
                await producer.send(topic, value, partition=partition)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(send_all())


def events(count: int, seed: int, teams: int = 4, endpoints: int = 5) -> list[dict]:
    rng = random.Random(seed)
    now = time.time()
    return [make_usage(ts=now - 3000 + 2900 * i / count, team=f"team-{rng.randrange(teams)}",
                       endpoint=f"endpoint-{rng.randrange(endpoints)}", cost_usd=round(rng.uniform(0, 0.01), 6),
                       prompt_tokens=rng.randint(1, 5000), completion_tokens=rng.randint(1, 900),
                       event_id=f"limits-{seed}-{i}")
            for i in range(count)]


def test_a_200k_backlog_in_arrays_of_100(broker, topics, make_worker):
    backlog = events(200_000, seed=1)
    publish_large(broker.bootstrap, topics.usage,
                  [(i // 100 % 4, orjson.dumps(backlog[i:i + 100])) for i in range(0, len(backlog), 100)])
    worker = make_worker()
    wait_for(lambda: totals_match(worker, expected_totals(backlog)), timeout=300, every=2.0,
             what="exact totals for 200,000 events")
    assert metric(worker, "spendwatch_dead_letters_total") == 0


def test_one_array_of_50000_events(broker, topics, make_worker):
    batch = events(50_000, seed=2)
    publish_large(broker.bootstrap, topics.usage, [(0, orjson.dumps(batch))])
    worker = make_worker()
    wait_for(lambda: totals_match(worker, expected_totals(batch)), timeout=240, every=2.0,
             what="exact totals for one message of 50,000 events")


def test_a_5mb_garbage_message_among_good_ones(broker, topics, make_worker):
    good = events(2_000, seed=3)
    garbage = b"{" + random.Random(4).randbytes(5 * 2**20)
    messages = [*((0, orjson.dumps(e)) for e in good[:1000]), (0, garbage),
                *((0, orjson.dumps(e)) for e in good[1000:])]
    publish_large(broker.bootstrap, topics.usage, messages)
    worker = make_worker()
    wait_for(lambda: totals_match(worker, expected_totals(good)), timeout=180, what="every good event")
    [dead] = read_all(broker.bootstrap, topics.dead_letter, expected=1)
    headers = dict(dead.headers)
    assert len(dead.value) < 1_000_000 and garbage.startswith(dead.value)
    assert headers["spendwatch-truncated"] == str(len(garbage)).encode()
    assert headers["spendwatch-sha256"] == hashlib.sha256(garbage).hexdigest().encode()
    assert headers["spendwatch-source"].decode().endswith(":0:1000")


@pytest.mark.long
def test_a_team_with_20000_endpoints(broker, topics, make_worker):
    rng = random.Random(5)
    now = time.time()
    calls = [make_usage(ts=now - 600 + i * 0.02, team="platform", endpoint=f"tenant-{i:05d}",
                        cost_usd=round(rng.uniform(0, 0.01), 6), event_id=f"tenant-{i}") for i in range(20_000)]
    publish_large(broker.bootstrap, topics.usage,
                  [(i % 4, orjson.dumps(calls[i:i + 50])) for i in range(0, 20_000, 50)])
    worker = make_worker()
    want = expected_totals(calls)
    sample = {key: want[key] for key in [("platform", None)] + [("platform", f"tenant-{i:05d}")
                                                              for i in rng.sample(range(20_000), 200)]}
    wait_for(lambda: totals_match(worker, sample), timeout=300, every=2.0, what="20,000 endpoints counted")
    worker.stop()
    again = make_worker()  # the team's record, over a megabyte, comes back whole from its changelog
    wait_for(lambda: again.get("/spend", team="platform").json()["total"]["requests"] == 20_000,
             timeout=180, what="the record back after a restart")
