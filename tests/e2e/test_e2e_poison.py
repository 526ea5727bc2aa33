"""Poison (issue "Poison"): no single message stops the worker. Each poison below, sent between good events,
is dead-lettered with its reason while every good event is counted, by the worker and by a worker started
after it was killed. Before: the OTLP spans made the ingest agent raise, the worker exited 70 without
committing, and every worker that took the partition over read the same message and exited again."""

from __future__ import annotations

import time
from collections import Counter

import orjson
import pytest

from tests.conftest import make_usage, wait_for
from tests.e2e.test_e2e_ingest import expected_totals, metric, totals_match
from tests.fuzz.test_fuzz_boundaries import poison_span
from tests.kafka_helpers import publish, read_all

pytestmark = pytest.mark.e2e

#: Each poison and the dead-letter reason it must get.
EXPECTED_REASONS = Counter({"out_of_range": 5, "future_timestamp": 1, "bad_command": 2})


def good_events(first: int, count: int) -> list[dict]:
    return [make_usage(team="search", endpoint="chat-api", cost_usd=0.5, event_id=f"good-{n}")
            for n in range(first, first + count)]


def publish_poison_between_good(broker, topics, spans_topic: str, actions_topic: str, first: int) -> list[dict]:
    """Good events on every partition, then each poison, then more good events; returns the good ones."""
    before, after = good_events(first, 40), good_events(first + 40, 40)
    publish(broker.bootstrap, topics.usage, [(n % 4, orjson.dumps(e)) for n, e in enumerate(before)])
    now_ns = int((time.time() - 60) * 1e9)
    publish(broker.bootstrap, spans_topic, [(0, poison_span(now_ns, float("inf"))),
                                            (1, poison_span(now_ns, float("nan"))),
                                            (2, poison_span(2**64 - 1, 10.0))])
    publish(broker.bootstrap, topics.usage, [
        (3, orjson.dumps(make_usage(team="search", prompt_tokens=2**53, completion_tokens=0))),  # ~$2e10 computed
        (0, orjson.dumps(make_usage(team="search", event_id="x" * 10_000))),
        (1, orjson.dumps(make_usage(team="search", cost_usd=1e9)))])
    publish(broker.bootstrap, actions_topic, [
        (0, orjson.dumps({"action_id": "a1", "action": "format_disk", "team": "search", "dry_run": True, "ts": "t"})),
        (1, orjson.dumps({"action_id": "a2", "action": "block_team", "team": "search", "ts": "t"})),
        # Well formed, but its team is dry-run: carried out, its executor (nothing listens) would fail it
        # within the 1 s deadline and dead-letter it `action_failed`, a reason the test does not expect.
        (2, orjson.dumps({"action_id": f"real-{first}", "action": "block_team", "team": "search", "reason": "r",
                          "dry_run": False, "ts": "2026-12-07T00:00:00Z"}))])
    publish(broker.bootstrap, topics.usage, [(n % 4, orjson.dumps(e)) for n, e in enumerate(after)])
    return before + after


def test_each_poison_is_dead_lettered_and_every_good_event_counted_across_a_restart(broker, topics, make_worker):
    spans_topic, actions_topic = f"{topics.prefix}.otlp_spans", f"{topics.prefix}.actions"
    broker.create_topics([spans_topic, actions_topic], partitions=4)
    settings = {"SPENDWATCH_OTLP_TOPIC": spans_topic, "SPENDWATCH_ACTIONS_TOPIC": actions_topic,
                "SPENDWATCH_ACTIONS": '{"search": {"executor": "litellm"}}',
                "SPENDWATCH_LITELLM_URL": "https://127.0.0.1:9", "SPENDWATCH_LITELLM_MASTER_KEY": "sk-never-used",
                "SPENDWATCH_DELIVERY_DEADLINE_SECONDS": "1"}
    worker = make_worker(**settings)
    good = publish_poison_between_good(broker, topics, spans_topic, actions_topic, first=0)
    wait_for(lambda: totals_match(worker, expected_totals(good)), what="every good event around the poison")
    dead = read_all(broker.bootstrap, topics.dead_letter, sum(EXPECTED_REASONS.values()))
    reasons = Counter(dict(r.headers)["spendwatch-reason"].decode() for r in dead)
    assert reasons == EXPECTED_REASONS
    assert worker.process is not None and worker.process.poll() is None
    assert metric(worker, "spendwatch_dead_letters_total") == sum(EXPECTED_REASONS.values())

    worker.kill()
    restarted = make_worker(**settings)
    good += publish_poison_between_good(broker, topics, spans_topic, actions_topic, first=80)
    wait_for(lambda: totals_match(restarted, expected_totals(good)), what="every good event, after the restart")
    twice = Counter({reason: 2 * n for reason, n in EXPECTED_REASONS.items()})
    # At least once: a poison the killed worker had not yet committed past is dead-lettered again.
    dead = read_all(broker.bootstrap, topics.dead_letter, sum(twice.values()), timeout_s=150)  # see test_e2e_budgets
    reasons = Counter(dict(r.headers)["spendwatch-reason"].decode() for r in dead)
    assert reasons.keys() == twice.keys() and all(reasons[r] >= twice[r] for r in twice)
    assert restarted.process is not None and restarted.process.poll() is None
