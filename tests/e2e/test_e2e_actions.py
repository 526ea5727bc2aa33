"""End to end, issue "Guardrails": commands on the actions topic, carried out once against the
LiteLLM admin API and Kubernetes API stand-ins, told in Slack, across a SIGKILL; a dry run calls
nothing and says what it would have done."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.conftest import wait_for
from tests.kafka_helpers import publish, read_all
from tests.spiky_traffic import runaway_run
from tests.standins import StandIn, job

pytestmark = pytest.mark.e2e

DAY = 86400.0


def env(standin: StandIn, topics) -> dict[str, str]:
    return {
        "SPENDWATCH_BUDGETS": orjson.dumps([
            {"budget": "acme-daily", "team": "acme", "period": "day", "amount_usd": 100.0},
            {"budget": "ads-daily", "team": "ads", "period": "day", "amount_usd": 100.0}]).decode(),
        "SPENDWATCH_ACTIONS": orjson.dumps({
            "acme": {"executor": "litellm", "dry_run": False},
            "research": {"executor": "kubernetes", "dry_run": False},
            "ads": {"executor": "litellm"}}).decode(),  # dry run, the default
        "SPENDWATCH_ACTIONS_TOPIC": f"{topics.prefix}.actions",
        "SPENDWATCH_LITELLM_URL": standin.url,
        "SPENDWATCH_LITELLM_MASTER_KEY": standin.litellm_master_key,
        "SPENDWATCH_KUBERNETES_API_URL": standin.url,
        "SPENDWATCH_KUBERNETES_TOKEN": standin.k8s_token,
        "SPENDWATCH_SLACK_WEBHOOK_URL": f"{standin.url}/services/T0/B0/secret",
        "SPENDWATCH_ALLOW_PLAIN_HTTP_EXECUTORS": "true",  # the stand-ins serve http on 127.0.0.1
    }


def burn(team: str, count: int, start: float, first: int = 0) -> list[dict]:
    return [{"ts": start + (first + n) * 0.5, "team": team, "endpoint": "agent", "model": "gpt-4o",
             "prompt_tokens": 100, "completion_tokens": 10, "cost_usd": 1.0, "event_id": f"{team}-{start}-{first + n}"}
            for n in range(count)]


def notices(standin: StandIn) -> list[str]:
    return [m["text"] for m in standin.of("slack") if m["text"].startswith(("Done:", "Dry run:", "Could not"))]


def test_a_budget_gone_blocks_once_unblocks_at_rollover_and_a_runaway_is_suspended_across_a_sigkill(
        broker, topics, make_worker, standin):
    broker.create_topics([f"{topics.prefix}.actions"], partitions=4)
    standin.jobs[("default", "ft-1-trainer")] = job("default", "ft-1-trainer", {"spendwatch.io/run-id": "ft-1",
                                                                                "spendwatch.io/team": "research"})
    # Another team's Job with the same run id: never suspended (issue "Poison").
    standin.jobs[("default", "ft-1-ads")] = job("default", "ft-1-ads", {"spendwatch.io/run-id": "ft-1",
                                                                        "spendwatch.io/team": "ads"})
    settings = env(standin, topics)
    now = time.time()
    yesterday = now - now % DAY - DAY + 3600
    first = make_worker(**settings)
    publish(broker.bootstrap, topics.usage, [(0, orjson.dumps(burn("acme", 105, yesterday))),
                                             (1, orjson.dumps(burn("ads", 105, yesterday)))])
    wait_for(lambda: any(t.startswith("Done: blocked team acme") for t in notices(standin)),
             what="LiteLLM's block call, and its notice")
    first.kill()  # SIGKILL once the block went out: it must not be repeated

    second = make_worker(**settings)
    start = now - 900
    runs, samples = runaway_run(start)
    publish(broker.bootstrap, topics.runs, [(0, orjson.dumps(e)) for e in runs])
    wait_for(lambda: second.get("/runs/ft-1").status_code == 200, what="the run")
    publish(broker.bootstrap, topics.gpu, [(0, orjson.dumps(e)) for e in samples])
    today = now - 60
    publish(broker.bootstrap, topics.usage, [(2, orjson.dumps(burn("acme", 2, today))),
                                             (3, orjson.dumps(burn("ads", 2, today)))])  # the period rolls over
    wait_for(lambda: standin.of("litellm:unblock") and standin.of("kubernetes:patch") and len(notices(standin)) >= 5,
             timeout=90, what="the unblock, the suspension and the Slack notices")
    time.sleep(3)
    assert standin.violations == []
    assert [b["team_id"] for b in standin.of("litellm:block")] == ["acme"]  # once; ads is a dry run
    assert [b["team_id"] for b in standin.of("litellm:unblock")] == ["acme"]
    assert [p["name"] for p in standin.of("kubernetes:patch")] == ["ft-1-trainer"]
    assert standin.jobs[("default", "ft-1-trainer")]["spec"]["suspend"] is True
    assert standin.jobs[("default", "ft-1-ads")]["spec"]["suspend"] is False
    said = notices(standin)
    assert any(t.startswith("Done: blocked team acme") and "To undo" in t for t in said)
    assert any(t.startswith("Done: unblocked team acme") for t in said)
    assert any(t.startswith("Done: stopped training run ft-1") for t in said)
    assert any(t.startswith("Dry run: would have blocked team ads") for t in said)
    assert len(said) == len(set(said)) == 5  # and none twice

    commands = [orjson.loads(r.value) for r in read_all(broker.bootstrap, f"{topics.prefix}.actions", expected=5)]
    assert sorted((c["action"], c["team"], c["dry_run"]) for c in commands) == [
        ("block_team", "acme", False), ("block_team", "ads", True), ("stop_run", "research", False),
        ("unblock_team", "acme", False), ("unblock_team", "ads", True)]
    assert all(c["reason"] and c["alert_id"] and c["action_id"] for c in commands)
