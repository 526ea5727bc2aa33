"""The worker's HTTP API (CONTRACT.md, "HTTP"): spend, runs, alerts, health and metrics.

Any worker answers for any key. `/spend?team=T` is forwarded to the worker that
owns T's partition (found from Faust's assignment, hashing the team as the deltas
producer does). Listings (`/spend`, `/runs/{id}`, `/alerts`) ask every other worker
for its share (`?local=1`) and merge. With `SPENDWATCH_HTTP_TOKEN` set, every path but
`/healthz` wants `Authorization: Bearer <token>` (forwarded between workers).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any, Awaitable, Callable, Iterator

import aiohttp
from aiohttp import web as aioweb
from faust.web import Request, Response, View

from streams.app import RECENT_ALERTS, Pipeline
from streams.ledger import TEAM_ACCOUNT, run_view
from streams.windows import figures, total_figures

log = logging.getLogger("spendwatch.web")

PEER_TIMEOUT = aiohttp.ClientTimeout(total=5)


def spend_view(ledger: dict[str, Any], team: str, endpoint: str | None, window_s: int) -> dict[str, Any] | None:
    """CONTRACT's spend object for a team (endpoint None) or one of its endpoints; None when unseen."""
    account = ledger["accounts"].get(TEAM_ACCOUNT if endpoint is None else endpoint)
    if account is None:
        return None
    return {
        "team": team,
        "endpoint": endpoint,
        "windows": [figures(row, window_s) for row in account["windows"]],
        "total": total_figures(account, window_s),
    }


def bearer_guard(token: str) -> Callable[..., Awaitable[Any]]:
    """aiohttp middleware: 401 without the right bearer token (constant-time compare)."""
    expected = f"Bearer {token}".encode()

    @aioweb.middleware
    async def guard(request: aioweb.Request, handler: Callable[..., Awaitable[Any]]) -> Any:
        if request.path.rstrip("/") != "/healthz":
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return aioweb.json_response({"error": "missing or wrong bearer token"}, status=401)
        return await handler(request)

    return guard


def attach(pipeline: Pipeline) -> None:
    app, store, window_s = pipeline.app, pipeline.store, pipeline.settings.window_seconds
    if pipeline.settings.http_token is not None:
        app.web.web_app.middlewares.append(bearer_guard(pipeline.settings.http_token.get_secret_value()))

    async def from_peers(request: Request, path: str) -> list[Any]:
        """Each other worker's local answer for `path` (a worker that is down is skipped, and logged)."""
        own = str(app.conf.canonical_url).rstrip("/")
        peers = [str(url).rstrip("/") for url in app.router.tables_metadata() if str(url).rstrip("/") != own]
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}

        async def ask(peer: str) -> Any:
            try:
                async with app.http_client.get(f"{peer}{path}", params={"local": "1"}, headers=headers,
                                               timeout=PEER_TIMEOUT) as response:
                    return await response.json() if response.status == 200 else None
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                log.warning("peer %s did not answer %s: %s", peer, path, type(exc).__name__)
                return None

        return [answer for answer in await asyncio.gather(*(ask(p) for p in peers)) if answer is not None]

    def owned_teams() -> Iterator[tuple[str, dict[str, Any]]]:
        """The teams of the table partitions this worker owns (the memory store keeps others' keys)."""
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == pipeline.deltas_topic_name}
        return ((team, ledger) for team, ledger in store.teams() if pipeline.partition_of(team) in owned)

    def local_only(request: Request) -> bool:
        return request.query.get("local") == "1"

    def owner_of(team: str) -> str | None:
        """The worker holding `team`'s ledger: its partition is the deltas topic's for the team key."""
        partition = pipeline.partition_of(team)
        changelog = pipeline.ledgers.changelog_topic.get_topic_name()
        for host, topics in app.router.tables_metadata().items():
            if partition in topics.get(changelog, ()):
                return str(host).rstrip("/")
        return None

    async def forward(request: Request, owner: str) -> tuple[int, str, bytes] | None:
        """Ask the owner for its local answer: (status, content type, body), or None when it is down."""
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        try:
            async with app.http_client.get(f"{owner}{request.path}", params={**request.query, "local": "1"},
                                           headers=headers, timeout=PEER_TIMEOUT) as response:
                return response.status, response.content_type, await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.warning("owner %s did not answer %s: %s", owner, request.path, type(exc).__name__)
            return None

    @app.page("/spend")
    class Spend(View):
        async def get(self, request: Request) -> Response:
            team = request.query.get("team")
            if team is None:
                teams = [{"team": name, "total": total_figures(ledger["accounts"][TEAM_ACCOUNT], window_s)}
                         for name, ledger in owned_teams() if TEAM_ACCOUNT in ledger["accounts"]]
                if not local_only(request):
                    for answer in await from_peers(request, "/spend"):
                        teams.extend(answer["teams"])
                return self.json({"teams": sorted(teams, key=lambda t: t["team"])})
            own = str(app.conf.canonical_url).rstrip("/")
            owner = owner_of(team)
            if not local_only(request) and owner is not None and owner != own:
                answer = await forward(request, owner)
                if answer is not None:
                    status, content_type, body = answer
                    return self.bytes(body, content_type=content_type, status=status)
                return self.json({"error": f"the worker holding team={team!r} did not answer"}, status=503)
            endpoint = request.query.get("endpoint")
            ledger = store.load(team)
            view = spend_view(ledger, team, endpoint, window_s) if ledger else None
            if view is None:
                return self.json({"error": f"no spend seen for team={team!r} endpoint={endpoint!r}"}, status=404)
            return self.json(view)

    @app.page("/runs/{run_id}")
    class Runs(View):
        async def get(self, request: Request, run_id: str) -> Response:
            for team, ledger in owned_teams():
                run = ledger["runs"].get(run_id)
                if run is not None:
                    return self.json(run_view(run, team, pipeline.policy))
            if not local_only(request):
                for answer in await from_peers(request, f"/runs/{run_id}"):
                    return self.json(answer)
            return self.json({"error": f"no run {run_id!r} seen"}, status=404)

    @app.page("/alerts")
    class Alerts(View):
        async def get(self, request: Request) -> Response:
            alerts = list(pipeline.recent_alerts)
            if not local_only(request):
                for answer in await from_peers(request, "/alerts"):
                    alerts.extend(answer["alerts"])
                alerts.sort(key=lambda a: (a["ts"], a["alert_id"]))
            return self.json({"alerts": alerts[-RECENT_ALERTS:]})

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            if app.rebalancing:
                return self.json({"status": "ok", "detail": "rebalancing or recovering tables"})
            problems = pipeline.liveness.problems(pipeline.lagging)
            if problems:
                return self.json({"status": "stuck", "problems": problems}, status=503)
            return self.json({"status": "ok"})

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(pipeline.metrics.exposition(), content_type="text/plain; version=0.0.4")
