"""What a key's calls cost, and whether the latest calls cost more: the per-call price test (issue 39).

A model switch or a prompt blow-up on a quiet key moves the price of each call, not the number
of calls, so the Poisson count test (which proves traffic) cannot see it. Here each key learns
the log of its cost per call, per model (a key that mixes a cheap and a dear model would
otherwise look like one very noisy price): an exponentially weighted mean and variance, as
`detectors/spread.py` learns a window's spend. A call of a model the key has not used is judged
against the key's usual call: the mean over its models weighted by their share of its recent calls,
with the spread of all its calls. Such a model's dear calls in a row are not learned as its own
price (else, on a busy key, a jump's first 20 calls would make the new model's price the usual one
before they proved it); a dear call that comes alone is (a dear model used now and then is no jump).

Each call's excess `d = ln(cost) - mean` and its variance `var` are kept for the newest
`RUN_CALLS` calls. The test looks at the newest n of them, n at least `MIN_CALLS` and at least a
window's expected calls (a busy key's calls are tested thousands of times a day: a jump there must
hold for a window's calls, up to `RUN_CALLS`): the jump is proven when
`sum(d) / sqrt(sum(var)) >= Z` (Z the normal quantile of the detector's alpha: 4.75 for 1e-6,
the significance coming from the number of calls at the new price) and sized when
`mean(d) >= ln(price_ratio)`. However few the calls, their prices prove the jump.

Calls with no tokens (a meter's event carries a period, not a call) or no cost are not tested.

>>> price = CallPrice()
>>> for i in range(220):
...     _ = price.observe(float(i), "mini", 1000, 0.001 * (1.2 if i % 2 else 0.85), learn=True, ratio=3.0)
>>> price.test(alpha=1e-6, ratio=3.0) is None
True
>>> _ = price.observe(220.0, "o1", 1000, 0.016, learn=True, ratio=3.0)
>>> _ = price.observe(281.0, "o1", 1000, 0.017, learn=True, ratio=3.0)
>>> jump = price.test(alpha=1e-6, ratio=3.0)
>>> jump.calls, round(jump.cost / jump.usual_cost)
(2, 16)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any

from detectors.rounding import decimals

#: The newest calls kept for the test (state: a few floats each).
RUN_CALLS = 12
#: The fewest calls that prove a jump: one dear call is a call, two in a row are a price.
MIN_CALLS = 2
#: Calls of a model learned before its price is trusted (fewer: the key's usual call stands in).
MODEL_GRACE = 20
#: Calls of the key learned before any is judged: its usual call must know the models it uses now and then.
KEY_GRACE = 200
#: Models learned per key; the least used of late goes when a new one comes.
MAX_MODELS = 4
#: The least spread a price is given: a fixed-price key's calls still vary with their tokens.
MIN_SD = 0.15
MIN_VARIANCE = MIN_SD ** 2
#: Dear calls in a row not learned (a jump in the making) before they are learned anyway (a lasting change).
ADAPT_CALLS = 60


@dataclass(frozen=True, slots=True)
class PriceJump:
    """The dear calls of the newest run: how many, what they cost, what they would usually have cost, their
    tokens, and when the run began."""

    calls: int
    cost: float
    usual_cost: float
    tokens: float
    since: float


class CallPrice:
    """Per model: [calls learned, mean ln(cost per call), its variance, its share]; the newest calls' excess."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        # Per model: [calls learned (capped), mean ln(cost), its variance, share of the key's recent calls as of its
        # latest call, the key's calls learned by then]. A share fades with every call of the key, but is worked
        # out only where it is read (`share`): fading every model's on every call was a tenth of a busy replay.
        self.models: dict[str, list[float]] = state.get("m", {})
        self.learned: int = state.get("n", 0)  # calls learned, all models
        _add_shares(self.models)
        # [ts, excess d, its variance, tokens, cost] per call, newest last; only the excess rounded until read
        # (`_settled`): a list as restored, a tuple as observed.
        self.recent: list[Any] = state.get("r", [])
        self.streak: int = state.get("s", 0)  # dear calls in a row (not learned, but a new model's first)
        # Not state (derived from `recent`): the bar of the last test, and how many kept calls came after the newest
        # whose excess reached it (None: not known yet). No run's mean excess can reach a bar no call's does, so a
        # busy key's test needs no look at its kept calls while that count says none of them is left.
        self._dear_bar: float | None = None
        self._since_dear: int | None = None

    def to_state(self) -> dict[str, Any] | None:
        if not self.models:
            return None
        state: dict[str, Any] = {"m": self.models, "n": self.learned}
        if self.recent:
            state["r"] = self._settled()
        if self.streak:
            state["s"] = self.streak
        return state

    def reference(self, model: str) -> tuple[float, float] | None:
        """(mean, variance) of ln(cost) for a call of `model`; None: too little learned to judge."""
        learned = self.models.get(model)
        if learned is not None and learned[0] >= MODEL_GRACE:
            return learned[1], max(learned[2], MIN_VARIANCE)
        if sum(entry[0] for entry in self.models.values()) < KEY_GRACE:
            return None
        # Weighted by each model's share of the key's recent calls, not by calls learned: those are capped, so a
        # busy key's usual and now-and-then models would weigh the same (a 50/50 mix where the key's is 85/15).
        shares = [(self.share(entry), entry) for entry in self.models.values()]
        total = sum(share for share, _ in shares)
        if total <= 0:
            return None
        mean = sum(share * entry[1] for share, entry in shares) / total
        # The spread of the key's calls over all its models: a call of a model it uses now and then is no jump.
        spread = sum(share * (entry[2] + (entry[1] - mean) ** 2) for share, entry in shares) / total
        return mean, max(spread, MIN_VARIANCE)

    def trusted(self, model: str) -> bool:
        learned = self.models.get(model)
        return learned is not None and learned[0] >= MODEL_GRACE

    def observe(self, ts: float, model: str, tokens: float, cost: float, learn: bool, ratio: float) -> bool:
        """Keep one call for the test, and learn its price unless `learn` is False or it looks like a jump.

        Returns whether the newest calls may prove a jump now (`may_jump`); False for a call not kept (without tokens
        or cost). The caller of `test` asks this first, and spares working out its arguments on most calls.
        """
        if tokens <= 0 or cost <= 0:
            return False
        price, bar = math.log(cost), math.log(ratio)
        # Every call of a busy key comes here: a trusted model's reference is read in place, not through `reference`.
        entry = self.models.get(model)
        trusted = entry is not None and entry[0] >= MODEL_GRACE
        reference = (entry[1], max(entry[2], MIN_VARIANCE)) if trusted else self.reference(model)  # type: ignore[index]
        if reference is not None:
            mean, variance = reference
            excess = price - mean
            kept = decimals(excess, 4)  # as kept: the same in memory and restored
            recent = self.recent
            # The rest of the call is rounded where read (`_settled`): most calls are never read, only let go.
            recent.append((ts, kept, variance, tokens, cost))
            if len(recent) > RUN_CALLS:
                del recent[0]
            if self._since_dear is not None and self._dear_bar is not None:
                self._since_dear = 0 if kept >= self._dear_bar else self._since_dear + 1
            # A call at half the bar (in the log) or dearer is not learned: a jump must not become the usual price.
            # A model not yet trusted is learned all the same when its dear call comes alone (else a dear model the
            # key uses now and then never is), but not a second in a row: a new model the key moved to must not be
            # learned into its own usual price (trusted after `MODEL_GRACE` calls) before the jump is proven.
            if excess >= bar / 2:
                self.streak += 1
                if (self.streak > 1 or trusted) and self.streak < ADAPT_CALLS:
                    return self._reached(bar)
            else:
                self.streak = 0
        if learn:
            self._learn(model, price, entry)
        return self._reached(bar)

    def may_jump(self, ratio: float) -> bool:
        """Whether any kept call reaches the bar: a run is sized when its mean excess does, which none can where no
        call's does."""
        return self._reached(math.log(ratio))

    def _reached(self, bar: float) -> bool:
        # On a busy key no kept call reaches the bar on most calls, and the count kept beside the calls says so
        # without a look at them.
        if bar != self._dear_bar or self._since_dear is None:
            self._dear_bar = bar
            self._since_dear = next((n for n, entry in enumerate(reversed(self.recent)) if entry[1] >= bar),
                                    len(self.recent))
        return self._since_dear < len(self.recent)

    def test(self, alpha: float, ratio: float, min_usd: float = 0.0, window_s: float = 60.0,
             min_calls: int = MIN_CALLS) -> PriceJump | None:
        """The jump the newest calls prove, if any: the shortest run of at least `min_calls` newest calls, over
        a window at least or all `RUN_CALLS` (sustained: a handful of dear calls within seconds is a burst, for
        the count test),
        that proves it and spends at least `min_usd` a window (over the windows it spans, at least one)."""
        if not self.may_jump(ratio):
            return None
        z, bar = _normal_quantile(alpha), math.log(ratio)
        excess = variance = cost = 0.0
        recent = self._settled()
        newest = recent[-1][0] if recent else 0.0
        for n, (ts, d, var, _tokens, call_cost) in enumerate(reversed(recent), start=1):
            excess += d
            variance += var
            cost += call_cost
            if n >= min_calls and (newest - ts >= window_s or n == RUN_CALLS) and excess >= z * math.sqrt(variance) \
                    and excess >= n * bar and cost >= min_usd * max(1.0, (newest - ts) / window_s):
                # Told by its dear calls (the run may hold a few from before the jump, at the usual price).
                run = [entry for entry in recent[-n:] if entry[1] >= bar / 2]
                usual = sum(entry[4] * math.exp(-entry[1]) for entry in run)
                return PriceJump(len(run), sum(entry[4] for entry in run), usual, sum(entry[3] for entry in run), ts)
        return None

    def high(self, since: float, ratio: float, stale_before: float) -> bool:
        """Do the calls since `since` (none: the newest call, unless it came before `stale_before`) still cost
        half the bar or more (in the log), on average? A quiet key's jump is not over for want of calls."""
        recent = self._settled()
        excess = [entry[1] for entry in recent if entry[0] >= since]
        if not excess and recent and recent[-1][0] >= stale_before:
            excess = [recent[-1][1]]
        return bool(excess) and sum(excess) / len(excess) >= math.log(ratio) / 2

    def forget_calls(self) -> None:
        """After an incident: its calls must not prove the next one."""
        self.recent.clear()
        self.streak = 0
        self._since_dear = None

    def share(self, entry: list[float]) -> float:
        """A model's share of the key's recent calls: as of its latest call, faded by every call learned since."""
        return entry[3] * SHARE_KEPT ** (self.learned - entry[4])

    def _learn(self, model: str, price: float, entry: list[float] | None) -> None:
        """Learn a call of `model` (`entry`: its learned figures, None if it has none)."""
        if entry is None:
            models = self.models
            if len(models) >= MAX_MODELS:
                # The least used of late (by calls learned, capped, one used long ago would never go).
                del models[min(models, key=lambda name: self.share(models[name]))]
            entry = models[model] = [0, price, 0.0, 0.0, self.learned]
        self.learned = learned_all = self.learned + 1
        learned, mean, variance = entry[0], entry[1], entry[2]
        share = self.share(entry)
        rate = max(FADING, 1 / (learned + 1))
        change = price - mean
        # Six decimals, as learned: the same in memory and restored from state. The count is capped (it sets the
        # learning rate and the grace periods, nothing past that: the shares weigh the models).
        entry[0] = min(learned + 1, 1000)
        entry[1] = decimals(mean + rate * change, 6)
        entry[2] = decimals((1 - rate) * (variance + rate * change * change), 6)
        entry[3] = decimals(share + SHARE_FADING, 6)
        entry[4] = learned_all

    def _settled(self) -> list[list[float]]:
        """The newest calls as state keeps them, rounded (a call restored from state is already): [ts, excess d,
        its variance, tokens, cost] each."""
        recent = self.recent
        for at, call in enumerate(recent):
            if type(call) is tuple:  # as observed; a list is settled already (restored, or read before)
                ts, d, var, tokens, cost = call
                recent[at] = [decimals(ts, 3), d, decimals(var, 4), tokens if type(tokens) is int else round(tokens),
                              decimals(cost, 10)]
        return recent


#: Per call: a key's price follows its last 50 or so calls.
FADING = 0.02
#: Per call: a model's share of the key's calls follows its last 100 or so calls.
SHARE_FADING = 0.01
SHARE_KEPT = 1 - SHARE_FADING


def _add_shares(models: dict[str, list[float]]) -> None:
    """A state from before shares were kept, or faded on every call: each model's share is its part of the calls
    learned, or the share it had, as of the state's calls learned (the state from before has no count: 0)."""
    total = sum(entry[0] for entry in models.values())
    for entry in models.values():
        if len(entry) < 4:
            entry.append(entry[0] / total if total else 0.0)
        if len(entry) < 5:
            entry.append(0)


@lru_cache(maxsize=16)  # asked on every priced call: inverting the normal CDF each time was 4% of a busy replay
def _normal_quantile(alpha: float) -> float:
    return NormalDist().inv_cdf(1 - alpha)
