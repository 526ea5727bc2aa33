"""Which alerts call for which commands, and what Slack is told about them."""

from __future__ import annotations

import asyncio

import pytest

from alerting.actions import commands_for, describe
from alerting.executors import KubernetesExecutor, LiteLLMExecutor
from alerting.notifier import DeliveryError


def alert(kind="budget_threshold", status="firing", pct=100, endpoint=None, run_id=None):
    return {"alert_id": f"{kind}-{status}-{pct}", "kind": kind, "status": status, "threshold_pct": pct,
            "team": "search", "endpoint": endpoint, "run_id": run_id, "summary": "why", "ts": "2026-12-01T10:00:00Z"}


@pytest.mark.parametrize(("given", "wanted"), [
    (alert(), ["block_team"]),
    (alert(status="resolved"), ["unblock_team"]),
    (alert(pct=80), []),
    (alert(endpoint="chat"), ["throttle_endpoint"]),
    (alert(endpoint="chat", status="resolved"), []),
    (alert(kind="runaway_training", run_id="ft-1"), ["stop_run"]),
    (alert(kind="runaway_training", status="resolved", run_id="ft-1"), []),
    (alert(kind="flash_spike"), []),
])
def test_which_alerts_call_for_which_commands(given, wanted):
    assert [c["action"] for c in commands_for(given, dry_run=False)] == wanted


def test_the_same_alert_makes_the_same_command():
    assert commands_for(alert(), True) == commands_for(alert(), True)
    assert commands_for(alert(), True)[0]["action_id"] != commands_for(alert(status="resolved"), True)[0]["action_id"]


def test_slack_hears_what_was_done_and_how_to_undo_it():
    [block] = commands_for(alert(), dry_run=False)
    assert describe(block, True).startswith("Done: blocked team search. Why: why. To undo: unblock it")
    assert describe(block, False, "litellm: 500").startswith("Could not act: team search was not blocked")


def test_an_executor_that_cannot_reach_its_api_says_so_without_its_secret():
    litellm = LiteLLMExecutor("http://127.0.0.1:9", "sk-master-secret")
    with pytest.raises(DeliveryError) as info:
        asyncio.run(litellm.notify(commands_for(alert(), False)[0]))
    assert info.value.retryable and "sk-master-secret" not in str(info.value) + repr(litellm)
    kubernetes = KubernetesExecutor("http://127.0.0.1:9", "k8s-token-secret", "default", "spendwatch.io/run-id")
    assert "k8s-token-secret" not in repr(kubernetes)
