"""One model name everywhere: a provider prefix (`openai/gpt-4o`) moved from the model to `provider`.

CONTRACT.md: models are named as the price catalog names them, so a budget, tier or threshold on
`gpt-4o` matches LiteLLM's `openai/gpt-4o`. Only a known provider's prefix is moved: the catalog
itself names models such as `meta-llama/Llama-3-70b` (no provider there) or, under openrouter,
`anthropic/claude-3.5-sonnet` (a prefix that is not the event's provider), and those stay whole.

The set is written out, not read from genai-prices at start: the live worker and `spendwatch
replay` must name a model alike whatever catalog each has installed (tests/input/test_providers.py
checks that every catalog provider id is here).

>>> split_model("openai/gpt-4o", None)
('gpt-4o', 'openai')
>>> split_model("meta-llama/Llama-3-70b", None)
('meta-llama/Llama-3-70b', None)
>>> split_model("openrouter/anthropic/claude-3.5-sonnet", "openrouter")
('anthropic/claude-3.5-sonnet', 'openrouter')
>>> split_model("openai/gpt-oss-120b", "groq")
('openai/gpt-oss-120b', 'groq')
"""

from __future__ import annotations

from functools import lru_cache

#: genai-prices' provider ids, then LiteLLM's provider names (its `custom_llm_provider` values).
KNOWN_PROVIDERS = frozenset({
    # genai-prices
    "anthropic", "arcee", "avian", "aws", "azure", "baseten", "cerebras", "cloudflare", "cohere", "cursor",
    "databricks", "deepseek", "doubleword", "elevenlabs", "fireworks", "github-copilot", "google", "groq",
    "huggingface_cerebras", "huggingface_fireworks-ai", "huggingface_groq", "huggingface_hyperbolic",
    "huggingface_nebius", "huggingface_novita", "huggingface_nscale", "huggingface_ovhcloud",
    "huggingface_publicai", "huggingface_sambanova", "huggingface_together", "meta", "minimax", "mistral",
    "modal", "moonshotai", "novita", "openai", "openai-decisions", "openrouter", "ovhcloud", "perplexity",
    "quicksilverpro", "together", "typesafe", "voyageai", "x-ai", "zai", "zhipuai",
    # LiteLLM
    "ai21", "aiml", "aleph_alpha", "anyscale", "assemblyai", "azure_ai", "azure_text", "bedrock",
    "bedrock_converse", "bytez", "clarifai", "codestral", "cohere_chat", "custom_openai", "dashscope",
    "datarobot", "deepgram", "deepinfra", "empower", "featherless_ai", "fireworks_ai", "friendliai", "gemini",
    "github", "github_copilot", "gradient_ai", "heroku", "hosted_vllm", "huggingface", "hyperbolic", "infinity",
    "jina_ai", "lambda_ai", "litellm_proxy", "llamafile", "lm_studio", "meta_llama", "moonshot", "morph",
    "nebius", "nlp_cloud", "nscale", "nvidia_nim", "oci", "ollama", "ollama_chat", "openai_like", "palm",
    "petals", "predibase", "replicate", "sagemaker", "sagemaker_chat", "sambanova", "snowflake",
    "text-completion-codestral", "text-completion-openai", "together_ai", "triton", "vertex_ai",
    "vertex_ai_beta", "vllm", "volcengine", "watsonx", "watsonx_text", "xai",
})


@lru_cache(maxsize=4096)  # a few models recur in every message: 0.26 us a prefixed event -> 0.05
def split_model(model: str, provider: str | None) -> tuple[str, str | None]:
    """(model, provider) with a known provider's prefix moved out of the model.

    Moved only when the event names no provider or names that same one: a prefix that differs
    from the event's provider is part of the model's name under that provider.
    """
    prefix, slash, rest = model.partition("/")
    if not slash or not rest or prefix.lower() not in KNOWN_PROVIDERS:
        return model, provider
    if provider is not None and provider.lower() != prefix.lower():
        return model, provider
    return rest, provider if provider is not None else prefix
