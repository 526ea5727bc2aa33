"""The per-call price test (issue 39): a jump in what each call costs fires whatever the count of calls does."""

from __future__ import annotations

import math
import random

import orjson

from detectors.price import CallPrice
from detectors.spike import FlashSpikeDetector, SpikeRule

# Statistics only, as `make eval`'s quiet and issue-39 sections: a quiet key's calls cost cents.
RULE = SpikeRule(window_s=60, grace_period=30, min_usd=0.0, min_tokens=0)


def calls(minutes: range, per_minute: float, seed: int, price=lambda rng, minute: (1.0, 1.0, "mini")):
    """(ts, tokens, cost, model) of Poisson calls, each about $0.01 and 2000 tokens with lognormal noise;
    `price(rng, minute)`: (tokens factor, cost factor, model) of a call."""
    rng = random.Random(seed)
    out = []
    for minute in minutes:
        for ts in sorted(minute * 60 + rng.uniform(0, 60) for _ in range(60) if rng.random() < per_minute / 60):
            tokens_factor, cost_factor, model = price(rng, minute)
            noise = math.exp(rng.gauss(0, 0.35))
            out.append((ts, 2000 * noise * tokens_factor, 0.01 * noise * cost_factor, model))
    return out


def run(detector: FlashSpikeDetector, stream, end_minute: int):
    verdicts = []
    minute = None
    for ts, tokens, cost, model in stream:
        while minute is not None and minute * 60 + 60 + RULE.settle_s <= ts:
            verdicts += detector.advance(minute * 60 + 60 + RULE.settle_s)
            minute += 1
        minute = int(ts // 60) if minute is None else minute
        verdict = detector.observe(ts, tokens, cost, (model, "", "", "", ""))
        if verdict:
            verdicts.append(verdict)
    for later in range(minute or 0, end_minute):
        verdicts += detector.advance(later * 60 + 60 + RULE.settle_s)
    return verdicts


def switch(start: int, end: int, factor: float, model: str = "o1", tokens: bool = False):
    def price(rng, minute):
        if start <= minute < end:
            return (factor if tokens else 1.0), factor, (model if not tokens else "mini")
        return 1.0, 1.0, "mini"
    return price


def test_model_switch_on_a_quiet_key_fires_on_price_alone():
    """Issue 39, failure mode 1: a call every two minutes, the model 33x dearer for an hour, calls unchanged.
    Before the price test the count test (which must prove traffic on a quiet key) never let it fire."""
    detector = FlashSpikeDetector("t", "quiet", RULE)
    verdicts = run(detector, calls(range(0, 720), 0.5, 1, switch(600, 660, 33.0)), 740)
    firing = [v for v in verdicts if v.status == "firing"]
    assert len(firing) == 1
    assert 600 * 60 <= firing[0].ts <= 610 * 60  # within 10 minutes on a key under 2 calls a minute
    assert firing[0].cause == "model_mix" and firing[0].ratio > 10
    assert firing[0].contributors and firing[0].contributors[0]["value"] == "o1"
    resolved = [v for v in verdicts if v.status == "resolved"]
    assert len(resolved) == 1 and resolved[0].ts > 660 * 60  # not before the calls are cheap again


def test_prompt_blowup_on_a_quiet_key_names_tokens_per_call():
    detector = FlashSpikeDetector("t", "quiet", RULE)
    verdicts = run(detector, calls(range(0, 660), 0.5, 2, switch(600, 640, 16.0, tokens=True)), 680)
    firing = [v for v in verdicts if v.status == "firing"]
    assert len(firing) == 1 and firing[0].cause == "tokens_per_call"
    assert 600 * 60 <= firing[0].ts <= 610 * 60


def test_a_key_that_mixes_a_cheap_and_a_dear_model_does_not_fire():
    """15% of the calls on a model 8x dearer: each model's price is learned, so the dear calls are no jump."""
    def mixed(rng, minute):
        return (1.0, 8.0, "dear") if rng.random() < 0.15 else (1.0, 1.0, "mini")
    detector = FlashSpikeDetector("t", "mixed", RULE)
    assert not [v for v in run(detector, calls(range(0, 24 * 60), 2.0, 3, mixed), 24 * 60 + 5)
                if v.status == "firing"]


def test_price_state_restored_from_json_judges_the_same():
    """Replay and the live worker must agree: a detector restored mid-jump from its JSON state goes on alike."""
    stream = calls(range(0, 360), 1.0, 4, switch(300, 340, 20.0))
    whole = FlashSpikeDetector("t", "k", RULE)
    expected = run(whole, stream, 380)
    cut = next(i for i, call in enumerate(stream) if call[0] >= 302 * 60)
    first = FlashSpikeDetector("t", "k", RULE)
    got = run(first, stream[:cut], 0)
    state = orjson.loads(orjson.dumps(first.to_state()))
    assert "price" in state
    got += run(FlashSpikeDetector("t", "k", RULE, state), stream[cut:], 380)
    assert [(v.status, v.ts, v.cause) for v in got] == [(v.status, v.ts, v.cause) for v in expected]


def test_calls_without_tokens_are_not_priced():
    """A meter's event carries a period, not a call: its amount is the lumpy-spend test's business."""
    price = CallPrice()
    assert not price.observe(0.0, "cloud-meter", 0, 5.0, learn=True, ratio=3.0)
    assert price.to_state() is None


def test_a_busy_key_moving_to_a_new_model_5x_dearer_is_proven_by_its_calls():
    """A busy key, 85/15 on a cheap and a 4x dearer model for 8,000 calls, then every call on a model new to the key
    at 5x. The new model is judged against the key's usual call weighted by each model's share of the calls:
    weighted by calls learned (capped at 1,000 each) the mix read 50/50, its usual call 2x too dear; and the new
    model's dear calls in a row are not learned as its own price (trusted after 20) before they prove the jump."""
    rng = random.Random(7)
    price = CallPrice()

    def call(ts: float, factor: float, model: str | None = None) -> None:
        dear = rng.random() < 0.15
        cost = 0.01 * (4.0 if dear else 1.0) * factor * math.exp(rng.gauss(0, 0.35))
        price.observe(ts, model or ("dear" if dear else "mini"), 2000, cost, learn=True, ratio=3.0)

    for i in range(8000):
        call(i * 3.0, 1.0)
    assert price.test(alpha=1e-6, ratio=3.0, min_calls=12) is None
    mean, _variance = price.reference("o1")
    assert abs(mean - (math.log(0.01) + 0.15 * math.log(4.0))) < 0.15  # 85/15, not 50/50
    for i in range(30):
        call(24000.0 + i * 3.0, 5.0, "o1")
    jump = price.test(alpha=1e-6, ratio=3.0, min_calls=12)
    assert jump is not None and 3.5 < jump.cost / jump.usual_cost < 7.0
    assert not price.trusted("o1")

def test_a_state_without_model_shares_still_judges():
    """States written before the shares were kept: each model weighs by its calls learned."""
    price = CallPrice({"m": {"mini": [850, math.log(0.01), 0.1], "dear": [150, math.log(0.04), 0.1]}})
    mean, _variance = price.reference("o1")
    assert math.isclose(mean, 0.85 * math.log(0.01) + 0.15 * math.log(0.04))


def test_the_count_of_calls_since_a_dear_one_judges_as_a_look_at_every_kept_call():
    """`test` skips its walk while no kept call's excess reaches the bar, by a count kept beside the calls; a twin
    restored from the state after every call counts afresh from the calls themselves. They must always agree,
    through dear runs, lone dear calls, forgotten incidents and a bar that changes."""
    rng = random.Random(5)
    price = CallPrice()
    found = 0
    for n in range(4000):
        dear = 40.0 if n % 400 >= 380 or rng.random() < 0.02 else 1.0  # a run of 20 dear calls every 400
        price.observe(float(n), rng.choice(["mini", "mini", "o1"]), 1000, 0.001 * dear * rng.uniform(0.8, 1.25),
                      learn=True, ratio=3.0)
        if rng.random() < 0.01:
            price.forget_calls()
        ratio = 3.0 if rng.random() < 0.9 else 50.0
        twin = CallPrice(orjson.loads(orjson.dumps(price.to_state() or {})))
        jump = price.test(1e-3, ratio, window_s=5.0, min_calls=1)
        assert jump == twin.test(1e-3, ratio, window_s=5.0, min_calls=1)
        found += jump is not None
    assert found >= 20


def test_observe_answers_whether_any_kept_call_reaches_the_bar():
    """`observe` returns `may_jump` for the ratio it was given (the detector asks `test` only then): whether any
    kept call's excess reaches the bar, as a look at every kept call says, through dear runs, forgotten incidents and
    a bar that changes."""
    rng = random.Random(9)
    price = CallPrice()
    answers = []
    for n in range(3000):
        dear = 40.0 if n % 300 >= 290 or rng.random() < 0.02 else 1.0
        ratio = 3.0 if rng.random() < 0.9 else 50.0
        cost = 0.001 * dear * rng.uniform(0.8, 1.25)
        answer = price.observe(float(n), rng.choice(["mini", "mini", "o1"]), 1000, cost, learn=True, ratio=ratio)
        assert answer == any(call[1] >= math.log(ratio) for call in price.recent)
        answers.append(answer)
        if rng.random() < 0.01:
            price.forget_calls()
    assert 100 < sum(answers) < 2000


def test_a_restored_twin_learns_exactly_as_the_price_in_memory():
    """Prices are rounded as learned and the shares fade only where read: a twin restored from JSON before any call
    must learn that call into exactly the same numbers (the live worker equals replay), over four models and a
    fifth that takes the least used one's place."""
    rng = random.Random(11)
    price = CallPrice()
    models = ["mini", "o1", "haiku", "sonnet", "opus"]
    evicted = 0
    for n in range(3000):
        model = rng.choice(["mini", "mini", "mini", "o1", "haiku", "sonnet"] + (["opus"] if n > 2000 else []))
        cost = 0.001 * (1 + models.index(model)) * rng.uniform(0.7, 1.4)
        tokens = rng.randint(100, 900)
        evicted += len(price.models) == 4 and model not in price.models
        twin = CallPrice(orjson.loads(orjson.dumps(price.to_state() or {})))
        for copy in (price, twin):
            copy.observe(float(n), model, tokens, cost, learn=True, ratio=3.0)
        assert orjson.dumps(twin.to_state()) == orjson.dumps(price.to_state())
    assert evicted > 100  # five models in turn: each new one took the least used one's place


def test_shares_faded_where_read_are_those_faded_on_every_call():
    """A model's share is its exponentially weighted part of the key's calls learned, whenever it was last called."""
    rng = random.Random(3)
    price, eager = CallPrice(), {"mini": 0.0, "o1": 0.0, "haiku": 0.0}
    for n in range(2000):
        model = rng.choices(list(eager), [0.7, 0.2, 0.1])[0]
        price.observe(float(n), model, 1000, 0.001, learn=True, ratio=3.0)
        eager = {name: share * 0.99 + (0.01 if name == model else 0.0) for name, share in eager.items()}
    for name, share in eager.items():
        assert math.isclose(price.share(price.models[name]), share, abs_tol=1e-4)
    assert math.isclose(sum(eager.values()), 1.0, abs_tol=1e-6)
