"""Issue "Poison": the HTTP API is read-only without a token, a change needs a JSON body, requests
in flight are capped, and a worker will not serve an open address unguarded.

The worker's own aiohttp application is served on 127.0.0.1 (tests/worker/served.py).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
import pytest

from streams import cli
from streams.errors import SettingsError
from streams.settings import load_settings, require_guarded_http
from tests.worker.served import Served, serve

TOKEN = "http-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}


def a_silence() -> bytes:
    ends_at = datetime.fromtimestamp(time.time() + 90 * 86_400, tz=UTC).isoformat()
    return orjson.dumps({"match": {"team": "search"}, "ends_at": ends_at, "comment": "x", "created_by": "a page"})


@pytest.fixture
async def served(tmp_path: Path):
    started: list[Served] = []

    async def start(**settings: object) -> Served:
        worker = await serve(tmp_path / str(len(started)), **settings)
        worker.pipeline.silences_loaded.set()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        await worker.server.close()


async def call(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.request(method, url, data=body,
                                                                     headers=headers or {}) as response:
        return response.status, await response.text()


async def test_without_a_token_the_api_is_read_only_and_says_which_setting_allows_changes(served):
    worker = await served()
    for method, path, headers in (("POST", "/silences", JSON), ("POST", "/silences", AUTH | JSON),
                                  ("DELETE", "/silences/some-id", JSON)):
        status, text = await call(method, f"{worker.url}{path}", a_silence(), headers)
        assert status == 403 and "SPENDWATCH_HTTP_TOKEN" in text, (method, path, status, text)
    assert (await call("GET", f"{worker.url}/silences"))[0] == 200
    assert (await call("GET", f"{worker.url}/alerts"))[0] == 200
    assert list(worker.pipeline.silences) == [] and worker.producer.sent == []


async def test_a_pages_form_post_to_localhost_silences_nothing(served):
    """What a browser may send cross-origin without asking first: a form or text/plain, no Authorization."""
    page = {"form": ("application/x-www-form-urlencoded", b"match=team"),
            "text": ("text/plain", a_silence()), "multipart": ("multipart/form-data; boundary=x", a_silence())}
    for settings, refused in (({}, 403), ({"http_token": TOKEN}, 401)):
        worker = await served(**settings)
        for content_type, body in page.values():
            status, _ = await call("POST", f"{worker.url}/silences", body, {"Content-Type": content_type})
            assert status == refused, (settings, content_type, status)
        assert list(worker.pipeline.silences) == [] and worker.producer.sent == []


async def test_with_the_token_a_change_needs_a_json_content_type(served):
    worker = await served(http_token=TOKEN)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = AUTH | ({"Content-Type": content_type} if content_type else {})
        status, text = await call("POST", f"{worker.url}/silences", a_silence(), headers)
        assert status == 415 and "application/json" in text, (content_type, status, text)
        assert (await call("DELETE", f"{worker.url}/silences/some-id", b"", headers))[0] == 415
    # Past the guard, the views answer for themselves.
    assert (await call("POST", f"{worker.url}/silences", b"{}", AUTH | JSON))[0] == 400
    assert (await call("POST", f"{worker.url}/silences", b"{}", AUTH | {"Content-Type": "application/json; "
                                                                         "charset=utf-8"}))[0] == 400
    assert (await call("DELETE", f"{worker.url}/silences/some-id", b"", AUTH | JSON))[0] == 404
    assert (await call("POST", f"{worker.url}/silences", a_silence(), JSON))[0] == 401
    assert list(worker.pipeline.silences) == []


async def test_the_ingest_and_slack_endpoints_keep_their_own_credentials(served):
    worker = await served(ingest_token="ingest-token-0123456789")
    status, _ = await call("POST", f"{worker.url}/ingest/litellm", b"[]",
                           {"Authorization": "Bearer ingest-token-0123456789", "Content-Type": "text/plain"})
    assert status == 200
    assert (await call("POST", f"{worker.url}/ingest/litellm", b"[]", JSON))[0] == 401
    assert (await call("POST", f"{worker.url}/slack/interactions", b"payload=x",
                       {"Content-Type": "application/x-www-form-urlencoded"}))[0] == 404  # no signing secret set


async def test_requests_in_flight_are_capped_with_retry_after_and_probes_are_exempt(served):
    worker = await served(http_max_in_flight=2)
    worker.pipeline.silences_loaded.clear()  # GET /silences now waits for them: two requests held in flight
    held = [asyncio.create_task(call("GET", f"{worker.url}/silences")) for _ in range(2)]
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as session:
        while True:  # until both held requests have reached the worker
            async with session.get(f"{worker.url}/alerts") as response:
                if response.status == 429 or time.monotonic() > deadline:
                    break
            await asyncio.sleep(0.02)
        assert response.status == 429 and response.headers["Retry-After"] == "1"
    assert (await call("GET", f"{worker.url}/healthz"))[0] == 200
    assert (await call("GET", f"{worker.url}/metrics"))[0] == 200
    worker.pipeline.silences_loaded.set()
    assert [status for status, _ in await asyncio.gather(*held)] == [200, 200]
    assert (await call("GET", f"{worker.url}/alerts"))[0] == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "worker-1.example", ""])
def test_an_open_address_without_a_token_is_refused_naming_both_settings(host):
    with pytest.raises(SettingsError, match=r"SPENDWATCH_HTTP_TOKEN.*SPENDWATCH_HTTP_ALLOW_OPEN"):
        require_guarded_http(load_settings(http_host=host))
    require_guarded_http(load_settings(http_host=host, http_token=TOKEN))
    require_guarded_http(load_settings(http_host=host, http_allow_open=True))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"])
def test_a_loopback_address_needs_no_token(host):
    require_guarded_http(load_settings(http_host=host))


def test_the_worker_refuses_to_start_on_an_open_address_without_a_token(monkeypatch, tmp_path, capsys):
    for name, value in {"SPENDWATCH_KAFKA_BROKERS": "kafka://127.0.0.1:1", "SPENDWATCH_HTTP_HOST": "0.0.0.0",
                        "SPENDWATCH_DATA_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SPENDWATCH_HTTP_TOKEN", raising=False)
    monkeypatch.delenv("SPENDWATCH_HTTP_ALLOW_OPEN", raising=False)
    assert cli.main(["worker"]) == 2
    error = capsys.readouterr().err
    assert "SPENDWATCH_HTTP_TOKEN" in error and "SPENDWATCH_HTTP_ALLOW_OPEN" in error
