"""Issue 38's busy-keys workload: few keys, each busy, where per-call detection work shows.

`make bench`'s main load spreads its calls over 200 keys for an hour: each detector is in its
warm-up for half of it and most calls cross no bar. Spend concentrates on busy keys, so the
benchmark also runs this one: 16 (team, endpoint) keys at about 170 calls a minute each, with a
daily shape, minute-to-minute noise, two models, six users and three services per key, and among
them a 10x traffic surge and a switch to a model 16x dearer, so the span, price and attribution
work of a firing detector is in the figure too. Every detector is warm after its first 30 windows.

>>> calls = busy_events(20_000, seed=1)
>>> len(calls), len({(c["team"], c["endpoint"]) for c in calls}), calls == sorted(calls, key=lambda c: c["ts"])
(20000, 16, True)
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

KEYS = 16
CALLS_PER_MINUTE = 170.0
MODELS = (("gpt-4o-mini", 0.85), ("gpt-4o", 0.15))
DEAR_MODEL = "o1"  # 16x gpt-4o-mini's price per token and more: the model switch
USERS = tuple(f"user-{i}" for i in range(6))
SERVICES = ("web", "batch", "slack-bot")


def busy_events(count: int, seed: int, keys: int = KEYS, per_minute: float = CALLS_PER_MINUTE,
                now: float | None = None) -> list[dict[str, Any]]:
    """The first `count` usage events, in time order, of busy keys' traffic ending at `now` (default: the clock).

    Key 0 surges 10x for 10 minutes and key 1 switches every call to `DEAR_MODEL` for 10 minutes,
    both about two thirds of the way through (after the detectors' warm-up for any `count` of 200,000
    or more).
    """
    rng = random.Random(seed)
    minutes = max(1, math.ceil(1.5 * count / (keys * per_minute)))  # room for the daily shape's troughs
    end = time.time() if now is None else now
    start = end - minutes * 60
    surge = range(minutes * 4 // 9, minutes * 4 // 9 + 10)  # two thirds into the `count` kept
    calls: list[dict[str, Any]] = []
    for key in range(keys):
        team, endpoint = f"busy-{key % 4}", f"endpoint-{key // 4}"
        phase = rng.uniform(0, 2 * math.pi)
        for minute in range(minutes):
            rate = per_minute * (1 + 0.3 * math.sin(2 * math.pi * minute / 1440 + phase)) * rng.lognormvariate(0, 0.2)
            if key == 0 and minute in surge:
                rate *= 10
            for _ in range(_poisson(rng, rate)):
                model = DEAR_MODEL if key == 1 and minute in surge else \
                    rng.choices([m for m, _ in MODELS], [w for _, w in MODELS])[0]
                calls.append({"ts": start + minute * 60 + rng.random() * 60, "team": team, "endpoint": endpoint,
                              "model": model, "prompt_tokens": rng.randint(300, 3000),
                              "completion_tokens": rng.randint(20, 600), "user": rng.choice(USERS),
                              "service": rng.choice(SERVICES)})
    calls.sort(key=lambda c: c["ts"])
    del calls[count:]
    for index, call in enumerate(calls):
        call["event_id"] = f"busy{seed}-{index}"
    return calls


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw; the normal approximation above 50 (plenty for a load generator)."""
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, product, drawn = math.exp(-mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        drawn += 1
    return drawn
