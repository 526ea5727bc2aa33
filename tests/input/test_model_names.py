"""Issue "LiteLLM as it really runs": one model name everywhere (CONTRACT.md, third round).

LiteLLM names a call's model `openai/gpt-4o`; a budget, tier or price on `gpt-4o` must count it.
Both ways a usage message is decoded (msgspec's fast path and `parse_usage`) name it alike.
"""

from __future__ import annotations

import io

import orjson
import pytest
from genai_prices.data_snapshot import get_snapshot

from streams.input.events import decode_message, decode_plain_usage, parse_usage
from streams.input.litellm import usage_event
from streams.input.providers import KNOWN_PROVIDERS, split_model
from streams.settings import load_settings
from streams.tools.replay import replay
from tests.litellm_payloads import standard_logging_payload

NOW = 1_764_590_460.0


def test_every_provider_the_price_catalog_knows_is_a_known_prefix():
    assert {provider.id for provider in get_snapshot().providers} <= KNOWN_PROVIDERS


@pytest.mark.parametrize(("model", "provider", "expected"), [
    ("openai/gpt-4o", None, ("gpt-4o", "openai")),
    ("openai/gpt-4o", "openai", ("gpt-4o", "openai")),
    ("azure/my-deployment", None, ("my-deployment", "azure")),
    ("vertex_ai/gemini-1.5-pro", "vertex_ai", ("gemini-1.5-pro", "vertex_ai")),
    ("together_ai/meta-llama/Llama-3-70b", None, ("meta-llama/Llama-3-70b", "together_ai")),
    ("meta-llama/Llama-3-70b", None, ("meta-llama/Llama-3-70b", None)),  # an author, not a provider
    ("openai/gpt-oss-120b", "groq", ("openai/gpt-oss-120b", "groq")),  # groq's own name for the model
    ("gpt-4o", None, ("gpt-4o", None)),
    ("openai/", None, ("openai/", None)),
])
def test_only_a_known_providers_prefix_is_moved_to_provider(model, provider, expected):
    assert split_model(model, provider) == expected


MODELS = [("openai/gpt-4o", None), ("openai/gpt-4o", "openai"), ("anthropic/claude-3-5-sonnet", ""),
          ("meta-llama/Llama-3-70b", None), ("openai/gpt-oss-120b", "groq"), ("gpt-4o", "openai"),
          ("together_ai/meta-llama/Llama-3-70b", None)]


@pytest.mark.parametrize("escaped", [False, True])
def test_both_decode_paths_name_the_model_alike(escaped):
    events = []
    for n, (model, provider) in enumerate(MODELS):
        event = {"ts": NOW - 60, "team": "search", "model": model, "prompt_tokens": 10 + n, "completion_tokens": 2}
        if provider is not None:
            event["provider"] = provider
        if escaped:  # a backslash in the payload takes the decoder that checks every name's characters
            event["endpoint"] = "chat\\/api"
        events.append(event)
    payload = orjson.dumps(events).replace(b"chat\\\\/api", b"chat\\/api")
    fast = decode_plain_usage(payload, NOW)
    assert fast is not None
    slow, rejected = decode_message(payload, parse_usage, NOW)
    assert rejected == []
    fields = ("model", "provider", "endpoint", "prompt_tokens")
    assert [tuple(getattr(e, f) for f in fields) for e in fast] == [tuple(getattr(e, f) for f in fields) for e in slow]
    assert [(e.model, e.provider) for e in slow] == [
        ("gpt-4o", "openai"), ("gpt-4o", "openai"), ("claude-3-5-sonnet", "anthropic"),
        ("meta-llama/Llama-3-70b", None), ("openai/gpt-oss-120b", "groq"), ("gpt-4o", "openai"),
        ("meta-llama/Llama-3-70b", "together_ai")]


def test_a_budget_on_gpt_4o_counts_litellms_openai_gpt_4o_calls(tmp_path):
    """Before: LiteLLM's records named the model `openai/gpt-4o`, and a budget on `gpt-4o` counted $0."""
    records = [dict(standard_logging_payload(n, ts=NOW - 600 + n), model="openai/gpt-4o", response_cost=1.0)
               for n in range(6)]
    usage = b"\n".join(orjson.dumps(usage_event(record, "endpoint")) for record in records)
    budget = {"budget": "gpt-4o-only", "team": "search", "period": "day", "amount_usd": 10, "model": "gpt-4o",
              "thresholds": [50]}
    settings = load_settings(data_dir=str(tmp_path), budgets=[budget])
    output = io.BytesIO()
    replay({"usage": io.BytesIO(usage)}, output, settings, now=NOW)
    alerts = [orjson.loads(line) for line in output.getvalue().splitlines()]
    crossed = [a for a in alerts if a["kind"] == "budget_threshold"]
    assert crossed and crossed[0]["threshold_pct"] == 50
