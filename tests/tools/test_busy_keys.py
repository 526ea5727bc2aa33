"""The benchmark's busy-keys workload holds what it says: the surge and the model switch fire, nothing else.

`make bench` and `python -m evaluation.hotpath` time detection on it (issue 38); a workload whose spikes
never fired would time a detector with nothing to do.
"""

from __future__ import annotations

import io

import orjson

from evaluation.busy_keys import busy_events
from streams.settings import Settings
from streams.tools.replay import replay


def test_busy_keys_fire_their_surge_and_model_switch_and_nothing_else() -> None:
    calls = busy_events(200_000, seed=4)
    assert len(calls) == 200_000
    assert len({(call["team"], call["endpoint"]) for call in calls}) == 16
    per_key_minute = len(calls) / 16 / ((calls[-1]["ts"] - calls[0]["ts"]) / 60)
    assert 140 < per_key_minute < 200
    alerts = io.BytesIO()
    replay({"usage": io.BytesIO(b"\n".join(orjson.dumps(calls[i:i + 100]) for i in range(0, len(calls), 100)))},
           alerts, Settings(_env_file=None))
    fired = sorted((alert["team"], alert["endpoint"], alert["cause"])
                   for alert in map(orjson.loads, alerts.getvalue().splitlines()) if alert["status"] == "firing")
    assert fired == [("busy-0", "endpoint-0", "traffic"), ("busy-1", "endpoint-0", "model_mix")]
