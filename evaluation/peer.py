"""`make bench`'s peer: the Quix Streams application (evaluation/quix_peer.py) run beside the worker.

The race is fair only if both do the same job, so every run's sums are checked: the peer's
per-(team, endpoint) totals against the input's, and against the windows and totals the
worker serves at `/spend`.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from streams.input.pricing import estimate_cost, token_rates
from streams.tools.broker import EmbeddedBroker

ROOT = Path(__file__).resolve().parent.parent
QUIX_PYTHON = ROOT / "var" / "quix-venv" / "bin" / "python"  # `make bench` builds it
#: Quix's `group_by` copies the source topic's retention into its repartition topic, and Tansu
#: describes only the configs set at creation, so the benchmark's topics are created with these.
TOPIC_CONFIGS = {"retention.ms": "604800000", "retention.bytes": "-1"}

Sums = dict[str, list[float]]  # "team/endpoint" -> [requests, tokens, cost]


def quix_rate(broker: EmbeddedBroker, topic: str, expected: int, model: str = "gpt-4o") -> tuple[float, Sums, Sums]:
    """Events/s of the Quix peer over the topic, its totals per key, and its windows ("key start_ms")."""
    rates = token_rates(model)
    if rates is None:
        raise RuntimeError(f"no price for {model}")
    with tempfile.TemporaryDirectory(prefix="quix-state-") as state_dir:
        out = subprocess.run([str(QUIX_PYTHON), str(ROOT / "evaluation" / "quix_peer.py"), broker.bootstrap, topic,
                              str(expected), repr(rates[0]), repr(rates[1]), state_dir],
                             capture_output=True, timeout=900, cwd=ROOT)
    for line in out.stdout.splitlines():
        if line.startswith(b"{"):
            result = json.loads(line)
            windows: Sums = result["windows"]
            totals: Sums = defaultdict(lambda: [0, 0, 0.0])
            for window_key, sums in windows.items():
                total = totals[window_key.rsplit(" ", 1)[0]]
                for i in range(3):
                    total[i] += sums[i]
            return result["count"] / result["seconds"], dict(totals), windows
    raise RuntimeError(f"the Quix peer ended without a result: {out.stderr.decode(errors='replace')[-2000:]}")


def input_sums(events: list[dict[str, Any]]) -> Sums:
    """The true totals per key, priced from the same catalog."""
    totals: Sums = defaultdict(lambda: [0, 0, 0.0])
    for event in events:
        total = totals[f"{event['team']}/{event.get('endpoint') or ''}"]
        total[0] += 1
        total[1] += event["prompt_tokens"] + event["completion_tokens"]
        cost = estimate_cost(event["model"], event["prompt_tokens"], event["completion_tokens"])
        if cost is None:
            raise RuntimeError(f"no price for {event['model']}")
        total[2] += cost
    return dict(totals)


def worker_sums(port: int, keys: list[str]) -> tuple[Sums, Sums]:
    """A worker's totals per key and the windows it keeps ("key start_ms"), from `GET /spend`."""
    totals: Sums = {}
    windows: Sums = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for key in keys:
            team, endpoint = key.split("/", 1)
            view = client.get("/spend", params={"team": team, "endpoint": endpoint}).raise_for_status().json()
            totals[key] = _sums(view["total"])
            for window in view["windows"]:
                start_ms = round(datetime.fromisoformat(window["start"]).timestamp() * 1000)
                windows[f"{key} {start_ms}"] = _sums(window)
    return totals, windows


def _sums(figures: dict[str, Any]) -> list[float]:
    return [figures["requests"], figures["prompt_tokens"] + figures["completion_tokens"], figures["cost_usd"]]


def differences(expected: Sums, got: Sums, label: str, only_expected: bool = False) -> list[str]:
    """Where `got` differs from `expected`: counts exactly, cost to a part in a billion (summing order)."""
    found = []
    for key in sorted(expected.keys() | (set() if only_expected else got.keys())):
        a, b = expected.get(key), got.get(key)
        if a is None or b is None or a[0] != b[0] or a[1] != b[1] or abs(a[2] - b[2]) > 1e-9 * max(1.0, abs(a[2])):
            found.append(f"{label} {key}: expected {a}, got {b}")
    return found
