"""Simulated traffic for `spendwatch run --simulate`: several teams, endpoints and models, a daily
cycle, one flash spike, a training run that burns past its estimate, resolved tickets whose cost
per ticket jumps while spend stays flat (a prompt change), and a team calling a model tier its
policy does not allow.

Each call names a user and a service, as a gateway's logs do. The spike is an agent stuck in
a loop: its extra calls all come from one user (`SPIKE_USER`), whom the alert names.

It publishes with aiokafka to the same topics a real LLM gateway or GPU exporter would,
in arrays of events as batching producers do, and bounds what it sends (the embedded
broker keeps everything in memory).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any

import orjson

from streams.settings import Settings, TierPolicySetting
from streams.state.ledger import spend_view
from streams.tools.producer import start_producer
from streams.worker.pipeline import Pipeline

log = logging.getLogger("spendwatch.simulator")


@dataclass(frozen=True)
class SimulatedKey:
    team: str
    endpoint: str
    model: str
    calls_per_s: float
    prompt_tokens: int
    completion_tokens: int
    # USD per million prompt and completion tokens, sent as cost_usd: a self-hosted model the
    # price catalog cannot know, priced by its gateway as teams running their own models do.
    own_price: tuple[float, float] | None = None


KEYS = (
    SimulatedKey("search", "chat-api", "gpt-4o", 4.0, 1200, 300),
    SimulatedKey("search", "rerank", "gpt-4o-mini", 8.0, 600, 20),
    SimulatedKey("support", "assistant", "claude-3-5-sonnet-20241022", 2.0, 2500, 400),
    SimulatedKey("growth", "email-writer", "gpt-4o-mini", 1.0, 800, 500),
    SimulatedKey("research", "agent", "in-house-llm-v3", 0.5, 4000, 1000, own_price=(0.9, 2.7)),
)
SPIKE_KEY = KEYS[0]
SPIKE_AFTER_S = 150.0
SPIKE_FOR_S = 180.0
SPIKE_FACTOR = 15.0
SPIKE_USER = "eval-agent-7"
USERS = ("ana", "ben", "chen", "dara", "eli", "fay")
SERVICES = ("web", "batch", "slack-bot")
#: support/assistant resolves a ticket every TICKET_EVERY calls, then (a prompt change) every REGRESSED_EVERY:
#: the same spend buys 2.5x fewer tickets.
OUTCOME_KEY = KEYS[2]
TICKET_EVERY, REGRESSED_EVERY = 4.0, 10.0
REGRESSION_AFTER_S = 240.0
#: growth may use the economy tier only; for two minutes one call in five goes to a premium model.
TIER_KEY, PREMIUM_MODEL = KEYS[3], "gpt-4o-2024-08-06"
TIER_AFTER_S, TIER_FOR_S = 60.0, 120.0
#: search's self-hosted embedding endpoint: 2 H100s that scale out 12x for three minutes (a launch), and a
#: reranker's 3 A100s that nobody calls (idle all along: gpu_idle, "could scale down").
SERVING_TEAM, SERVING_ENDPOINT, IDLE_ENDPOINT = "search", "embed-serving", "rerank-gpu"
SERVING_GPUS, SERVING_FACTOR, IDLE_GPUS = 2, 12, 3
SERVING_AFTER_S, SERVING_FOR_S = 200.0, 180.0
SCRAPE_S = 10.0  # every GPU is scraped this often, in the history as live
DEMO_TIERS = {"premium": ["gpt-4o", "claude-*-opus*"], "economy": ["gpt-4o-mini"]}
DEMO_POLICY = [{"team": "growth", "allow": ["economy"]}]
DEMO_OUTCOME_PERIOD_S = 60  # cost per ticket judged each minute, so the demo shows it within minutes
MAX_EVENTS = 2_000_000  # the embedded broker keeps everything: stop long before it matters
HISTORY_S = 90 * 60  # published first, so the detectors have learned what normal looks like
#: Resolved tickets are history for its last half hour only (an endpoint's cost per ticket is tallied from its first
#: ticket): the demo judges cost per ticket each minute, and at the count test's alpha a lucky minute fires about
#: once in 400 (7 in 2,880 minutes of this traffic). With 90 minutes of tickets, 4 of 40 starts replayed showed an
#: unannounced unit_cost_spike before the prompt change (one `make run` did, resolved at once); with 30, none of 40.
TICKET_HISTORY_S = 30 * 60


def daily_factor(ts: float) -> float:
    """Busier in the working day (UTC 14:00 peak), quieter at night: 0.5x to 1.5x."""
    hour = (ts % 86400) / 3600
    return 1.0 + 0.5 * math.cos((hour - 14) / 24 * 2 * math.pi)


def demo_settings(settings: Settings) -> Settings:
    """The demo's tier policy and outcome period, where the user set none of their own."""
    given = settings.model_fields_set
    update: dict[str, Any] = {}
    if "model_tiers" not in given and "tier_policy" not in given:
        update["model_tiers"] = {tier: tuple(patterns) for tier, patterns in DEMO_TIERS.items()}
        update["tier_policy"] = tuple(TierPolicySetting.model_validate(entry) for entry in DEMO_POLICY)
    if "outcome_period_seconds" not in given:
        update["outcome_period_seconds"] = DEMO_OUTCOME_PERIOD_S
    return settings.model_copy(update=update)


def outcome_batch(now: float, elapsed: float, rng: random.Random, seconds: float) -> list[dict[str, Any]]:
    """support/assistant's resolved tickets: a share of its calls, smaller after the regression."""
    every = REGRESSED_EVERY if elapsed >= REGRESSION_AFTER_S else TICKET_EVERY
    rate = OUTCOME_KEY.calls_per_s * daily_factor(now) / every
    return [{"ts": now - rng.uniform(0, seconds), "team": OUTCOME_KEY.team, "endpoint": OUTCOME_KEY.endpoint,
             "outcome": "ticket_resolved", "event_id": f"sim-o-{rng.getrandbits(64):016x}"}
            for _ in range(_poisson(rng, rate * seconds))]


def usage_batch(now: float, elapsed: float, rng: random.Random, seconds: float) -> list[dict[str, Any]]:
    events = []
    for key in KEYS:
        rate = key.calls_per_s * daily_factor(now)
        spiking = key is SPIKE_KEY and SPIKE_AFTER_S <= elapsed < SPIKE_AFTER_S + SPIKE_FOR_S
        if spiking:
            rate *= SPIKE_FACTOR
        off_tier = key is TIER_KEY and TIER_AFTER_S <= elapsed < TIER_AFTER_S + TIER_FOR_S
        for _ in range(_poisson(rng, rate * seconds)):
            looping = spiking and rng.random() < 1 - 1 / SPIKE_FACTOR
            event: dict[str, Any] = {
                "ts": now - rng.uniform(0, seconds), "team": key.team, "endpoint": key.endpoint,
                "model": PREMIUM_MODEL if off_tier and rng.random() < 0.2 else key.model, "provider": None,
                "user": SPIKE_USER if looping else f"{rng.choice(USERS)}@{key.team}",
                "service": "batch" if looping else rng.choice(SERVICES),
                "prompt_tokens": max(1, int(rng.gauss(key.prompt_tokens, key.prompt_tokens * 0.3))),
                "completion_tokens": max(1, int(rng.gauss(key.completion_tokens, key.completion_tokens * 0.3))),
                "event_id": f"sim-{rng.getrandbits(64):016x}",
            }
            if key.own_price is not None:
                prompt_rate, completion_rate = key.own_price
                event["cost_usd"] = round((event["prompt_tokens"] * prompt_rate
                                           + event["completion_tokens"] * completion_rate) / 1e6, 8)
            events.append(event)
    return events


def gpu_batch(now: float, elapsed: float) -> list[dict[str, Any]]:
    """A fine-tune planned for 8 GPUs that doubles to 16 after two minutes, and the serving GPUs."""
    gpus = 8 if elapsed < 120 else 16
    return [{"ts": now, "team": "research", "run_id": "llama-finetune-7", "gpu_id": f"gpu-{i}", "gpu_type": "H100",
             "utilization": 93.0, "interval_s": SCRAPE_S} for i in range(gpus)] + serving_batch(now, elapsed, SCRAPE_S)


def serving_batch(now: float, elapsed: float, interval_s: float) -> list[dict[str, Any]]:
    """Two serving endpoints: one that scales out 12x for three minutes (a launch), one whose GPUs sit idle."""
    scaled = SERVING_FACTOR if SERVING_AFTER_S <= elapsed < SERVING_AFTER_S + SERVING_FOR_S else 1
    busy = [{"ts": now, "team": SERVING_TEAM, "endpoint": SERVING_ENDPOINT, "gpu_id": f"{SERVING_ENDPOINT}-{i}",
             "gpu_type": "H100", "utilization": 71.0, "interval_s": interval_s}
            for i in range(SERVING_GPUS * scaled)]
    idle = [{"ts": now, "team": SERVING_TEAM, "endpoint": IDLE_ENDPOINT, "gpu_id": f"{IDLE_ENDPOINT}-{i}",
             "gpu_type": "A100", "utilization": 2.0, "interval_s": interval_s} for i in range(IDLE_GPUS)]
    return busy + idle


def banner(calls: int, tickets: int) -> str:
    """What the simulator is about to do, one line each: what a newcomer should see fire, and when."""
    return "\n".join([
        f"spendwatch simulator: published {calls} calls and {tickets} resolved tickets of history; live traffic now.",
        "  coming (seconds from now):",
        f"  {TIER_AFTER_S:>5.0f}  {TIER_KEY.team}/{TIER_KEY.endpoint} calls {PREMIUM_MODEL}, a tier its policy does "
        "not allow: model_tier_violation",
        "   ~120  the training run llama-finetune-7 doubles its GPUs: runaway_training",
        f"  {SPIKE_AFTER_S:>5.0f}  a {SPIKE_FACTOR:.0f}x spike on {SPIKE_KEY.team}/{SPIKE_KEY.endpoint} (an agent in "
        "a loop): flash_spike",
        f"  {SERVING_AFTER_S:>5.0f}  {SERVING_TEAM}/{SERVING_ENDPOINT} scales its serving GPUs out {SERVING_FACTOR}x: "
        "flash_spike, cause gpus",
        f"  {REGRESSION_AFTER_S:>5.0f}  {OUTCOME_KEY.team}/{OUTCOME_KEY.endpoint} resolves "
        f"{REGRESSED_EVERY / TICKET_EVERY:.1f}x fewer tickets for the same spend: unit_cost_spike",
        f"  already: {SERVING_TEAM}/{IDLE_ENDPOINT}'s {IDLE_GPUS} serving GPUs sit idle: gpu_idle",
    ])


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:
        return max(0, int(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


async def publish_traffic(brokers: str, settings: Settings, seed: int = 7) -> int:
    """Publish history, then live traffic with a spike and a runaway run; returns how many calls."""
    rng = random.Random(seed)
    started = time.time()
    producer = await start_producer(brokers, settings)
    sent = 0
    try:
        await producer.send_and_wait(settings.runs_topic, orjson.dumps({
            "ts": started, "team": "research", "run_id": "llama-finetune-7", "status": "started",
            "estimated_cost_usd": 40.0, "gpus": 8, "gpu_type": "H100", "expected_hours": 1.0}))
        history, tickets, serving = history_before(started, rng)
        for i in range(0, len(history), 500):
            await producer.send(settings.usage_topic, orjson.dumps(history[i:i + 500]))
        for i in range(0, len(tickets), 500):
            await producer.send(settings.outcomes_topic, orjson.dumps(tickets[i:i + 500]))
        for i in range(0, len(serving), 500):
            await producer.send(settings.gpu_topic, orjson.dumps(serving[i:i + 500]))
        sent += len(history)
        print(banner(len(history), len(tickets)), flush=True)
        while sent < MAX_EVENTS:
            await asyncio.sleep(1.0)
            now, elapsed = time.time(), time.time() - started
            events = usage_batch(now, elapsed, rng, 1.0)
            for i in range(0, len(events), 100):
                await producer.send(settings.usage_topic, orjson.dumps(events[i:i + 100]))
            resolved = outcome_batch(now, elapsed, rng, 1.0)
            if resolved:
                await producer.send(settings.outcomes_topic, orjson.dumps(resolved))
            if int(elapsed) % SCRAPE_S == 0:
                await producer.send(settings.gpu_topic, orjson.dumps(gpu_batch(now, elapsed)))
            sent += len(events)
    finally:
        await producer.stop()
    return sent


def history_before(started: float, rng: random.Random) -> tuple[list[dict[str, Any]], ...]:
    """The calls, resolved tickets and serving GPU samples of the `HISTORY_S` before `started`, each in time order."""
    calls: list[dict[str, Any]] = []
    tickets: list[dict[str, Any]] = []
    serving: list[dict[str, Any]] = []
    for second in range(HISTORY_S, 0, -10):
        calls.extend(usage_batch(started - second, -1.0, rng, 10.0))
        if second <= TICKET_HISTORY_S:
            tickets.extend(outcome_batch(started - second, -1.0, rng, 10.0))
        # Scraped as live, every 10 s: the baseline's hour-of-day profile is learned from the sample count, so
        # history scraped every 30 s tripled the serving endpoint's expected cost at the switch to live, and
        # half the demo's starts missed the scale-out it announces.
        if second % SCRAPE_S == 0:
            serving.extend(serving_batch(started - second, -1.0, SCRAPE_S))
    calls.sort(key=lambda e: e["ts"])
    tickets.sort(key=lambda e: e["ts"])
    return calls, tickets, serving


def attach_simulator(pipeline: Pipeline, seed: int = 7) -> None:
    """Run the simulator inside the worker (`spendwatch run --simulate`) and print windows as they close."""
    app, settings = pipeline.app, pipeline.settings

    @app.task
    async def simulate() -> None:
        await publish_traffic(_bootstrap(app), settings, seed)

    printed: list[str] = []

    @app.timer(10.0)
    async def print_windows() -> None:
        """What a newcomer watches: each endpoint's newest complete window, printed when it changes."""
        lines = []
        for team, ledger in sorted(pipeline.store.teams()):
            for endpoint in sorted(e for e in ledger["accounts"] if e):
                view = spend_view(ledger, team, endpoint, settings.window_seconds)
                if view and len(view["windows"]) >= 2:
                    w = view["windows"][-2]
                    key = f"{team}/{endpoint}"
                    lines.append(f"  {key:<24} {w['start'][11:16]} {w['requests']:>6} calls "
                                 f"{w['prompt_tokens'] + w['completion_tokens']:>10} tokens ${w['cost_usd']:>9.4f}")
        print_if_changed(lines, printed)


def print_if_changed(lines: list[str], printed: list[str]) -> bool:
    """Print the window table unless it is the one printed last (`printed`, updated): the same table every
    10 s buried the alerts."""
    if not lines or lines == printed:
        return False
    printed[:] = lines
    print("spendwatch: last complete window per endpoint\n" + "\n".join(lines), flush=True)
    return True


def _bootstrap(app: Any) -> str:
    return ",".join(f"{url.host}:{url.port}" for url in app.conf.broker)
