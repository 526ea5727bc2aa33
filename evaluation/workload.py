"""A labelled workload for measuring the detectors: days of usage for a dozen-odd keys, with
known spikes, and training runs with known fates.

Background per key (what must NOT alert): Poisson calls at rates from a few an hour to
several a second, a daily cycle, minute-to-minute noise, short legitimate bursts (2-4x
for a few minutes) and one lasting step change (0.5x, 2x or 3x). Injected incidents
(what must alert), from day 2 on: traffic spikes of 10x, 12x, 15x and 20x, model
switches (16x the cost per call) and prompt blow-ups (12x the prompt). Training runs that
end on time, run 3x too long, or double their GPUs.

Every call names its model, provider, user and service, drawn from the key's usual mix (two
models, six users, three services). Each injected spike has a known cause: a traffic spike's
extra calls all come from one user or one service, a model switch moves every call to a
pricier model of another provider, and a prompt blow-up hits every call (no single
contributor). These draws use a generator of their own, so adding them changed no call's time,
tokens or cost.

Rows come out in the replay's row format, sorted by event time, so evaluation runs the
worker's own detection path without JSON in between.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streams.input.kinds import GPU_ORDER, RUNS_ORDER, USAGE_ORDER

T0 = 1_767_571_200.0  # 2026-01-05T00:00:00Z, a Monday
DAY = 86_400.0


@dataclass(frozen=True)
class KeySpec:
    team: str
    endpoint: str
    calls_per_s: float
    prompt_tokens: float
    completion_tokens: float
    usd_per_m_in: float
    usd_per_m_out: float


KEYS = (
    KeySpec("search", "chat-api", 4.0, 1500, 300, 2.5, 10.0),
    KeySpec("search", "rerank", 2.0, 600, 20, 0.15, 0.6),
    KeySpec("support", "assistant", 1.0, 2500, 400, 3.0, 15.0),
    KeySpec("support", "summarize", 0.5, 4000, 300, 3.0, 15.0),
    KeySpec("growth", "email-writer", 0.3, 800, 500, 2.5, 10.0),
    KeySpec("growth", "ab-tests", 0.2, 1200, 200, 15.0, 75.0),
    KeySpec("research", "agent", 0.1, 6000, 1500, 15.0, 75.0),
    KeySpec("research", "eval-harness", 0.05, 3000, 800, 2.5, 10.0),
    KeySpec("legal", "contract-review", 0.02, 20000, 2000, 15.0, 75.0),
    KeySpec("finance", "reports", 0.01, 8000, 1000, 3.0, 15.0),
    KeySpec("hr", "chatbot", 0.005, 1000, 300, 0.15, 0.6),
    KeySpec("ops", "incident-notes", 0.002, 3000, 500, 2.5, 10.0),
    KeySpec("ops", "runbooks", 0.001, 2000, 400, 2.5, 10.0),
    KeySpec("design", "image-captions", 0.0008, 500, 100, 0.15, 0.6),
)


MODELS = (("gpt-4o-mini", "openai"), ("gpt-4o", "openai"), ("claude-3-5-haiku", "anthropic"),
          ("gemini-1.5-flash", "google"))
#: What a model switch moves to: pricier, and from another provider than the key's usual models.
SWITCH_TO = {"openai": ("claude-3-opus", "anthropic"), "anthropic": ("o1", "openai"), "google": ("o1", "openai")}
USER_SHARES = (0.35, 0.25, 0.15, 0.1, 0.1, 0.05)
SERVICES = (("web", 0.6), ("batch", 0.3), ("slack-bot", 0.1))
CAUSE_OF_KIND = {"traffic": "traffic", "model_switch": "model_mix", "prompt_blowup": "tokens_per_call"}


@dataclass(frozen=True)
class Spike:
    team: str
    endpoint: str
    kind: str  # traffic, model_switch, prompt_blowup
    factor: float
    start: float
    end: float
    eligible: bool  # big enough to pass the minimum spend or tokens a window
    expected_calls: float  # a window's calls at its start, without the spike
    # What was injected: (dimension, value) of the user or service that surged, or the model switched to;
    # None for a prompt blow-up on every call.
    contributor: tuple[str, str] | None = None

    @property
    def cause(self) -> str:
        return CAUSE_OF_KIND[self.kind]


@dataclass
class KeyMix:
    """A key's usual attribution, and per minute what a spike changes in it."""

    models: list[tuple[str, str]]
    model_shares: tuple[float, float]
    users: list[str]
    surge_share: np.ndarray  # per minute: the share of calls that are a traffic spike's extra
    surge_to: list[tuple[str, str] | None]  # per minute: (dimension, value) those extra calls carry
    switch_to: list[tuple[str, str] | None]  # per minute: (model, provider) every call moved to


@dataclass(frozen=True)
class TrainingRun:
    run_id: str
    fate: str  # on_time, too_long, doubled
    start: float
    estimate_usd: float
    expected_hours: float
    change_at: float | None  # when GPUs double or the planned end is overrun
    cost_curve: tuple[tuple[float, float], ...]  # (ts, cost so far) per sample time


@dataclass
class Workload:
    rows: list[tuple[float, int, int, str, list[Any]]] = field(default_factory=list)
    spikes: list[Spike] = field(default_factory=list)
    runs: list[TrainingRun] = field(default_factory=list)
    days: float = 0.0
    keys: int = 0


def generate(seed: int, days: int = 4, min_usd: float = 1.0, min_tokens: float = 100_000,
             window_s: int = 60, with_runs: bool = True) -> Workload:
    rng = np.random.default_rng(seed)
    attribution_rng = np.random.default_rng(seed + 1_000_003)  # its own draws: the calls stay as they were
    workload = Workload(days=days, keys=len(KEYS))
    minutes = int(days * DAY // 60)
    minute_ts = T0 + np.arange(minutes) * 60.0
    for key in KEYS:
        rate = np.full(minutes, key.calls_per_s * 60.0)
        peak_hour = rng.uniform(10, 18)
        hours = (minute_ts % DAY) / 3600.0
        rate *= 1.0 + 0.5 * np.cos((hours - peak_hour) / 24.0 * 2 * math.pi)
        rate *= rng.lognormal(0.0, 0.2, minutes)  # minute-to-minute noise
        step_at = int(rng.uniform(1.2, 3.5) * DAY / 60)
        step = float(rng.choice([0.5, 2.0, 3.0]))
        rate[step_at:] *= step
        for _ in range(2 * days):  # legitimate short bursts
            at, length = int(rng.integers(0, minutes - 10)), int(rng.integers(2, 8))
            rate[at:at + length] *= rng.uniform(2.0, 4.0)
        prompt_factor = np.ones(minutes)
        cost_factor = np.ones(minutes)
        mix = _key_mix(key, attribution_rng, minutes)
        for spike_index in range(3):
            kind = ("traffic", "model_switch", "prompt_blowup", "traffic")[(spike_index + int(rng.integers(0, 4))) % 4]
            slot = (days - 1.3) * DAY / 3  # three slots between day 1.1 and the last hours
            begin = T0 + 1.1 * DAY + spike_index * slot + float(rng.uniform(0, slot - 3600))
            duration = float(rng.uniform(10, 30)) * 60
            first, last = int((begin - T0) // 60), int((begin + duration - T0) // 60)
            contributor: tuple[str, str] | None = None
            if kind == "traffic":
                factor = float(rng.choice([10.0, 12.0, 15.0, 20.0]))
                # The begin minute is partial: scale it by the share of it inside the spike.
                share = 1.0 - ((begin - T0) % 60) / 60.0
                rate[first] *= 1 + (factor - 1) * share
                rate[first + 1:last + 1] *= factor
                mix.surge_share[first] = (factor - 1) * share / (1 + (factor - 1) * share)
                mix.surge_share[first + 1:last + 1] = (factor - 1) / factor
                if attribution_rng.random() < 0.5:  # a user who is not the key's biggest, or a smaller service
                    contributor = ("user", mix.users[int(attribution_rng.integers(1, len(mix.users)))])
                else:
                    contributor = ("service", SERVICES[int(attribution_rng.integers(1, len(SERVICES)))][0])
                mix.surge_to[first:last + 1] = [contributor] * (last + 1 - first)
            elif kind == "model_switch":
                factor = 16.0
                cost_factor[first:last + 1] = factor
                switched = SWITCH_TO[mix.models[0][1]]
                contributor = ("model", switched[0])
                mix.switch_to[first:last + 1] = [switched] * (last + 1 - first)
            else:
                factor = 12.0
                prompt_factor[first:last + 1] = factor
            expected_calls = key.calls_per_s * window_s * _daily(begin, peak_hour) * (step if first >= step_at else 1.0)
            expected_cost = expected_calls * _call_cost(key)
            expected_tokens = expected_calls * (key.prompt_tokens + key.completion_tokens)
            if kind == "traffic":
                spike_cost, spike_tokens = expected_cost * factor, expected_tokens * factor
            elif kind == "model_switch":
                spike_cost, spike_tokens = expected_cost * factor, expected_tokens
            else:
                prompt_share = key.prompt_tokens / (key.prompt_tokens + key.completion_tokens)
                spike_tokens = expected_tokens * (prompt_share * factor + 1 - prompt_share)
                spike_cost = expected_calls * (key.prompt_tokens * factor * key.usd_per_m_in
                                               + key.completion_tokens * key.usd_per_m_out) / 1e6
            eligible = (spike_cost >= 2 * min_usd or spike_tokens >= 2 * min_tokens) and expected_calls >= 0.5
            workload.spikes.append(Spike(key.team, key.endpoint, kind, factor, begin, begin + duration, eligible,
                                         expected_calls, contributor))
        _emit_calls(workload, key, rng, minute_ts, rate, prompt_factor, cost_factor, mix, attribution_rng)
    if with_runs:
        for index, fate in enumerate(["on_time", "too_long", "doubled"] * 3):
            _emit_run(workload, rng, f"run-{seed}-{index}", fate, T0 + DAY * (0.5 + index * 0.35))
    workload.rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return workload


def _noisy_daily_rate(rng: np.random.Generator, per_minute: float, minute_ts: np.ndarray) -> np.ndarray:
    """Calls a minute with a daily cycle peaking between 08:00 and 20:00, and minute-to-minute noise."""
    peak_hour = rng.uniform(8, 20)
    rate = per_minute * np.array([_daily(float(t), peak_hour) for t in minute_ts])
    return rate * rng.lognormal(0.0, 0.2, len(minute_ts))


def _daily(ts: float, peak_hour: float) -> float:
    return 1.0 + 0.5 * math.cos(((ts % DAY) / 3600.0 - peak_hour) / 24.0 * 2 * math.pi)


def _call_cost(key: KeySpec) -> float:
    return (key.prompt_tokens * key.usd_per_m_in + key.completion_tokens * key.usd_per_m_out) / 1e6


def _key_mix(key: KeySpec, rng: np.random.Generator, minutes: int) -> KeyMix:
    first = int(rng.integers(0, len(MODELS)))
    second = (first + 1 + int(rng.integers(0, len(MODELS) - 1))) % len(MODELS)
    users = [f"{key.team}-user-{i}" for i in range(len(USER_SHARES))]
    return KeyMix([MODELS[first], MODELS[second]], (0.85, 0.15), users, np.zeros(minutes),
                  [None] * minutes, [None] * minutes)


def _attribution(mix: KeyMix, rng: np.random.Generator, minute_of: np.ndarray) -> list[tuple[str, str, str, str]]:
    """(model, provider, user, service) per call: the usual mix, then what a spike changes."""
    calls = len(minute_of)
    model_at = rng.choice(len(mix.models), calls, p=mix.model_shares)
    user_at = rng.choice(len(mix.users), calls, p=USER_SHARES)
    service_at = rng.choice(len(SERVICES), calls, p=[share for _, share in SERVICES])
    surging = rng.random(calls) < mix.surge_share[minute_of]
    out = []
    for i, minute in enumerate(minute_of.tolist()):
        model, provider = mix.switch_to[minute] or mix.models[model_at[i]]
        user, service = mix.users[user_at[i]], SERVICES[service_at[i]][0]
        surge = mix.surge_to[minute]
        if surging[i] and surge is not None:
            if surge[0] == "user":
                user = surge[1]
            else:
                service = surge[1]
        out.append((model, provider, user, service))
    return out


def _emit_calls(workload: Workload, key: KeySpec, rng: np.random.Generator, minute_ts: np.ndarray,
                rate: np.ndarray, prompt_factor: np.ndarray, cost_factor: np.ndarray, mix: KeyMix,
                attribution_rng: np.random.Generator) -> None:
    counts = rng.poisson(rate)
    minute_of = np.repeat(np.arange(len(counts)), counts)
    ts = minute_ts[minute_of] + rng.uniform(0, 60, len(minute_of))
    prompt = np.maximum(1, rng.lognormal(math.log(key.prompt_tokens), 0.4, len(ts)) * prompt_factor[minute_of])
    completion = np.maximum(1, rng.lognormal(math.log(key.completion_tokens), 0.4, len(ts)))
    prompt, completion = prompt.astype(np.int64), completion.astype(np.int64)
    cost = (prompt * key.usd_per_m_in + completion * key.usd_per_m_out) / 1e6 * cost_factor[minute_of]
    rows = workload.rows
    start = len(rows)
    attribution = _attribution(mix, attribution_rng, minute_of)
    columns = zip(ts.tolist(), prompt.tolist(), completion.tolist(), cost.tolist(), attribution, strict=True)
    for i, (t, p, c, usd, (model, provider, user, service)) in enumerate(columns):
        rows.append((t, USAGE_ORDER, start + i, key.team,
                     [0, key.endpoint, t, p, c, usd, 0, 0, model, user, service, "", provider]))


def _emit_run(workload: Workload, rng: np.random.Generator, run_id: str, fate: str, start: float) -> None:
    gpus, price = int(rng.choice([8, 16, 32])), 4.0
    hours = float(rng.uniform(4, 10))
    estimate = gpus * hours * price
    if fate == "on_time":
        actual_hours, change_at = hours * float(rng.uniform(0.95, 1.15)), None
    elif fate == "too_long":
        actual_hours, change_at = hours * 3.0, start + hours * 3600
    else:
        actual_hours, change_at = hours, start + hours * 3600 * float(rng.uniform(0.25, 0.5))
    workload.rows.append((start, RUNS_ORDER, 0, "research",
                          [0, run_id, "started", start, estimate, None, gpus, "H100", hours]))
    curve: list[tuple[float, float]] = []
    cost, t, step = 0.0, start, 60.0
    while t < start + actual_hours * 3600:
        active = gpus * 2 if fate == "doubled" and change_at is not None and t >= change_at else gpus
        for gpu in range(active):
            workload.rows.append((t, GPU_ORDER, gpu, "research",
                                  [0, run_id, f"gpu-{gpu}", t, "H100", price, None, 95.0, ""]))
        if t > start:
            cost += active * price * step / 3600
        curve.append((t, cost))
        t += step
    workload.rows.append((t, RUNS_ORDER, 1, "research", [0, run_id, "finished", t, None, None, None, None, None]))
    workload.runs.append(TrainingRun(run_id, fate, start, estimate, hours, change_at, tuple(curve)))


@dataclass(frozen=True)
class MeteredSeries:
    team: str
    endpoint: str
    period_s: int
    median_usd: float  # a period's typical amount
    spread: float  # the median change from one period to the next, larger over smaller (3-5x)


def generate_metered(seed: int, days: int = 14, period_s: int = 300, series: int = 8,
                     with_jumps: bool = True) -> Workload:
    """Lumpy metered series: one event per period carrying the whole period's cost, as a cloud
    meter or a bill line does, with a mild daily cycle. The amount varies 3-5x from one period
    to the next (the median of larger over smaller): lognormal with sigma = ln(3 to 5) / 0.954,
    since |N(0, 2 sigma^2)| has median 0.954 sigma. So a period at 10x the mean comes by chance
    about once a day on a 5-minute meter. With `with_jumps`, each series gets three 10-20x jumps
    of 12 to 36 periods, from day 2 on; every jump counts as eligible.
    """
    rng = np.random.default_rng(seed)
    periods = int(days * DAY // period_s)
    workload = Workload(days=days, keys=series)
    for index in range(series):
        spec = MeteredSeries("metered", f"meter-{index}", period_s, float(rng.uniform(2.0, 20.0)),
                             float(rng.uniform(3.0, 5.0)))
        starts = T0 + np.arange(periods) * float(period_s)
        log_amount = math.log(spec.spread) / 0.954 * rng.standard_normal(periods)
        peak_hour = rng.uniform(8, 20)
        log_amount += np.log([_daily(float(t), peak_hour) for t in starts])
        factor = np.ones(periods)
        if with_jumps:
            slot = (days - 1.5) * DAY / 3
            for jump in range(3):
                begin = T0 + 1.2 * DAY + jump * slot + float(rng.uniform(0, slot - DAY / 4))
                first = int((begin - T0) // period_s)
                length = int(rng.integers(12, 37))
                size = float(rng.choice([10.0, 12.0, 15.0, 20.0]))
                factor[first:first + length] = size
                workload.spikes.append(Spike(spec.team, spec.endpoint, "traffic", size, float(starts[first]),
                                             float(starts[first] + length * period_s), True, 1.0))
        amounts = spec.median_usd * np.exp(log_amount) * factor
        # The meter reports a few seconds after its period ends: inside the next window, one event each.
        stamps = starts + period_s + rng.uniform(1.0, 20.0, periods)
        for i, (t, usd) in enumerate(zip(stamps.tolist(), amounts.tolist(), strict=True)):
            workload.rows.append((t, USAGE_ORDER, i, spec.team,
                                  [0, spec.endpoint, t, 0, 0, round(usd, 6), 0, 0, "cloud-meter", "", "", "", ""]))
    workload.rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return workload


#: Keys for the price-jump and slow-surge sections: (calls a minute, prompt tokens, completion tokens).
PRICE_KEY_RATES = (0.5, 1.0, 2.0, 5.0, 20.0, 200.0)
SLOW_KEY_RATES = (0.5, 1.0, 2.0, 3.0, 5.0)


def _usage_rows(workload: Workload, team: str, endpoint: str, rng: np.random.Generator, rate: np.ndarray,
                cost_factor: np.ndarray, models: tuple[str, str], switched: np.ndarray) -> None:
    """Poisson calls at `rate` a minute, gpt-4o-like tokens, 85/15 two models (the second 4x pricier);
    `cost_factor` multiplies a minute's cost per call, `switched` marks minutes on a third model."""
    counts = rng.poisson(rate)
    minute_of = np.repeat(np.arange(len(counts)), counts)
    ts = T0 + minute_of * 60.0 + rng.uniform(0, 60, len(minute_of))
    prompt = np.maximum(1, rng.lognormal(math.log(1500), 0.4, len(ts))).astype(np.int64)
    completion = np.maximum(1, rng.lognormal(math.log(300), 0.4, len(ts))).astype(np.int64)
    second = rng.random(len(ts)) < 0.15
    cost = (prompt * 2.5 + completion * 10.0) / 1e6 * np.where(second, 4.0, 1.0) * cost_factor[minute_of]
    start = len(workload.rows)
    for i, (t, p, c, usd, two, minute) in enumerate(zip(ts.tolist(), prompt.tolist(), completion.tolist(),
                                                        cost.tolist(), second.tolist(), minute_of.tolist(),
                                                        strict=True)):
        model = "o1" if switched[minute] else models[1 if two else 0]
        workload.rows.append((t, USAGE_ORDER, start + i, team,
                              [0, endpoint, t, p, c, usd, 0, 0, model, "", "", "", ""]))


def generate_price_jumps(seed: int, days: int = 2) -> Workload:
    """Issue 39, failure mode 1: cost per call jumps 5-40x for 20-60 minutes with the calls unchanged,
    on keys from 0.5 to 200 calls a minute (daily cycle, minute noise). Half are model switches
    (every call on a pricier model: cause model_mix), half prompt blow-ups priced per token the same
    (cause tokens_per_call is told by the tokens: here only the price moves, so all are model_mix)."""
    rng = np.random.default_rng(seed)
    minutes = int(days * DAY // 60)
    workload = Workload(days=days, keys=2 * len(PRICE_KEY_RATES))
    minute_ts = T0 + np.arange(minutes) * 60.0
    for index in range(workload.keys):
        per_minute = PRICE_KEY_RATES[index % len(PRICE_KEY_RATES)]
        rate = _noisy_daily_rate(rng, per_minute, minute_ts)
        cost_factor, switched = np.ones(minutes), np.zeros(minutes, dtype=bool)
        for jump in range(2):
            begin = T0 + 1.0 * DAY + jump * 0.45 * DAY + float(rng.uniform(0, 0.3 * DAY))
            first, length = int((begin - T0) // 60), int(rng.integers(20, 61))
            factor = float(rng.choice([5.0, 8.0, 16.0, 33.0, 40.0]))
            cost_factor[first:first + length] = factor
            switched[first:first + length] = True
            start = float(minute_ts[first])
            workload.spikes.append(Spike("prices", f"key-{index}", "model_switch", factor, start,
                                         start + length * 60.0, True, per_minute, ("model", "o1")))
        _usage_rows(workload, "prices", f"key-{index}", rng, rate, cost_factor, ("gpt-4o-mini", "gpt-4o"),
                    switched)
    workload.rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return workload


def generate_slow_surges(seed: int, factors: tuple[float, ...], days: int = 2) -> Workload:
    """Issue 39, failure mode 2: traffic surges of `factors` for 15-30 minutes on keys of 0.5-5 calls a
    minute (two surges a key, from day 2; daily cycle, minute noise)."""
    rng = np.random.default_rng(seed)
    minutes = int(days * DAY // 60)
    workload = Workload(days=days, keys=2 * len(SLOW_KEY_RATES))
    minute_ts = T0 + np.arange(minutes) * 60.0
    for index in range(workload.keys):
        per_minute = SLOW_KEY_RATES[index % len(SLOW_KEY_RATES)]
        rate = _noisy_daily_rate(rng, per_minute, minute_ts)
        for surge in range(2):
            begin = T0 + 1.0 * DAY + surge * 0.45 * DAY + float(rng.uniform(0, 0.3 * DAY))
            first, length = int((begin - T0) // 60), int(rng.integers(15, 31))
            factor = float(rng.choice(factors))
            expected = float(rate[first - 30:first].mean())
            rate[first:first + length] *= factor
            start = float(minute_ts[first])
            workload.spikes.append(Spike("slow", f"key-{index}", "traffic", factor, start, start + length * 60.0,
                                         True, expected))
        _usage_rows(workload, "slow", f"key-{index}", rng, rate, np.ones(minutes), ("gpt-4o-mini", "gpt-4o"),
                    np.zeros(minutes, dtype=bool))
    workload.rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return workload


def generate_bursty_metered(seed: int, days: int = 14, period_s: int = 3600, series: int = 8,
                            with_steps: bool = True) -> Workload:
    """Issue 39, failure mode 3: metered series (one event a period carrying its cost, lognormal noise
    sigma 0.5) whose normal life holds bursts of 3-8x for 1-3 periods recurring irregularly (a few a
    day, clustered), plus with `with_steps` two injected lasting 10x steps of 12-36 periods each."""
    rng = np.random.default_rng(seed)
    periods = int(days * DAY // period_s)
    workload = Workload(days=days, keys=series)
    per_day = DAY / period_s
    for index in range(series):
        endpoint = f"bursty-{index}"
        starts = T0 + np.arange(periods) * float(period_s)
        log_amount = 0.5 * rng.standard_normal(periods)
        factor = np.ones(periods)
        at = 0
        while True:  # gaps between bursts: exponential, a mean of a third to one and a half days
            at += int(rng.exponential(rng.uniform(0.33, 1.5) * per_day)) + 1
            if at >= periods:
                break
            factor[at:at + int(rng.integers(1, 4))] *= rng.uniform(3.0, 8.0)
        if with_steps:
            for step in range(2):
                first = int((2.0 + step * 6.0 + float(rng.uniform(0, 4.0))) * per_day)
                length = int(rng.integers(12, 37))
                factor[first:first + length] = 10.0
                workload.spikes.append(Spike("metered", endpoint, "traffic", 10.0, float(starts[first]),
                                             float(starts[first] + length * period_s), True, 1.0))
        amounts = float(rng.uniform(2.0, 20.0)) * np.exp(log_amount) * factor
        stamps = starts + period_s + rng.uniform(1.0, 20.0, periods)
        for i, (t, usd) in enumerate(zip(stamps.tolist(), amounts.tolist(), strict=True)):
            workload.rows.append((t, USAGE_ORDER, i, "metered",
                                  [0, endpoint, t, 0, 0, round(usd, 6), 0, 0, "cloud-meter", "", "", "", ""]))
    workload.rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return workload
