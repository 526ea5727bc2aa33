"""Model tiers and cost per outcome through replay's own path (events -> rows -> ledger -> detectors -> alerts).

The live worker runs the same `apply_and_judge`; tests/e2e/test_e2e_govern.py checks it on a broker.
"""

from __future__ import annotations

import io
from typing import Any

import orjson

from alerting.actions import commands_for
from streams.settings import Settings
from streams.state.judging import RuleBook
from streams.state.ledger import spend_view
from streams.state.unit_costs import unit_cost_views
from streams.tools import replay as replay_module
from streams.tools.replay import replay

HOUR = 3600.0
T0 = 1_764_547_200.0  # 2025-12-01T00:00:00Z
UNIT_COST_RULE = RuleBook(Settings(_env_file=None)).unit_cost_rule
TIERS = {"premium": ["gpt-4o", "claude-*-opus*"], "economy": ["gpt-4o-mini"]}


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, model_tiers=TIERS,
                    tier_policy=[{"team": "support", "allow": ["economy"]},
                                 {"team": "support", "endpoint": "escalations", "allow": ["economy", "premium"]}],
                    **overrides)


def call(ts: float, model: str, endpoint: str = "chat", team: str = "support", cost: float = 0.01,
         **more: Any) -> dict[str, Any]:
    return {"ts": ts, "team": team, "endpoint": endpoint, "model": model, "cost_usd": cost, **more}


def run(usage: list[dict[str, Any]], outcomes: list[dict[str, Any]] | None = None,
        config: Settings | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    inputs = {"usage": io.BytesIO(b"\n".join(orjson.dumps(e) for e in usage))}
    if outcomes:
        inputs["outcomes"] = io.BytesIO(b"\n".join(orjson.dumps(e) for e in outcomes))
    out = io.BytesIO()
    ledgers: dict[str, Any] = {}
    original = replay_module.detect

    def detect_keeping_ledgers(*args: Any, **kwargs: Any) -> Any:
        return original(*args, **{**kwargs, "ledgers": ledgers, "processes": 1})

    replay_module.detect = detect_keeping_ledgers
    try:
        replay(inputs, out, config or settings(), now=T0 + 400 * HOUR)
    finally:
        replay_module.detect = original
    return [orjson.loads(line) for line in out.getvalue().splitlines()], ledgers


def test_every_call_outside_policy_is_counted_once_and_none_inside():
    usage = [call(T0 + i * 60, "gpt-4o-mini", cost=0.001) for i in range(120)]  # allowed: economy
    usage += [call(T0 + 600 + i * 30, "gpt-4o-2024-08-06", cost=0.02, event_id=f"p{i}") for i in range(10)]
    usage += [call(T0 + 600, "gpt-4o-2024-08-06", cost=0.02, event_id="p0")]  # a retry: counted once
    usage += [call(T0 + 700 + i, "gpt-4o", endpoint="escalations", cost=0.05) for i in range(5)]  # allowed there
    usage += [call(T0 + 800, "o1", cost=0.30)]  # tier default: not allowed on chat either
    usage += [call(T0 + 900, "gpt-4o", team="ads", cost=0.02)]  # no policy: unrestricted
    usage += [call(T0 + 3 * HOUR + i * 60, "gpt-4o-mini", cost=0.001) for i in range(5)]  # time moves on
    alerts, ledgers = run(usage)
    tier_alerts = [a for a in alerts if a["kind"] == "model_tier_violation"]
    firing = {(a["endpoint"], a["model"]): a for a in tier_alerts if a["status"] == "firing"}
    resolved = {(a["endpoint"], a["model"]): a for a in tier_alerts if a["status"] == "resolved"}
    assert set(firing) == {("chat", "gpt-4o-2024-08-06"), ("chat", "o1")}
    assert firing[("chat", "gpt-4o-2024-08-06")]["tier"] == "premium"
    assert firing[("chat", "o1")]["tier"] == "default"
    assert set(resolved) == set(firing)
    assert resolved[("chat", "gpt-4o-2024-08-06")]["calls"] == 10
    assert round(resolved[("chat", "gpt-4o-2024-08-06")]["observed"], 6) == 0.2
    assert resolved[("chat", "o1")]["calls"] == 1
    for key, alert in firing.items():
        assert alert["dedup_key"] == resolved[key]["dedup_key"]
        assert alert["allowed_models"] == ["gpt-4o-mini"]
    view = spend_view(ledgers["support"], "support", None, 60)
    tiers = {t["tier"]: t for t in view["tiers"]}
    assert tiers["premium"]["requests"] == 15 and tiers["economy"]["requests"] == 125
    assert tiers["default"]["requests"] == 1
    assert round(sum(t["cost_usd"] for t in view["tiers"]), 6) == round(view["total"]["cost_usd"], 6)


def test_a_violation_calls_for_restrict_models_with_the_allowed_list_dry_run_by_default():
    alerts, _ = run([call(T0, "gpt-4o")])
    (alert,) = [a for a in alerts if a["kind"] == "model_tier_violation"]
    (command,) = commands_for(alert, dry_run=True)
    assert command["action"] == "restrict_models" and command["models"] == ["gpt-4o-mini"]
    assert command["team"] == "support" and command["dry_run"] is True


def test_an_endpoints_own_policy_raises_the_alert_but_no_team_wide_command():
    config = Settings(_env_file=None, model_tiers=TIERS,
                      tier_policy=[{"team": "support", "endpoint": "chat", "allow": ["economy"]}])
    alerts, _ = run([call(T0, "gpt-4o"), call(T0 + 10, "gpt-4o", endpoint="other")], config=config)
    (alert,) = [a for a in alerts if a["kind"] == "model_tier_violation"]
    assert alert["endpoint"] == "chat" and "allowed_models" not in alert
    assert commands_for(alert, dry_run=True) == []


def tickets(hours: int, per_hour: int, start: float = T0, endpoint: str = "chat") -> list[dict[str, Any]]:
    return [{"ts": start + h * HOUR + (i + 0.5) * HOUR / per_hour, "team": "support", "endpoint": endpoint,
             "outcome": "ticket_resolved", "event_id": f"t{h}-{i}"} for h in range(hours) for i in range(per_hour)]


def spend(hours: int, calls_per_hour: int, cost: float, start: float = T0) -> list[dict[str, Any]]:
    return [call(start + h * HOUR + (i + 0.25) * HOUR / calls_per_hour, "gpt-4o-mini", cost=cost)
            for h in range(hours) for i in range(calls_per_hour)]


def test_cost_per_outcome_doubling_with_flat_spend_fires_unit_cost_spike_and_views_show_it():
    normal, regressed = 30, 6
    usage = spend(normal + regressed + 1, 120, 0.01)  # $1.20 an hour throughout
    outcomes = tickets(normal, 60) + tickets(regressed, 25, start=T0 + normal * HOUR)  # $0.02 -> $0.048 a ticket
    outcomes += tickets(1, 60, start=T0 + (normal + regressed) * HOUR)
    alerts, ledgers = run(usage, outcomes, config=Settings(_env_file=None))
    spikes = [a for a in alerts if a["kind"] == "unit_cost_spike"]
    assert spikes and spikes[0]["status"] == "firing" and spikes[0]["outcome"] == "ticket_resolved"
    fired_at = spikes[0]["ts"]
    assert fired_at <= "2025-12-02T08:00:06Z"  # within 2 periods of the regression's start (06:00)
    assert spikes[0]["unit"] == "usd_per_outcome" and spikes[0]["observed"] > 2 * spikes[0]["baseline"]
    assert not [a for a in alerts if a["kind"] == "flash_spike"]  # spend never moved
    (view,) = unit_cost_views("support", ledgers["support"]["unit_costs"], UNIT_COST_RULE)
    assert view["outcome"] == "ticket_resolved" and view["endpoint"] == "chat"
    assert view["expected_usd_per_outcome"] is not None and 0.015 < view["expected_usd_per_outcome"] < 0.03


def test_outcomes_repeated_by_event_id_count_once_and_a_period_without_outcomes_has_no_figure():
    outcomes = tickets(2, 10)
    _, ledgers = run(spend(3, 10, 0.01), outcomes + outcomes[:5])
    assert ledgers["support"]["outcomes"] == {"chat\x1fticket_resolved": 20}
    (view,) = unit_cost_views("support", ledgers["support"]["unit_costs"], UNIT_COST_RULE)
    assert view["outcomes"] == 0 and view["usd_per_outcome"] is None  # the open third hour: spend, no outcomes
    assert view["previous"]["outcomes"] == 10 and view["previous"]["usd_per_outcome"] == 0.01
