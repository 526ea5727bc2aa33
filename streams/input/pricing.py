"""Prices LLM calls that arrive without `cost_usd`, from genai-prices' bundled catalog.

genai-prices takes about 120 us a lookup, too slow to call per event, so each
(provider, model) is looked up once and kept as two per-token rates. Tiered prices
(some models charge more past a context size) are taken at their base tier: close
enough to spot a 10x spike, and a producer that knows the exact cost sends `cost_usd`.
"""

from __future__ import annotations

from functools import lru_cache

from genai_prices import Usage, calc_price

_MILLION = 1_000_000


@lru_cache(maxsize=4096)
def token_rates(model: str, provider: str | None = None) -> tuple[float, float] | None:
    """USD per prompt token and per completion token, or None when the catalog has no price."""
    try:
        per_input = calc_price(Usage(input_tokens=_MILLION, output_tokens=0), model, provider_id=provider)
        per_output = calc_price(Usage(input_tokens=0, output_tokens=_MILLION), model, provider_id=provider)
    except LookupError:
        if provider is not None:
            # A provider name the catalog spells differently: the model name alone may still match.
            return token_rates(model, None)
        return None
    return float(per_input.total_price) / _MILLION, float(per_output.total_price) / _MILLION


def estimate_cost(model: str, prompt_tokens: int, completion_tokens: int, provider: str | None = None) -> float | None:
    """The call's cost in USD, or None when the model has no price in the catalog."""
    rates = token_rates(model, provider)
    if rates is None:
        return None
    return prompt_tokens * rates[0] + completion_tokens * rates[1]
