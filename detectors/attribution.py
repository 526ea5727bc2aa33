"""Why a key spiked: which model, user, service, product or provider carries the jump, and what kind of jump.

Two pure pieces, used by the flash-spike detector (detectors/spike.py):

- **Contributors.** Each open window tallies its spend per value of each dimension in a
  bounded *space-saving* sketch (Metwally et al.): at most `TALLY_SIZE` values per dimension;
  a new value past that takes the smallest entry's place and inherits its weight, so any value
  with more than 1/`TALLY_SIZE` of the window's spend is always there, with its spend over-
  estimated by at most the evicted weight. `Mix` learns each dimension's usual shares from
  normal windows (exponentially weighted, the `MIX_SIZE` largest kept). A value's *extra* is
  its spend in the window less its usual share of the expected spend; its `share` is its part
  of its dimension's positive extras. A value is named only when its share is well above its
  usual share (`MIN_LIFT`): the only provider a key ever uses carries 100% of any jump and
  says nothing.
- **Cause.** The spend of a window is calls x tokens per call x cost per token. Whichever of
  the three moved most against what was expected (as a rate, so a window judged a third of
  the way through counts a third of its expected calls) names the kind: `traffic`,
  `tokens_per_call` (a prompt blow-up) or `model_mix` (a switch to a pricier model).

>>> tally = new_tally()
>>> for _ in range(9):
...     add_to_tally(tally, ("gpt-4o-mini", "alice", "", "", "openai"), 1)
>>> mix = Mix()
>>> mix.learn(tally, fading_factor=0.02)  # a normal window: alice's calls on gpt-4o-mini
>>> tally = new_tally()
>>> for _ in range(9):
...     add_to_tally(tally, ("gpt-4o-mini", "alice", "", "", "openai"), 1)
>>> for _ in range(81):  # then bob turns up, with nine times the usual spend
...     add_to_tally(tally, ("gpt-4o-mini", "bob", "", "", "openai"), 1)
>>> [(c["dimension"], c["value"], c["share"]) for c in contributors(tally, mix, expected_weight=9)]
[('user', 'bob', 1.0)]
>>> cause_of(calls=99, tokens=99_000, cost=0.99, expected=(9, 9_000, 0.09), elapsed_windows=1.0)[0]
'traffic'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: The dimensions a usage row carries after its counts, in this order (streams/input/rows.py).
DIMENSIONS = ("model", "user", "service", "product", "provider")
#: Values tallied per dimension in one window: any value with over a quarter of its spend is kept.
TALLY_SIZE = 4
#: Usual shares kept per dimension.
MIX_SIZE = 3
#: A contributor's share of the extra must exceed its usual share by this much to be named.
MIN_LIFT = 0.25
#: Contributors named per alert, across dimensions.
MOST_CONTRIBUTORS = 3
#: Spend is tallied in whole units of $1e-8 (integers: exact sums in any order, short in state).
UNITS_PER_USD = 100_000_000
#: An unpriced call weighs as $1 per million tokens, so keys without prices still name contributors.
UNPRICED_UNITS_PER_TOKEN = UNITS_PER_USD // 1_000_000

Tally = list[dict[str, int]]  # per dimension: value -> spend in the window, in units (space-saving)


def new_tally() -> Tally:
    return [{} for _ in DIMENSIONS]


def call_weight(tokens: float, cost: float) -> int:
    """A call's spend in tally units (its tokens at a nominal price when it has no cost)."""
    return round(cost * UNITS_PER_USD) if cost > 0 else round(tokens * UNPRICED_UNITS_PER_TOKEN)


def add_to_tally(tally: Tally, values: Sequence[str], weight: int) -> None:
    """Count one call's spend against its value in each dimension ("" : the call did not say)."""
    for at in range(len(values)):  # by index, not zip: half the cost, and this runs for every call
        value = values[at]
        if not value:
            continue
        counts = tally[at]
        before = counts.get(value)
        if before is not None:
            counts[value] = before + weight
        elif len(counts) < TALLY_SIZE:
            counts[value] = weight
        else:
            # The smallest entry goes; ties broken by value so that every replay evicts the same one. (Pairs made by
            # zip, in C: half the time of a key function, and a busy key with many users evicts on many calls.)
            least, name = min(zip(counts.values(), counts, strict=True))
            del counts[name]
            counts[value] = least + weight


class Mix:
    """A key's usual share of spend per value of each dimension, learned from normal windows."""

    def __init__(self, shares: list[dict[str, float]] | None = None, learned: int = 0) -> None:
        self.shares: list[dict[str, float]] = shares if shares is not None else [{} for _ in DIMENSIONS]
        self.learned = learned  # windows with spend learned, up to the point where fading takes over

    def learn(self, tally: Tally, fading_factor: float) -> None:
        """Move each dimension's shares towards this window's (a window without spend teaches nothing).

        A plain mean over the first windows, then exponential fading: as river's EWMean after a
        grace period, so that the first window alone does not set the usual mix.
        """
        if not any(tally):
            return
        rate = max(fading_factor, 1 / (self.learned + 1))
        if rate > fading_factor:
            self.learned += 1
        for at, counts in enumerate(tally):
            spend = sum(counts.values())
            if spend <= 0:
                continue
            shares = {value: share * (1 - rate) for value, share in self.shares[at].items()}
            for value, weight in counts.items():
                shares[value] = shares.get(value, 0.0) + rate * weight / spend
            kept = sorted(shares.items(), key=lambda item: (-item[1], item[0]))[:MIX_SIZE]
            # Rounded as learned (not when saved), so a worker restored from state goes on exactly as replay.
            self.shares[at] = {value: float(f"{share:.3g}") for value, share in kept}

    def to_state(self) -> list[Any] | None:
        return [self.learned, *self.shares] if any(self.shares) else None

    @classmethod
    def from_state(cls, state: list[Any] | None) -> Mix:
        if not state:
            return cls()
        return cls([dict(shares) for shares in state[1:]], state[0])


def contributors(tally: Tally, mix: Mix, expected_weight: float) -> list[dict[str, Any]]:
    """The values that carry the jump over `expected_weight` (tally units), largest share of the extra first."""
    found: list[tuple[float, float, int, str]] = []
    for at, counts in enumerate(tally):
        usual = mix.shares[at]
        # A value the mix let go of had less than the smallest share kept (when full): assume that much, not 0.
        unknown = min(usual.values()) if len(usual) >= MIX_SIZE else 0.0
        shares = {value: usual.get(value, unknown) for value in counts}
        extras = {value: spend - shares[value] * expected_weight for value, spend in counts.items()}
        positive = sum(extra for extra in extras.values() if extra > 0)
        if positive <= 0:
            continue
        for value, extra in extras.items():
            share = round(extra / positive, 2)
            if share > 0 and share - shares[value] >= MIN_LIFT:
                found.append((share, share - shares[value], at, value))
    # Equal shares (a new model from a new provider: both 100%): the surprising one, then the finer dimension.
    found.sort(key=lambda item: (-item[0], -round(item[1], 2), item[2], item[3]))
    return [{"dimension": DIMENSIONS[at], "value": value, "share": share}
            for share, _lift, at, value in found[:MOST_CONTRIBUTORS]]


def cause_of(calls: float, tokens: float, cost: float, expected: tuple[float, float, float],
             elapsed_windows: float) -> tuple[str, dict[str, float | None]]:
    """(cause, the three ratios behind it): which factor of spend moved most against what was expected."""
    expected_calls, expected_tokens, expected_cost = expected
    calls_ratio = _ratio(calls, expected_calls * max(elapsed_windows, 0.05))
    tokens_per_call = _ratio(tokens / calls if calls else 0.0,
                             expected_tokens / expected_calls if expected_calls else 0.0)
    cost_per_token = _ratio(cost / tokens if tokens else 0.0,
                            expected_cost / expected_tokens if expected_tokens else 0.0)
    figures = {"calls_ratio": calls_ratio, "tokens_per_call_ratio": tokens_per_call,
               "cost_per_token_ratio": cost_per_token}
    moves = {"traffic": calls_ratio, "tokens_per_call": tokens_per_call, "model_mix": cost_per_token}
    cause = max(moves, key=lambda name: math.log(moves[name] or 0.0) if moves[name] else -math.inf)
    return cause, figures


def _ratio(observed: float, expected: float) -> float | None:
    """Rounded; None when there is nothing to compare with (no spend expected, or no calls to divide by)."""
    if observed <= 0 or expected <= 0:
        return None
    return round(observed / expected, 2)


CAUSE_TEXT = {"traffic": "more calls", "tokens_per_call": "more tokens per call (a prompt blow-up?)",
              "model_mix": "a pricier model mix"}
CAUSE_FIGURE = {"traffic": "calls_ratio", "tokens_per_call": "tokens_per_call_ratio",
                "model_mix": "cost_per_token_ratio"}


def describe(cause: str | None, figures: dict[str, float | None] | None, named: list[dict[str, Any]]) -> str:
    """One clause for an alert's summary: "more calls (12x the usual rate), mostly user bob (91%)".

    >>> describe("model_mix", {"cost_per_token_ratio": 16.0}, [{"dimension": "model", "value": "o1", "share": 1.0}])
    'why: a pricier model mix (16x the usual), mostly model o1 (100%)'
    """
    if cause is None:
        return "why: unknown"
    text = f"why: {CAUSE_TEXT[cause]}"
    ratio = (figures or {}).get(CAUSE_FIGURE[cause])
    if ratio is not None:
        text += f" ({ratio:,.0f}x the usual)" if ratio >= 10 else f" ({ratio:.2g}x the usual)"
    if named:
        text += ", mostly " + ", ".join(f"{c['dimension']} {c['value']} ({c['share']:.0%})" for c in named[:3])
    else:
        text += ", no one model, user or service stands out"
    return text
