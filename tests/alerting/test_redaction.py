"""Issue "Poison": a receiver that echoes our secret in its error body never gets it into an error.

PagerDuty and the executors used to cut the body to 200 characters and then replace the secret,
so a key that straddled the cut survived as a prefix. Real HTTP servers on 127.0.0.1 answer 400
with the key placed at every offset around the cut.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiohttp import web

from alerting.executors import KubernetesExecutor, LiteLLMExecutor, WebhookExecutor
from alerting.notifier import DeliveryError
from alerting.pagerduty import PagerDutyNotifier
from alerting.redact import MASK, redacted

KEY = "R0ut1ngK3yQwErTyUiOpAsDfGhJkLzX9"  # 32 characters, as PagerDuty's


def fragments(secret: str, size: int = 8) -> set[str]:
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


async def error_from(body: Callable[[str], str], call: Callable[[str], object]) -> str:
    """Serve `body(secret)` with a 400 and return the DeliveryError the sink raised."""
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=400, text=body(KEY))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(DeliveryError) as info:
            await call(f"http://127.0.0.1:{port}")  # type: ignore[misc]
        return str(info.value)
    finally:
        await runner.cleanup()


ALERT = {"alert_id": "a1", "dedup_key": "k" * 32, "kind": "flash_spike", "status": "firing", "severity": "critical",
         "ts": "2026-11-24T14:02:00Z", "team": "search", "endpoint": "chat", "run_id": None, "observed": 9.5,
         "baseline": 0.9, "ratio": 10.5, "unit": "usd", "summary": "search/chat at 10x"}
COMMAND = {"action_id": "c1", "action": "block_team", "team": "search", "run_id": "ft-1", "reason": "why",
           "alert_id": "a1", "dry_run": False, "ts": "2026-11-24T14:02:00Z"}


@pytest.mark.parametrize("offset", [170, 185, 190, 192, 195, 199, 200, 205])
def test_pagerduty_never_leaves_a_fragment_of_a_key_echoed_near_the_cut(offset):
    said = asyncio.run(error_from(lambda key: "x" * offset + key + " is not a valid key",
                                  lambda url: PagerDutyNotifier(KEY, url + "/v2/enqueue").notify(ALERT)))
    assert not [f for f in fragments(KEY) if f in said], said


@pytest.mark.parametrize("offset", [170, 185, 192, 199])
@pytest.mark.parametrize("executor", ["litellm", "kubernetes", "webhook"])
def test_executors_never_leave_a_fragment_of_their_secret_echoed_near_the_cut(offset, executor):
    def call(url: str):
        if executor == "litellm":
            return LiteLLMExecutor(url, KEY, allow_plain_http=True).notify(COMMAND)
        if executor == "kubernetes":
            return KubernetesExecutor(url, KEY, "default", "spendwatch.io/run-id",
                                      allow_plain_http=True).notify(dict(COMMAND, action="stop_run"))
        return WebhookExecutor(url + "/hook?token=" + KEY, allow_plain_http=True).notify(COMMAND)

    said = asyncio.run(error_from(lambda key: "y" * offset + key + " rejected", call))
    assert not [f for f in fragments(KEY) if f in said], said


def test_a_partial_echo_of_the_key_anywhere_is_masked_too():
    said = asyncio.run(error_from(lambda key: f"key {key[:12]}... is unknown; did you mean {key[-10:]}?",
                                  lambda url: PagerDutyNotifier(KEY, url).notify(ALERT)))
    assert KEY[:12] not in said and KEY[-10:] not in said and MASK in said


def test_redaction_works_on_the_whole_text_and_only_then_cuts():
    text = "a" * 195 + KEY + "tail"
    assert redacted(text, [KEY], 200) == "a" * 195 + MASK[:5]
    assert redacted(KEY * 30, [KEY], 200) == (MASK * 30)[:200]
    assert redacted("short", [KEY, ""], 200) == "short"
    assert redacted("abc" + KEY[:7], [KEY], 200) == "abc" + KEY[:7]  # under 8 characters says nothing of a key
