"""Issue "Poison": `GET /runs/{id}` and what workers send each other.

A lookup must not hold the event loop while it reads every team, a run id reaches a peer as
that one id, and a peer is asked with this worker's own token, never the caller's header. The
worker's views are served on 127.0.0.1 (tests/worker/served.py); the peer is a real aiohttp
server on 127.0.0.1 that records what it was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from streams.state.ledger import new_ledger, new_run
from tests.worker.served import Served, serve

TOKEN = "http-token-0123456789abcdef"


class Peer:
    """Another worker as far as `?local=1` goes: records each request, knows no run."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.runs_asked: list[tuple[str, dict[str, str]]] = []  # (run id as routed, query)
        app = web.Application()
        app.router.add_route("GET", "/runs/{run_id}", self.run)
        app.router.add_route("GET", "/{tail:.*}", self.answer)
        self.server = TestServer(app, host="127.0.0.1")

    async def run(self, request: web.Request) -> web.Response:
        self.runs_asked.append((request.match_info["run_id"], dict(request.query)))
        return await self.answer(request)

    async def answer(self, request: web.Request) -> web.Response:
        self.requests.append((request.raw_path, dict(request.headers)))
        return web.json_response({"error": "not here"}, status=404)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    standing = Peer()
    await standing.server.start_server()
    yield standing
    await standing.server.close()


@pytest.fixture
async def worker(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    served = await serve(tmp_path, **getattr(request, "param", {}))
    served.own_every_partition()
    yield served
    await served.server.close()


def hold_teams(worker: Served, teams: int, run_of: dict[int, str] | None = None) -> None:
    """Ledgers written straight into the table's memory store (no changelog: there is no broker)."""
    for n in range(teams):
        ledger = new_ledger()
        for run_id in [run_of[n]] if run_of and n in run_of else []:
            ledger["runs"][run_id] = new_run(run_id)
        ledger["runs"].update({f"other-{n}-{k}": new_run(f"other-{n}-{k}") for k in range(3)})
        worker.pipeline.ledgers.data[f"team-{n:05d}"] = orjson.dumps(ledger)


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers or {}) as response:
        return response.status, await response.json()


async def ticks_during(request: asyncio.Future) -> int:
    """How many turns the event loop gave another task while `request` was being answered."""
    ticks = 0
    while not request.done():
        ticks += 1
        await asyncio.sleep(0)
    await request
    return ticks


async def test_a_run_lookup_over_many_teams_gives_the_event_loop_turns(worker):
    """Before: every ledger was decoded in one go, and ingest and /healthz waited behind it."""
    url = f"{worker.url}/runs/no-such-run?local=1"
    baseline = await ticks_during(asyncio.ensure_future(get(url)))  # the request's own I/O, with no teams
    hold_teams(worker, 4000)
    during = await ticks_during(asyncio.ensure_future(get(url)))
    assert during - baseline >= 25, (baseline, during)  # a turn at least every 160 teams


async def test_a_run_is_found_among_many_teams_and_only_in_teams_this_worker_holds(worker):
    hold_teams(worker, 500, run_of={321: "ft-7"})
    status, body = await get(f"{worker.url}/runs/ft-7")
    assert status == 200 and body["team"] == "team-00321" and body["run_id"] == "ft-7"
    worker.pipeline.app.consumer.assignment = lambda: set()  # the partitions moved to another worker
    assert (await get(f"{worker.url}/runs/ft-7?local=1"))[0] == 404


@pytest.mark.parametrize("run_id", ["x?local=0", "a/b", "100%", "x&local=0#frag", "über run"])
async def test_a_run_id_reaches_a_peer_as_that_one_id(worker, peer, run_id):
    """Before: `/runs/x%3Flocal%3D0` was asked of peers as `/runs/x?local=0&local=1`, which fans out again."""
    from urllib.parse import quote

    worker.peers_are(peer.url)
    status, _ = await get(f"{worker.url}/runs/{quote(run_id, safe='')}")
    assert status == 404
    assert peer.runs_asked == [(run_id, {"local": "1"})]


async def test_a_run_id_longer_than_any_name_is_refused(worker, peer):
    worker.peers_are(peer.url)
    assert (await get(f"{worker.url}/runs/{'r' * 257}"))[0] == 400
    assert (await get(f"{worker.url}/runs/{'r' * 256}"))[0] == 404
    assert len(peer.requests) == 1


async def test_a_peer_never_sees_the_callers_authorization_header(worker, peer):
    """Before: whatever the caller sent in Authorization went to every URL in the group's metadata."""
    worker.peers_are(peer.url)
    await get(f"{worker.url}/runs/ft-1", {"Authorization": "Bearer the-callers-own-sso-token"})
    await get(f"{worker.url}/alerts", {"Authorization": "Bearer the-callers-own-sso-token"})
    assert len(peer.requests) == 2
    assert all("Authorization" not in headers for _, headers in peer.requests)


@pytest.mark.parametrize("worker", [{"http_token": TOKEN}], indirect=True)
async def test_workers_ask_each_other_with_their_own_token(worker, peer):
    worker.peers_are(peer.url)
    assert (await get(f"{worker.url}/alerts", {"Authorization": f"Bearer {TOKEN}"}))[0] == 200
    assert (await get(f"{worker.url}/budgets", {"Authorization": f"Bearer {TOKEN}"}))[0] == 200
    assert [headers["Authorization"] for _, headers in peer.requests] == [f"Bearer {TOKEN}"] * 2
