"""`make run`'s simulator announces a tier violation, a flash spike, a cost-per-outcome regression and a
runaway run, a serving scale-out and idle serving GPUs: its traffic, replayed with the demo's settings, raises
each of them (the worker runs the same code on the same events)."""

from __future__ import annotations

import io
import random

import orjson
import pytest

from alerting.silences import rfc3339_to_ts
from streams.settings import Settings
from streams.tools import simulator
from streams.tools.replay import replay

START = 1_765_000_000.0


# Several starts: the hour of day and the windows' alignment differ (when the history was scraped less often than
# live, the serving scale-out fired from only half of them).
# START - 16_813 (01:06:27): the scale-out begins 47 s into a window, which reads 4.8x; learned, it raised the
# expectation 28% and the 12x windows after it read 9.7x (streams/state/judging.py, SERVING_PROTECT_FRACTION).
@pytest.mark.parametrize("start", [START, START + 3_333, START + 11_111, START - 16_813])
def test_the_simulated_traffic_raises_every_alert_the_banner_announces(start):
    rng = random.Random(7)
    runs = [{"ts": start, "team": "research", "run_id": "llama-finetune-7", "status": "started",
             "estimated_cost_usd": 40.0, "gpus": 8, "gpu_type": "H100", "expected_hours": 1.0}]
    usage, outcomes, gpu = simulator.history_before(start, rng)
    for elapsed in range(1, 480):
        usage += simulator.usage_batch(start + elapsed, float(elapsed), rng, 1.0)
        outcomes += simulator.outcome_batch(start + elapsed, float(elapsed), rng, 1.0)
        if elapsed % simulator.SCRAPE_S == 0:
            gpu += simulator.gpu_batch(start + elapsed, float(elapsed))
    settings = simulator.demo_settings(Settings(_env_file=None))
    out = io.BytesIO()
    replay({"usage": io.BytesIO(b"\n".join(map(orjson.dumps, usage))),
            "outcomes": io.BytesIO(b"\n".join(map(orjson.dumps, outcomes))),
            "gpu": io.BytesIO(b"\n".join(map(orjson.dumps, gpu))),
            "runs": io.BytesIO(b"\n".join(map(orjson.dumps, runs)))}, out, settings, now=start + 600)
    alerts = [orjson.loads(line) for line in out.getvalue().splitlines()]
    firing = {(a["kind"], a["team"], a["endpoint"]) for a in alerts if a["status"] == "firing"}
    assert ("model_tier_violation", simulator.TIER_KEY.team, simulator.TIER_KEY.endpoint) in firing
    assert ("flash_spike", simulator.SPIKE_KEY.team, simulator.SPIKE_KEY.endpoint) in firing
    assert ("unit_cost_spike", simulator.OUTCOME_KEY.team, simulator.OUTCOME_KEY.endpoint) in firing
    assert ("runaway_training", "research", None) in firing
    assert ("gpu_idle", simulator.SERVING_TEAM, simulator.IDLE_ENDPOINT) in firing
    serving = [a for a in alerts if a["status"] == "firing" and a["endpoint"] == simulator.SERVING_ENDPOINT]
    assert [(a["kind"], a["cause"]) for a in serving] == [("flash_spike", "gpus")]
    assert {kind for kind, _, _ in firing} == {"model_tier_violation", "flash_spike", "unit_cost_spike",
                                               "runaway_training", "gpu_idle"}
    # Announced for after the prompt change, and not before it (a lucky minute of history once fired one).
    regressed = start + simulator.REGRESSION_AFTER_S
    assert all(rfc3339_to_ts(a["ts"]) >= regressed for a in alerts
               if a["kind"] == "unit_cost_spike" and a["status"] == "firing")


def test_the_banner_announces_each_alert_the_traffic_raises():
    text = simulator.banner(1000, 50)
    for kind in ("model_tier_violation", "runaway_training", "flash_spike", "cause gpus", "unit_cost_spike",
                 "gpu_idle"):
        assert kind in text
    assert len(text.splitlines()) == 8
