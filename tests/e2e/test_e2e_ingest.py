"""End to end: a real worker process, the embedded broker, events published with aiokafka.

These are the acceptance tests of issue 2: exact totals over shuffled partitions and
arrays, idempotent re-publication, dead-lettering of malformed input, and a SIGKILL.
"""

from __future__ import annotations

import random
import re
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any

import orjson
import pytest
from genai_prices import Usage, calc_price

from tests.conftest import make_usage, wait_for
from tests.kafka_helpers import publish, read_all

pytestmark = pytest.mark.e2e

TEAMS = [f"team-{i}" for i in range(5)]
ENDPOINTS = [f"endpoint-{i}" for i in range(4)]  # 5 x 4 = 20 (team, endpoint) keys


def usage_events(count: int, seed: int, with_ids: bool = True) -> list[dict[str, Any]]:
    """Events spread over 20 keys in the last hour: most with cost_usd, some priced, some unpriced."""
    rng = random.Random(seed)
    now = time.time()
    events = []
    for i in range(count):
        kind = rng.random()
        event = make_usage(
            ts=now - rng.uniform(30, 3600), team=rng.choice(TEAMS), endpoint=rng.choice(ENDPOINTS),
            prompt_tokens=rng.randint(0, 8000), completion_tokens=rng.randint(0, 2000),
        )
        if kind < 0.6:
            event["cost_usd"] = round(rng.uniform(0, 0.5), 6)
        elif kind < 0.9:
            event["model"] = "gpt-4o"
        else:
            event["model"] = "in-house-llm-v3"  # no catalog price: counted, costed 0
        if kind > 0.45 and kind < 0.55:  # the alternative spelling CONTRACT accepts
            event["input_tokens"] = event.pop("prompt_tokens")
            event["output_tokens"] = event.pop("completion_tokens")
        if with_ids:
            event["event_id"] = f"evt-{seed}-{i}"
        events.append(event)
    rng.shuffle(events)
    return events


def expected_cost(event: dict[str, Any]) -> Decimal:
    if "cost_usd" in event:
        return Decimal(str(event["cost_usd"]))
    if event["model"] == "gpt-4o":
        prompt = event.get("prompt_tokens", event.get("input_tokens"))
        completion = event.get("completion_tokens", event.get("output_tokens"))
        return calc_price(Usage(input_tokens=prompt, output_tokens=completion), "gpt-4o").total_price
    return Decimal(0)


def expected_totals(events: list[dict[str, Any]]) -> dict[tuple[str, str | None], dict[str, Any]]:
    totals: dict[tuple[str, str | None], dict[str, Any]] = defaultdict(
        lambda: {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": Decimal(0)})
    for event in events:
        for key in ((event["team"], event["endpoint"]), (event["team"], None)):
            total = totals[key]
            total["requests"] += 1
            total["prompt_tokens"] += event.get("prompt_tokens", event.get("input_tokens"))
            total["completion_tokens"] += event.get("completion_tokens", event.get("output_tokens"))
            total["cost_usd"] += expected_cost(event)
    return totals


def as_messages(events: list[dict[str, Any]], seed: int, partitions: int = 4) -> list[tuple[int, bytes]]:
    """Some events alone, some in arrays of 2-50, spread over every partition."""
    rng = random.Random(seed)
    messages, i = [], 0
    while i < len(events):
        size = 1 if rng.random() < 0.5 else rng.randint(2, 50)
        chunk = events[i:i + size]
        value = orjson.dumps(chunk[0]) if size == 1 else orjson.dumps(chunk)
        messages.append((rng.randrange(partitions), value))
        i += size
    return messages


class TotalsCheck:
    """What differs between a worker's /spend and the expected totals: false while anything does, and
    shown in a timed-out wait_for, so a failure says which key is off and by how much."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def __bool__(self) -> bool:
        return not self.problems

    def __repr__(self) -> str:
        return f"{len(self.problems)} keys differ: " + "; ".join(self.problems[:6]) if self.problems else "match"


def totals_match(worker: Any, expected: dict[tuple[str, str | None], dict[str, Any]]) -> TotalsCheck:
    problems = []
    for (team, endpoint), want in expected.items():
        params = {"team": team} if endpoint is None else {"team": team, "endpoint": endpoint}
        response = worker.get("/spend", **params)
        if response.status_code != 200:
            problems.append(f"{team}/{endpoint}: HTTP {response.status_code}")
            continue
        got = response.json()["total"]
        names = ("requests", "prompt_tokens", "completion_tokens")
        if any(got[name] != want[name] for name in names) or \
                abs(Decimal(str(got["cost_usd"])) - want["cost_usd"]) > Decimal("1e-9"):
            problems.append(f"{team}/{endpoint}: got " + ", ".join(f"{name} {got[name]}" for name in names)
                            + f", cost {got['cost_usd']}; want " + ", ".join(f"{name} {want[name]}" for name in names)
                            + f", cost {want['cost_usd']}")
    return TotalsCheck(problems)


def metric(worker: Any, name: str, **labels: str) -> float:
    """Sum of a counter's samples whose labels include `labels`."""
    total = 0.0
    for line in worker.get("/metrics").text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_totals_are_exact_and_republishing_changes_nothing(broker, topics, make_worker):
    events = usage_events(50_000, seed=1)
    expected = expected_totals(events)
    assert len([k for k in expected if k[1] is not None]) == 20
    worker = make_worker()

    publish(broker.bootstrap, topics.usage, as_messages(events, seed=2))
    wait_for(lambda: totals_match(worker, expected), timeout=240, what="exact totals for 20 keys")

    # The same events again (other arrays, other partitions): every one is a duplicate.
    publish(broker.bootstrap, topics.usage, as_messages(events, seed=3))
    wait_for(lambda: metric(worker, "spendwatch_events_total", result="duplicate") >= 50_000,
             timeout=240, what="the re-published events to be seen as duplicates")
    assert metric(worker, "spendwatch_events_total", result="duplicate") == 50_000
    assert totals_match(worker, expected)
    listing = worker.get("/spend").json()
    assert sorted(t["team"] for t in listing["teams"]) == TEAMS
    assert sum(t["total"]["requests"] for t in listing["teams"]) == 50_000


def malformed_messages(now: float) -> list[tuple[str, bytes]]:
    """(expected reason, message) for 12 kinds of bad input."""
    good = make_usage(ts=now - 100)
    kinds: list[tuple[str, bytes]] = [
        ("not_json", b"{this is not json"),
        ("not_utf8", b'{"team": "\xff\xfe", "model": "x"}'),
        ("not_object", b"42"),
        ("missing_field", orjson.dumps({k: v for k, v in good.items() if k != "team"})),
        ("missing_field", orjson.dumps({k: v for k, v in good.items() if k != "ts"})),
        ("missing_field", orjson.dumps({**good, "team": ""})),
        ("negative_tokens", orjson.dumps({**good, "prompt_tokens": -5})),
        ("wrong_type", orjson.dumps({**good, "completion_tokens": "many"})),
        ("wrong_type", orjson.dumps({**good, "prompt_tokens": True})),
        ("bad_timestamp", orjson.dumps({**good, "ts": "yesterday"})),
        ("future_timestamp", orjson.dumps({**good, "ts": now + 86400 * 30})),
        ("negative_value", orjson.dumps({**good, "cost_usd": -1.0})),
    ]
    return kinds


def test_malformed_input_is_dead_lettered_with_reason(broker, topics, make_worker):
    now = time.time()
    valid = usage_events(5_000, seed=4)
    expected = expected_totals(valid)
    kinds = malformed_messages(now)
    bad = [kinds[i % len(kinds)] for i in range(1_000)]
    rng = random.Random(5)
    valid_messages = as_messages(valid, seed=6)
    stream: list[tuple[int, bytes]] = [(p, v) for p, v in valid_messages]
    for _reason, value in bad:
        stream.insert(rng.randrange(len(stream) + 1), (rng.randrange(4), value))

    worker = make_worker()
    publish(broker.bootstrap, topics.usage, stream)
    wait_for(lambda: totals_match(worker, expected), timeout=240, what="exact totals beside malformed input")

    records = read_all(broker.bootstrap, topics.dead_letter, expected=1_000)
    assert len(records) == 1_000
    reasons = defaultdict(int)
    for record in records:
        headers = dict(record.headers)
        reasons[headers["spendwatch-reason"].decode()] += 1
        assert headers["spendwatch-detail"]
        assert re.fullmatch(rf"{re.escape(topics.usage)}:\d:\d+", headers["spendwatch-source"].decode())
    want = defaultdict(int)
    for reason, _ in bad:
        want[reason] += 1
    assert reasons == want
    assert sorted(r.value for r in records) == sorted(v for _, v in bad)  # untouched bytes
    assert metric(worker, "spendwatch_dead_letters_total") == 1_000
    assert worker.get("/healthz").status_code == 200


def test_bad_element_in_an_array_is_dead_lettered_alone(broker, topics, make_worker):
    good = make_usage(team="arrays", event_id="a-1")
    bad = make_usage(team="arrays", prompt_tokens=-1)
    worker = make_worker()
    publish(broker.bootstrap, topics.usage, [(0, orjson.dumps([good, bad, make_usage(team="arrays")]))])
    wait_for(lambda: worker.get("/spend", team="arrays").json()["total"]["requests"] == 2, what="two good elements")
    [record] = read_all(broker.bootstrap, topics.dead_letter, expected=1)
    assert orjson.loads(record.value) == bad
    assert dict(record.headers)["spendwatch-index"] == b"1"


def test_sigkill_mid_stream_still_ends_exact(broker, topics, make_worker):
    # No event_id: exactness here comes from the ledger's applied offsets, not from de-duplication.
    events = usage_events(20_000, seed=7, with_ids=False)
    expected = expected_totals(events)
    messages = as_messages(events, seed=8)
    half = len(messages) // 2

    publish(broker.bootstrap, topics.usage, messages[:half])
    # Small batches so the kill lands while the first half is still being counted.
    first = make_worker(SPENDWATCH_BATCH_SIZE="100")
    wait_for(lambda: metric(first, "spendwatch_ingest_batches_total") >= 3, every=0.05,
             what="the first worker to take in some batches")
    counted_at_kill = sum(t["total"]["requests"] for t in first.get("/spend").json()["teams"])
    first.kill()
    assert counted_at_kill < sum(1 for p, v in messages[:half] for _ in (orjson.loads(v) if v[:1] == b"[" else [v]))

    publish(broker.bootstrap, topics.usage, messages[half:])
    second = make_worker()
    wait_for(lambda: totals_match(second, expected), timeout=240, what="exact totals after SIGKILL")
    time.sleep(3)  # nothing late may push them past
    assert totals_match(second, expected)
