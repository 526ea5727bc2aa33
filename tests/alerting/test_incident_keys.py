"""Each incident has its own `dedup_key` (CONTRACT, second round): a trigger and its resolve share
it, and a second spike on the same key is a new PagerDuty incident, not a re-trigger of the first."""

from __future__ import annotations

import io
import random

import orjson

from streams.settings import Settings
from streams.tools.replay import replay
from tests.spiky_traffic import WINDOW_S, spiky_usage

START = 1_764_000_000.0


def two_spikes_on_one_key() -> list[dict]:
    """chat-api at 15x for a minute at 8 min (spiky_usage), then again at 12 min, after the first resolved."""
    events = spiky_usage(START, minutes=16, spike_at_s=480)
    rng = random.Random(5)
    for second in range(720, 780):
        for n in range(70):
            events.append({"ts": round(START + second + rng.random(), 3), "team": "search", "endpoint": "chat-api",
                           "model": "gpt-4o", "prompt_tokens": 1200, "completion_tokens": 200,
                           "event_id": f"second-{second}-{n}"})
    events.sort(key=lambda e: e["ts"])
    return events


def test_two_spikes_on_one_key_are_two_incidents_with_their_own_keys():
    usage = io.BytesIO(b"".join(orjson.dumps(e) + b"\n" for e in two_spikes_on_one_key()))
    output = io.BytesIO()
    replay({"usage": usage}, output, Settings(_env_file=None, window_seconds=WINDOW_S), now=START + 3600)
    alerts = [orjson.loads(line) for line in output.getvalue().splitlines()]
    spikes = [a for a in alerts if a["kind"] == "flash_spike" and a["endpoint"] == "chat-api"]
    assert [a["status"] for a in spikes] == ["firing", "resolved", "firing", "resolved"]
    first, second = spikes[:2], spikes[2:]
    assert first[0]["dedup_key"] == first[1]["dedup_key"]
    assert second[0]["dedup_key"] == second[1]["dedup_key"]
    assert first[0]["dedup_key"] != second[0]["dedup_key"]
