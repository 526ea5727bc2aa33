"""Issue "GPU" through replay's own path: serving GPUs as their own category, serving scale-outs as flash spikes
with cause `gpus`, idle GPUs, and every dollar of a team in exactly one category."""

from __future__ import annotations

import io
from typing import Any

import orjson

from alerting.actions import commands_for
from streams.settings import Settings
from streams.state.ledger import spend_view
from streams.tools import replay as replay_module
from streams.tools.replay import replay

T0 = 1_764_547_200.0  # 2025-12-01T00:00:00Z
SCRAPE = 30.0


def run(gpu: list[dict[str, Any]], usage: list[dict[str, Any]] | None = None,
        runs: list[dict[str, Any]] | None = None,
        settings: Settings | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    inputs = {"gpu": io.BytesIO(b"\n".join(map(orjson.dumps, gpu)))}
    if usage:
        inputs["usage"] = io.BytesIO(b"\n".join(map(orjson.dumps, usage)))
    if runs:
        inputs["runs"] = io.BytesIO(b"\n".join(map(orjson.dumps, runs)))
    ledgers: dict[str, Any] = {}
    original = replay_module.detect

    def keeping_ledgers(*args: Any, **kwargs: Any) -> Any:
        return original(*args, **{**kwargs, "ledgers": ledgers, "processes": 1})

    out = io.BytesIO()
    replay_module.detect = keeping_ledgers
    try:
        replay(inputs, out, settings or Settings(_env_file=None), now=T0 + 10 * 86400)
    finally:
        replay_module.detect = original
    return [orjson.loads(line) for line in out.getvalue().splitlines()], ledgers


def samples(start: float, minutes: float, gpus: int, utilization: float, **subject: Any) -> list[dict[str, Any]]:
    return [{"ts": start + n * SCRAPE, "team": "ml", "gpu_id": f"{subject.get('endpoint') or subject['run_id']}-{g}",
             "gpu_type": "H100", "utilization": utilization, **subject}
            for n in range(int(minutes * 60 / SCRAPE)) for g in range(gpus)]


def test_every_dollar_is_in_one_category_and_they_add_up_to_the_total():
    gpu = samples(T0, 120, 2, 70.0, endpoint="chat") + samples(T0, 120, 4, 90.0, run_id="ft-1")
    usage = [{"ts": T0 + n * 10, "team": "ml", "endpoint": "chat", "model": "gpt-4o-mini", "cost_usd": 0.003}
             for n in range(700)]
    _, ledgers = run(gpu, usage)
    ledger = ledgers["ml"]
    team = spend_view(ledger, "ml", None, 60)
    categories = team["total"]["categories"]
    assert set(categories) == {"api_tokens", "inference_serving", "training"}
    assert team["total"]["cost_usd"] == sum(categories.values())
    assert abs(categories["inference_serving"] - 2 * 4.0 * (120 * 60 - SCRAPE) / 3600) < 1e-6
    assert abs(categories["training"] - ledger["runs"]["ft-1"]["cost_usd"]) < 1e-9
    assert abs(categories["api_tokens"] - 700 * 0.003) < 1e-9
    for window in team["windows"]:
        assert window["cost_usd"] == sum(window["categories"].values())
    chat = spend_view(ledger, "ml", "chat", 60)
    assert chat["total"]["categories"]["training"] == 0.0
    assert chat["total"]["cost_usd"] == sum(chat["total"]["categories"].values())
    assert chat["total"]["requests"] == 700
    only_gpus = spend_view(ledger, "ml", "chat", 60)["windows"][-1]
    assert only_gpus["categories"]["inference_serving"] > 0


def test_a_serving_scale_out_is_a_flash_spike_with_cause_gpus_and_the_gpu_counts():
    gpu = samples(T0, 180, 2, 70.0, endpoint="chat")
    gpu += samples(T0 + 180 * 60, 20, 24, 70.0, endpoint="chat")  # 12x for twenty minutes
    gpu += samples(T0 + 200 * 60, 60, 2, 70.0, endpoint="chat")
    alerts, _ = run(gpu)
    spikes = [a for a in alerts if a["kind"] == "flash_spike"]
    assert [a["status"] for a in spikes] == ["firing", "resolved"]
    firing = spikes[0]
    assert firing["cause"] == "gpus" and firing["endpoint"] == "chat"
    assert firing["gpus_before"] == 2.0 and firing["gpus_after"] == 24
    assert firing["ts"] <= "2025-12-01T03:02:05Z"  # within 2 windows of 03:00
    assert spikes[1]["dedup_key"] == firing["dedup_key"]


def test_a_hung_run_raises_gpu_idle_with_its_idle_dollars_and_a_stop_run_command():
    gpu = samples(T0, 60, 4, 92.0, run_id="ft-9") + samples(T0 + 3600, 120, 4, 1.0, run_id="ft-9")
    alerts, _ = run(gpu)
    (idle,) = [a for a in alerts if a["kind"] == "gpu_idle" and a["status"] == "firing"]
    assert idle["run_id"] == "ft-9" and idle["gpus"] == 4 and idle["idle_usd_per_hour"] == 16.0
    assert idle["ts"] <= "2025-12-01T02:15:00Z"  # within 75 minutes of the hang at 01:00
    (command,) = commands_for(idle, dry_run=True)
    assert command["action"] == "stop_run" and command["run_id"] == "ft-9"


def test_a_serving_endpoint_idling_overnight_says_it_could_scale_down():
    gpu = samples(T0, 60, 3, 60.0, endpoint="batch-embed") + samples(T0 + 3600, 90, 3, 3.0, endpoint="batch-embed")
    alerts, _ = run(gpu)
    (idle,) = [a for a in alerts if a["kind"] == "gpu_idle" and a["status"] == "firing"]
    assert idle["team"] == "ml" and idle["endpoint"] == "batch-embed" and idle["run_id"] is None
    assert "scale" in idle["summary"]
    assert commands_for(idle, dry_run=True) == []


def test_an_endpoint_whose_gpus_cost_more_per_token_than_the_api_is_flagged_once_a_day():
    # Two days of 2 idle-ish H100s ($8/h, $192 a day) serving 2M tokens of gpt-4o-mini a day: far above its API price.
    gpu = samples(T0, 2 * 1440 + 30, 2, 20.0, endpoint="chat")
    usage = [{"ts": T0 + n * 60, "team": "ml", "endpoint": "chat", "model": "gpt-4o-mini", "prompt_tokens": 1000,
              "completion_tokens": 400, "cost_usd": 0.0} for n in range(2 * 1440 + 30)]
    alerts, ledgers = run(gpu, usage)
    flagged = [a for a in alerts if a["kind"] == "serving_costlier_than_api"]
    # The first day began with the endpoint's first call: part of a day, not judged; the second is.
    assert [(a["status"], a["since"]) for a in flagged] == [("firing", "2025-12-02T00:00:00Z")]
    (alert,) = flagged
    assert alert["severity"] == "info" and alert["unit"] == "usd_per_million_tokens"
    assert alert["observed"] > 40 * alert["baseline"]
    chat = spend_view(ledgers["ml"], "ml", "chat", 60)
    assert chat["serving_usd_per_million_tokens"] == round(
        chat["total"]["categories"]["inference_serving"] / (chat["total"]["prompt_tokens"]
                                                             + chat["total"]["completion_tokens"]) * 1e6, 6)


def test_a_budget_counts_every_dollar_or_only_the_category_it_names():
    gpu = samples(T0, 120, 2, 70.0, endpoint="chat") + samples(T0, 120, 4, 90.0, run_id="ft-1")
    usage = [{"ts": T0 + n * 10, "team": "ml", "endpoint": "chat", "model": "gpt-4o-mini", "cost_usd": 0.003}
             for n in range(700)]
    budgets = [{"budget": "all", "team": "ml", "period": "day", "amount_usd": 1000.0},
               {"budget": "training", "team": "ml", "period": "day", "amount_usd": 1000.0, "category": "training"},
               {"budget": "chat", "team": "ml", "endpoint": "chat", "period": "day", "amount_usd": 1000.0}]
    _, ledgers = run(gpu, usage, settings=Settings(_env_file=None, budgets=budgets))
    ledger = ledgers["ml"]
    spent = {name: state["spent"] for name, state in ledger["budgets"].items()}
    categories = spend_view(ledger, "ml", None, 60)["total"]["categories"]
    chat = spend_view(ledger, "ml", "chat", 60)["total"]["categories"]
    assert abs(spent["all"] - sum(categories.values())) < 1e-9
    assert abs(spent["training"] - categories["training"]) < 1e-9
    assert abs(spent["chat"] - chat["api_tokens"] - chat["inference_serving"]) < 1e-9
