"""LiteLLM StandardLoggingPayload records as its `generic_api` callback sends them.

Every field of LiteLLM's documented spec (docs.litellm.ai/docs/proxy/logging_spec) is present,
nested shapes included, so the adapter is tested against the whole record and not only the
fields it reads. Failure records carry `status: failure`, `error_str` and `error_information`
as LiteLLM fills them for a provider error.
"""

from __future__ import annotations

import random
import time
from typing import Any


def standard_logging_payload(n: int, *, team_alias: str | None = "search", team_id: str | None = "team-7f3a",
                             endpoint: str | None = None, failed: bool = False, ts: float | None = None,
                             rng: random.Random | None = None) -> dict[str, Any]:
    rng = rng or random.Random(n)
    end = (ts if ts is not None else time.time() - 30) + rng.random()
    prompt, completion = rng.randint(200, 2000), 0 if failed else rng.randint(20, 400)
    cost = None if failed else round(prompt * 2.5e-6 + completion * 1e-5, 9)
    return {
        "id": f"chatcmpl-{n:08d}",
        "trace_id": f"trace-{n // 3:06d}",
        "call_type": "acompletion",
        "response_cost": cost,
        "response_cost_failure_debug_info": None,
        "status": "failure" if failed else "success",
        "total_tokens": prompt + completion,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "startTime": end - 1.2,
        "endTime": end,
        "completionStartTime": end - 0.9,
        "response_time": 1.2,
        "model_map_information": {"model_map_key": "gpt-4o", "model_map_value": {
            "key": "gpt-4o", "max_tokens": 16384, "input_cost_per_token": 2.5e-6, "output_cost_per_token": 1e-5,
            "litellm_provider": "openai", "mode": "chat"}},
        "model": "gpt-4o",
        "model_id": "cb41bc03f4c33d310019bae8c5afdb1af0a8f97b36a234405a9807614988457c",
        "model_group": "chat-default",
        "custom_llm_provider": "openai",
        "api_base": "https://api.openai.com/v1",
        "metadata": {
            "user_api_key_hash": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
            "user_api_key_alias": "search-prod",
            "user_api_key_org_id": None,
            "user_api_key_team_id": team_id,
            "user_api_key_user_id": f"user-{n % 3}",
            "user_api_key_team_alias": team_alias,
            "spend_logs_metadata": {"endpoint": endpoint} if endpoint else None,
            "requester_ip_address": "10.0.3.17",
            "requester_metadata": {},
            "vector_store_request_metadata": None,
        },
        "cache_hit": False,
        "cache_key": None,
        "saved_cache_cost": 0.0,
        "request_tags": ["prod"],
        "end_user": None,
        "requester_ip_address": "10.0.3.17",
        "messages": [{"role": "user", "content": "summarise the attached report"}],
        "response": None if failed else {"id": f"chatcmpl-{n:08d}", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "The report says..."},
             "finish_reason": "stop"}]},
        "error_str": "litellm.RateLimitError: OpenAIException - Rate limit reached" if failed else None,
        "error_information": {"error_code": "429", "error_class": "RateLimitError", "llm_provider": "openai"}
        if failed else None,
        "model_parameters": {"temperature": 0.2, "max_tokens": 512},
        "hidden_params": {"model_id": "cb41bc03f4c3", "cache_key": None, "api_base": "https://api.openai.com/v1",
                          "response_cost": str(cost), "additional_headers": {
                              "x_ratelimit_limit_requests": 10000, "x_ratelimit_limit_tokens": 30000000,
                              "x_ratelimit_remaining_requests": 9999, "x_ratelimit_remaining_tokens": 29998000},
                          "batch_models": None, "litellm_model_name": "gpt-4o"},
    }
