"""End to end, issue "Govern": usage and outcomes on a real broker; a model-tier violation and a cost-per-outcome
regression reach the Slack stand-in; `restrict_models` reaches the LiteLLM stand-in for a team that acts for
real and not for one in dry run; `/unit-costs` and `/spend`'s tiers show the figures; replay raises the same."""

from __future__ import annotations

import io
import time

import orjson
import pytest

from streams.settings import Settings
from streams.tools.replay import replay
from tests.conftest import wait_for
from tests.kafka_helpers import publish, read_all
from tests.standins import StandIn

pytestmark = pytest.mark.e2e

HOUR = 3600.0
PERIOD = 300  # five-minute periods: a day of history in a few thousand events
TIERS = {"premium": ["gpt-4o", "claude-*-opus*"], "economy": ["gpt-4o-mini"]}
POLICY = [{"team": "support", "allow": ["economy"]}, {"team": "ads", "allow": ["economy"]}]


def env(standin: StandIn, topics) -> dict[str, str]:
    return {
        "SPENDWATCH_MODEL_TIERS": orjson.dumps(TIERS).decode(),
        "SPENDWATCH_TIER_POLICY": orjson.dumps(POLICY).decode(),
        "SPENDWATCH_OUTCOME_PERIOD_SECONDS": str(PERIOD),
        "SPENDWATCH_ACTIONS": orjson.dumps({"support": {"executor": "litellm", "dry_run": False},
                                            "ads": {"executor": "litellm"}}).decode(),  # ads: dry run
        "SPENDWATCH_ACTIONS_TOPIC": f"{topics.prefix}.actions",
        "SPENDWATCH_LITELLM_URL": standin.url,
        "SPENDWATCH_LITELLM_MASTER_KEY": standin.litellm_master_key,
        "SPENDWATCH_SLACK_WEBHOOK_URL": f"{standin.url}/services/T0/B0/secret",
        "SPENDWATCH_ALLOW_PLAIN_HTTP_EXECUTORS": "true",
    }


def traffic(start: float, periods: int, regressed_from: int) -> tuple[list[dict], list[dict]]:
    """support/chat: 20 calls and 10 resolved tickets a period at $0.01 a call; from `regressed_from` on the same
    spend buys 3 tickets (cost per ticket 3.3x). Ads calls a premium model once."""
    usage, outcomes = [], []
    for p in range(periods):
        base = start + p * PERIOD
        usage += [{"ts": base + 7 + i * 14, "team": "support", "endpoint": "chat", "model": "gpt-4o-mini",
                   "cost_usd": 0.01, "event_id": f"c{p}-{i}"} for i in range(20)]
        tickets = 10 if p < regressed_from else 3
        outcomes += [{"ts": base + 11 + i * 25, "team": "support", "endpoint": "chat", "outcome": "ticket_resolved",
                      "event_id": f"o{p}-{i}"} for i in range(tickets)]
    usage.append({"ts": start + 40 * PERIOD + 3, "team": "support", "endpoint": "chat",
                  "model": "gpt-4o-2024-08-06", "cost_usd": 0.05, "event_id": "premium-1"})
    usage.append({"ts": start + 40 * PERIOD + 5, "team": "ads", "endpoint": "banner", "model": "gpt-4o",
                  "cost_usd": 0.02, "event_id": "premium-2"})
    return usage, outcomes


def test_outcomes_and_tiers_on_a_broker_alert_in_slack_restrict_in_litellm_and_agree_with_replay(
        broker, topics, make_worker, standin):
    broker.create_topics([f"{topics.prefix}.actions"], partitions=4)
    now = time.time()
    start = now - now % PERIOD - 60 * PERIOD
    usage, outcomes = traffic(start, periods=60, regressed_from=50)
    worker = make_worker(**env(standin, topics))
    publish(broker.bootstrap, topics.usage, [(i % 4, orjson.dumps(usage[i:i + 50])) for i in range(0, len(usage), 50)])
    publish(broker.bootstrap, topics.outcomes, [(i % 4, orjson.dumps(outcomes[i:i + 50]))
                                                for i in range(0, len(outcomes), 50)])

    def slack_titles() -> list[str]:
        return [m.get("text", "") for m in standin.of("slack")]

    wait_for(lambda: any("Cost per outcome up" in t for t in slack_titles())
             and any("Model tier violation" in t for t in slack_titles()) and standin.of("litellm:update"),
             timeout=120, what="the unit-cost and tier alerts in Slack, and LiteLLM's /team/update")
    time.sleep(2)
    assert standin.violations == []
    assert standin.of("litellm:update") == [{"team_id": "support", "models": ["gpt-4o-mini"]}]  # ads is a dry run
    notes = [m["text"] for m in standin.of("slack") if m["text"].startswith(("Done:", "Dry run:"))]
    assert any(t.startswith("Done: restricted team support to models gpt-4o-mini") for t in notes)
    assert any(t.startswith("Dry run: would have restricted team ads") for t in notes)

    (figure,) = worker.get("/unit-costs", team="support").json()["unit_costs"]
    assert figure["outcome"] == "ticket_resolved" and figure["endpoint"] == "chat"
    assert 0.015 < figure["expected_usd_per_outcome"] < 0.025
    tiers = {t["tier"]: t for t in worker.get("/spend", team="support").json()["tiers"]}
    assert tiers["economy"]["requests"] == 1200 and tiers["premium"]["requests"] == 1

    out = io.BytesIO()
    config = Settings(_env_file=None, model_tiers=TIERS, tier_policy=POLICY, outcome_period_seconds=PERIOD)
    replay({"usage": io.BytesIO(b"\n".join(orjson.dumps(e) for e in usage)),
            "outcomes": io.BytesIO(b"\n".join(orjson.dumps(e) for e in outcomes))}, out, config, now=now)
    expected = {(a["alert_id"], a["kind"], a["status"]) for a in map(orjson.loads, out.getvalue().splitlines())}
    assert {k for _, k, _ in expected} >= {"unit_cost_spike", "model_tier_violation"}
    live = {(a["alert_id"], a["kind"], a["status"])
            for a in map(orjson.loads, (r.value for r in read_all(broker.bootstrap, topics.alerts,
                                                                   expected=len(expected))))}
    assert live == expected
