"""The worker's HTTP API (CONTRACT.md, "HTTP"): spend, runs, alerts, budgets, silences, health and metrics.

Any worker answers for any key. `/spend?team=T` is forwarded to the worker that
owns T's partition (found from Faust's assignment, hashing the team as the deltas
producer does). Listings (`/spend`, `/runs/{id}`, `/alerts`) ask every other worker
for its share (`?local=1`) and merge. `GET /spend` is paginated (`limit`, `cursor`),
teams sorted by spend, largest first, from an in-memory index: a listing never decodes
more records than the page shows, so 20,000 teams cost what 100 do.

`GET /` is the page (streams/worker/page.py draws it): the largest teams with every worker's share,
and `/?team=T` from T's owner. Only these paths are served: Faust's own pages (`/table/...`, `/router/...`, `/graph/`)
show raw internal state and answer 404. With `SPENDWATCH_HTTP_TOKEN` set, every path but
`/healthz` and `/metrics` wants `Authorization: Bearer <token>`; without it the API is
read-only (CONTRACT.md, third round): a `POST` or `DELETE` answers 403 naming the setting, and
with it a change needs `Content-Type: application/json`, which no page can send to another
origin without asking first. Workers ask each other with their own token, never the caller's
header. At most `SPENDWATCH_HTTP_MAX_IN_FLIGHT` requests are served at once (429 past it).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web as aioweb
from faust.types import TableT
from faust.web import Request, Response, View

from alerting.model import matches, rfc3339
from alerting.silences import TooManySilences, parse_silence
from streams.input.events import MAX_NAME_CHARS
from streams.state.budgets import budget_view
from streams.state.ledger import TEAM_ACCOUNT, run_view, spend_view, team_total
from streams.state.store import SEP, LedgerStore
from streams.state.unit_costs import unit_cost_views
from streams.state.windows import COST, history
from streams.worker import page, page_sections
from streams.worker.faust_patches import guard_http
from streams.worker.pipeline import RECENT_ALERTS, Pipeline
from streams.worker.silences import SharedSilences, silences_ready

log = logging.getLogger("spendwatch.web")

PEER_TIMEOUT = aiohttp.ClientTimeout(total=5)
#: Path prefixes spendwatch serves; anything else (Faust's own pages) is 404.
SERVED = ("/spend", "/runs/", "/alerts", "/budgets", "/unit-costs", "/silences", "/slack/interactions",
          "/ingest/litellm", "/healthz", "/metrics")
#: Most entries `GET /unit-costs` lists without `?team=` (each team's own list is whole).
MAX_UNIT_COSTS = 10_000
#: The page (streams/worker/page.py), served at this exact path only.
PAGE = "/"
#: Served without the bearer token: probes and the Prometheus scrape (no secrets, no team names in metrics),
#: Slack's clicks, which are signed instead (streams/worker/interactions.py), and LiteLLM's callback,
#: which has a token of its own (streams/worker/ingest_http.py).
OPEN = ("/healthz", "/metrics", "/slack/interactions", "/ingest/litellm")
#: Never turned away for load: a probe that got 429 would restart a worker that is only busy.
UNCAPPED = ("/healthz", "/metrics")
#: Methods that change nothing; any other is a state change, under the token and JSON-only.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: A run lookup gives the event loop a turn every this many table keys (ingest and /healthz go on meanwhile).
YIELD_EVERY = 64
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
#: How long a sorted listing of every team, and each page cut from it, is reused: 50 parallel
#: `/spend` calls sort once and decode each page's ledgers once, so `/healthz` never waits behind them.
LISTING_TTL_S = 1.0
MAX_CACHED_PAGES = 64


def http_guard(token: str | None, max_in_flight: int = 64) -> Callable[..., Awaitable[Any]]:
    """aiohttp middleware: 404 outside `SERVED`; 429 past `max_in_flight`; outside `OPEN`, 401 without the
    right bearer token (constant-time compare), and for a state change 403 with no token, 415 unless JSON."""
    expected = f"Bearer {token}".encode() if token is not None else None
    in_flight = 0

    def refusal(request: aioweb.Request) -> aioweb.Response | None:
        if request.path in OPEN:  # exact paths: their own credentials (or none needed)
            return None
        if expected is not None and not hmac.compare_digest(request.headers.get("Authorization", "").encode(),
                                                            expected):
            return aioweb.json_response({"error": "missing or wrong bearer token"}, status=401)
        if request.method in SAFE_METHODS:
            return None
        if expected is None:
            return aioweb.json_response({"error": "the HTTP API is read-only: set SPENDWATCH_HTTP_TOKEN to allow "
                                                  "changes (POST, DELETE)"}, status=403)
        # A page may send a form or text/plain to any origin without asking; JSON needs the browser's preflight.
        if request.content_type != "application/json":
            return aioweb.json_response({"error": "a change needs Content-Type: application/json"}, status=415)
        return None

    @aioweb.middleware
    async def guard(request: aioweb.Request, handler: Callable[..., Awaitable[Any]]) -> Any:
        nonlocal in_flight
        path = request.path
        if path != PAGE and not path.startswith(SERVED):  # "/" exactly: as a prefix it would serve everything
            return aioweb.json_response({"error": "not found"}, status=404)
        if path in UNCAPPED:
            return await handler(request)
        if in_flight >= max_in_flight:
            return aioweb.json_response({"error": f"{in_flight} requests in flight (SPENDWATCH_HTTP_MAX_IN_FLIGHT); "
                                                  "try again"}, status=429, headers={"Retry-After": "1"})
        in_flight += 1
        try:
            refused = refusal(request)
            return refused if refused is not None else await handler(request)
        finally:
            in_flight -= 1

    return guard


def encode_cursor(cost: float, team: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([cost, team])).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    cost, team = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    if not isinstance(cost, (int, float)) or not isinstance(team, str):
        raise ValueError("not a cursor")
    return float(cost), team


def after(order: list[tuple[float, str]], cursor: tuple[float, str] | None, limit: int) -> list[tuple[float, str]]:
    """The page after `cursor` of (-cost, team) pairs sorted ascending: spend descending, then name."""
    import bisect

    start = 0 if cursor is None else bisect.bisect_right(order, (-cursor[0], cursor[1]))
    return order[start:start + limit]


class SpendListing:
    """This worker's teams by spend, largest first, and pages cut from them; both reused for `LISTING_TTL_S`."""

    def __init__(self, pipeline: Pipeline, owned_partitions: Callable[[], set[int]]) -> None:
        self.store, self.window_s = pipeline.store, pipeline.settings.window_seconds
        self.owned_partitions = owned_partitions
        self.built_at = -math.inf
        self.order: list[tuple[float, str]] = []  # (-cost, team), sorted
        self.pages: dict[tuple[tuple[float, str] | None, int], list[dict[str, Any]]] = {}

    def page(self, cursor: tuple[float, str] | None, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` of this worker's teams after `cursor`, with totals."""
        now = time.monotonic()
        if now - self.built_at > LISTING_TTL_S:
            self.order = sorted((-cost, team) for partition in self.owned_partitions()
                                for team, cost in self.store.spend.get(partition, {}).items())
            self.pages, self.built_at = {}, now
        page = self.pages.get((cursor, limit))
        if page is None:
            page = []
            for _, name in after(self.order, cursor, limit):
                ledger = self.store.load(name)
                total = team_total(ledger, self.window_s) if ledger is not None else None
                if total is not None:
                    page.append({"team": name, "total": total})
            if len(self.pages) < MAX_CACHED_PAGES:
                self.pages[(cursor, limit)] = page
        return page


class Peers:
    """The other workers: who owns a team's ledger, and their local answers (`?local=1`).

    Asked with this worker's own token: peer URLs come from the consumer group's metadata, and a
    caller's `Authorization` (with no token set, whatever the caller's proxy put there) is not ours
    to hand on."""

    def __init__(self, pipeline: Pipeline, token: str | None) -> None:
        self.pipeline, self.app = pipeline, pipeline.app
        self.headers = {"Authorization": f"Bearer {token}"} if token is not None else {}

    @property
    def own_url(self) -> str:
        return str(self.app.conf.canonical_url).rstrip("/")

    def owner_of(self, team: str) -> str | None:
        """The worker holding `team`'s ledger: its partition is the deltas topic's for the team key."""
        partition = self.pipeline.partition_of(team)
        changelog = self.pipeline.ledgers.changelog_topic.get_topic_name()
        for host, topics in self.app.router.tables_metadata().items():
            if partition in topics.get(changelog, ()):
                return str(host).rstrip("/")
        return None

    async def answers(self, path: str, params: dict[str, str] | None = None) -> list[Any]:
        """Each other worker's local answer for `path`, already quoted (one that is down or busy is skipped)."""
        peers = [str(url).rstrip("/") for url in self.app.router.tables_metadata()
                 if str(url).rstrip("/") != self.own_url]

        async def ask(peer: str) -> Any:
            try:
                async with self.app.http_client.get(f"{peer}{path}", params={**(params or {}), "local": "1"},
                                                    headers=self.headers, timeout=PEER_TIMEOUT) as response:
                    if response.status == 429:
                        log.warning("peer %s too busy to answer %s", peer, path)
                    return await response.json() if response.status == 200 else None
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("peer %s did not answer %s: %s", peer, path, type(exc).__name__)
                return None

        return [answer for answer in await asyncio.gather(*(ask(p) for p in peers)) if answer is not None]

    def forward_to(self, request: Request, team: str) -> str | None:
        """The worker to ask for `team`'s answer: its owner, when that is another worker and `request` was not
        already forwarded (`?local=1`); None: answer here."""
        owner = self.owner_of(team)
        return owner if not local_only(request) and owner is not None and owner != self.own_url else None

    async def forward(self, request: Request, owner: str) -> tuple[int, str, bytes] | None:
        """Ask the owner for its local answer: (status, content type, body), or None when it is down."""
        try:
            async with self.app.http_client.get(f"{owner}{request.url.raw_path}",
                                                params={**request.query, "local": "1"},
                                                headers=self.headers, timeout=PEER_TIMEOUT) as response:
                return response.status, response.content_type, await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("owner %s did not answer %s: %s", owner, request.url.path, type(exc).__name__)
            return None


async def find_run(store: LedgerStore, run_id: str, owns: Callable[[str], bool]) -> tuple[str, Any] | None:
    """(team, run) for `run_id` among the teams `owns` says this worker holds, or None.

    A record is decoded only when its bytes hold the id as JSON writes it (orjson writes a key as
    it writes a string), so an unknown id decodes nothing; the loop gets a turn every
    `YIELD_EVERY` keys, so a scan of 20,000 teams never holds up ingest or `/healthz`."""
    needle = orjson.dumps(run_id)
    for at, key in enumerate(list(store.table.keys()), start=1):
        if at % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        if SEP in key or not owns(key):
            continue
        raw = store.store.get(key)
        if raw is None or needle not in raw:
            continue
        run = orjson.loads(raw)["runs"].get(run_id)
        if run is not None:
            return key, run
    return None


def local_only(request: Request) -> bool:
    return request.query.get("local") == "1"


def attach(pipeline: Pipeline, shared_silences: SharedSilences) -> None:
    """The contract's pages on the app's web server, behind the guard."""
    app, store, window_s = pipeline.app, pipeline.store, pipeline.settings.window_seconds
    token = pipeline.settings.http_token
    secret = token.get_secret_value() if token is not None else None
    guard_http(app, http_guard(secret, pipeline.settings.http_max_in_flight))
    peers = Peers(pipeline, secret)

    def owned_partitions() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == pipeline.deltas_topic_name}

    listing = SpendListing(pipeline, owned_partitions)

    @app.page("/spend")
    class Spend(View):
        async def get(self, request: Request) -> Response:
            team = request.query.get("team")
            if team is None:
                return await self.list_teams(request)
            owner = peers.forward_to(request, team)
            if owner is not None:
                answer = await peers.forward(request, owner)
                if answer is not None:
                    status, content_type, body = answer
                    return self.bytes(body, content_type=content_type, status=status)
                return self.json({"error": f"the worker holding team={team!r} did not answer"}, status=503)
            endpoint = request.query.get("endpoint")
            ledger = store.load(team)
            with_history = request.query.get("history", "0").lower() in ("1", "true", "yes")
            view = spend_view(ledger, team, endpoint, window_s, with_history) if ledger else None
            if view is None:
                return self.json({"error": f"no spend seen for team={team!r} endpoint={endpoint!r}"}, status=404)
            return self.json(view)

        async def list_teams(self, request: Request) -> Response:
            """A page of teams by spend, largest first, merged from every worker's own page."""
            try:
                limit = int(request.query.get("limit", DEFAULT_LIMIT))
                cursor = decode_cursor(request.query["cursor"]) if "cursor" in request.query else None
            except (ValueError, TypeError, orjson.JSONDecodeError):
                return self.json({"error": "limit must be an integer and cursor one this API gave"}, status=400)
            if not 1 <= limit <= MAX_LIMIT:
                return self.json({"error": f"limit must be 1-{MAX_LIMIT}"}, status=400)
            page = list(listing.page(cursor, limit + 1))
            more = len(page) > limit
            if not local_only(request):
                params = {k: v for k, v in request.query.items() if k in ("limit", "cursor")}
                for answer in await peers.answers("/spend", params):
                    page.extend(answer["teams"])
                    more = more or "next_cursor" in answer
            page.sort(key=lambda t: (-t["total"]["cost_usd"], t["team"]))
            more = more or len(page) > limit
            body: dict[str, Any] = {"teams": page[:limit]}
            if more and page[:limit]:
                last = page[limit - 1]
                body["next_cursor"] = encode_cursor(last["total"]["cost_usd"], last["team"])
            return self.json(body)

    def page_rows() -> tuple[list[dict[str, Any]], int]:
        """This worker's largest teams as the page draws them, and how many teams it holds."""
        now, rows = time.time(), []
        for entry in listing.page(None, page.TOP_TEAMS):
            team = entry["team"]
            ledger = store.load(team)
            account = (ledger or {}).get("accounts", {}).get(TEAM_ACCOUNT)
            rows.append({"team": team, "cost_usd": entry["total"]["cost_usd"], "requests": entry["total"]["requests"],
                         "series": history(account, window_s)["minutes"]["cost_usd"],  # the last hours
                         "budgets": [budget_view(rule, ledger, now) for rule in pipeline.rules.budgets.get(team, [])]})
        return rows, len(listing.order)

    async def every_alert(request: Request) -> list[dict[str, Any]]:
        alerts = list(pipeline.recent_alerts)
        if not local_only(request):
            for answer in await peers.answers("/alerts"):
                alerts.extend(answer["alerts"])
            alerts.sort(key=lambda a: (a["ts"], a["alert_id"]))
        return alerts

    def endpoint_row(team: str, ledger: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
        """An endpoint as the page draws it: spend per window against the spike detector's expected band."""
        account = (ledger or {}).get("accounts", {}).get(name)
        if account is None:
            return None
        starts, series = page.window_points(account["windows"], window_s, 1 + COST)
        state = (ledger or {}).get("detect", {}).get("spikes", {}).get(name)
        past = history(account, window_s)
        return {"endpoint": name, "cost_usd": account["total"][COST], "series": series, "starts": starts,
                "bands": page.expected_band(state, pipeline.rules.spike_rule(team, name), starts),
                "minutes": past["minutes"]["cost_usd"], "hours": past["hours"]["cost_usd"]}

    def team_sections(team: str, ledger: dict[str, Any] | None) -> list[tuple[str, str]]:
        """The team page's governance sections, from the same views as `/spend`, `/unit-costs` and `/runs`."""
        if not ledger:
            return []
        view = spend_view(ledger, team, None, window_s) or {}
        sections = [("Spend by category", page_sections.categories(view.get("total") or {}))]
        if view.get("tiers"):
            sections.append(("Spend by model tier", page_sections.tiers(view["tiers"])))
        sections.append(("Cost per outcome", page_sections.unit_costs(
            unit_cost_views(team, ledger.get("unit_costs"), pipeline.rules.unit_cost_rule))))
        runs = [run_view(run, team, pipeline.policy) for run in ledger.get("runs", {}).values()
                if run.get("started") or run.get("cost_usd")]
        if runs:
            sections.append(("Training runs", page_sections.runs(sorted(runs, key=lambda r: r["run_id"]))))
        return sections

    def incident_deliveries(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What this worker's delivery tables say of these alerts (`receiver|alert_id` -> result, or pending)."""
        status_of = {str(alert.get("alert_id")): str(alert.get("status")) for alert in alerts}
        found = []
        for name, result in (("deliveries", None), ("pending-deliveries", "pending")):
            table = cast(TableT | None, app.tables.get(name))  # the delivery agents' tables (worker/delivery.py)
            for key, value in (table.items() if table is not None else ()):
                receiver, _, alert_id = str(key).rpartition("|")
                if alert_id in status_of and value is not None:
                    found.append({"receiver": receiver, "alert_id": alert_id, "status": status_of[alert_id],
                                  "result": result or str(value)})
        return found

    @app.page(PAGE)
    class Page(View):
        """The page (HTML). Asked with `local=1` (by a peer), the overview answers its rows as JSON instead."""

        async def get(self, request: Request) -> Response:
            team, incident = request.query.get("team"), request.query.get("incident")
            if incident is not None:
                return await self.incident(request, incident)
            if team is not None:
                return await self.team(request, team)
            rows, teams_total = page_rows()
            if local_only(request):
                return self.json({"teams": rows, "teams_total": teams_total})
            for answer in await peers.answers(PAGE):
                rows.extend(answer["teams"])
                teams_total += answer["teams_total"]
            html = page.render_overview(rows, page.open_incidents(await every_alert(request)), teams_total,
                                        rfc3339(time.time()))
            return self.html(html)

        async def team(self, request: Request, team: str) -> Response:
            owner = peers.forward_to(request, team)
            if owner is not None:
                answer = await peers.forward(request, owner)
                if answer is not None:
                    status, content_type, body = answer
                    return self.bytes(body, content_type=content_type, status=status)
            ledger, now = store.load(team), time.time()
            endpoints = [row for name in (ledger or {}).get("accounts", {})
                         if name != TEAM_ACCOUNT and (row := endpoint_row(team, ledger, name)) is not None]
            alerts = [alert for alert in await every_alert(request) if alert.get("team") == team]
            budgets = [budget_view(rule, ledger, now) for rule in pipeline.rules.budgets.get(team, [])]
            return self.html(page.render_team(team, endpoints, alerts, budgets, rfc3339(now), window_s,
                                              team_sections(team, ledger)), status=200 if ledger else 404)

        async def incident(self, request: Request, key: str) -> Response:
            """From the team's owner, which raised it and holds its windows; here if the owner does not know it."""
            alerts = [alert for alert in await every_alert(request) if alert.get("dedup_key") == key]
            team = str(alerts[0].get("team")) if alerts else None
            owner = peers.forward_to(request, team) if team is not None else None
            if owner is not None:
                answer = await peers.forward(request, owner)
                if answer is not None and answer[0] == 200:
                    status, content_type, body = answer
                    return self.bytes(body, content_type=content_type, status=status)
            endpoint = None
            if team is not None and alerts[0].get("endpoint"):
                endpoint = endpoint_row(team, store.load(team), str(alerts[0]["endpoint"]))
            now = time.time()
            silences = [silence.to_json(now) for silence in pipeline.silences
                        if silence.active(now) and matches(silence.match, alerts[-1])] if alerts else []
            html = page.render_incident(key, alerts, endpoint, incident_deliveries(alerts), silences, rfc3339(now),
                                        window_s)
            return self.html(html, status=200 if alerts else 404)

    @app.page("/runs/{run_id}")
    class Runs(View):
        async def get(self, request: Request, run_id: str) -> Response:
            if len(run_id) > MAX_NAME_CHARS:  # no event could have named it
                return self.json({"error": f"a run id is at most {MAX_NAME_CHARS} characters"}, status=400)
            owned = owned_partitions()  # the memory store keeps other workers' keys too
            found = await find_run(store, run_id, lambda team: pipeline.partition_of(team) in owned)
            if found is not None:
                team, run = found
                return self.json(run_view(run, team, pipeline.policy))
            if not local_only(request):
                # Quoted whole: an id holding `?`, `/` or `%` must reach a peer as this one id, with local=1.
                for answer in await peers.answers(f"/runs/{quote(run_id, safe='')}"):
                    return self.json(answer)
            return self.json({"error": f"no run {run_id!r} seen"}, status=404)

    @app.page("/alerts")
    class Alerts(View):
        async def get(self, request: Request) -> Response:
            alerts = list(pipeline.recent_alerts)
            if not local_only(request):
                for answer in await peers.answers("/alerts"):
                    alerts.extend(answer["alerts"])
                alerts.sort(key=lambda a: (a["ts"], a["alert_id"]))
            return self.json({"alerts": alerts[-RECENT_ALERTS:]})

    @app.page("/budgets")
    class Budgets(View):
        """Each budget from its team's owner; a worker answers for the teams it holds and asks the others."""

        async def get(self, request: Request) -> Response:
            team = request.query.get("team")
            owned, now = owned_partitions(), time.time()
            views = [budget_view(rule, store.load(rule.team), now)
                     for rules in pipeline.rules.budgets.values() for rule in rules
                     if (team is None or rule.team == team) and pipeline.partition_of(rule.team) in owned]
            if not local_only(request):
                for answer in await peers.answers("/budgets", {"team": team} if team else None):
                    views.extend(answer["budgets"])
            views.sort(key=lambda view: (view["team"], view["budget"]))
            return self.json({"budgets": views})

    @app.page("/unit-costs")
    class UnitCosts(View):
        """Cost per outcome per (team, endpoint, outcome): a team from its owner; with no team, every worker's."""

        async def get(self, request: Request) -> Response:
            team = request.query.get("team")
            rule = pipeline.rules.unit_cost_rule
            if team is not None:
                owner = peers.forward_to(request, team)
                if owner is not None:
                    answer = await peers.forward(request, owner)
                    if answer is None:
                        return self.json({"error": f"the worker holding team={team!r} did not answer"}, status=503)
                    status, content_type, body = answer
                    return self.bytes(body, content_type=content_type, status=status)
                return self.json({"unit_costs": unit_cost_views(team, (store.load(team) or {}).get("unit_costs"),
                                                                rule)})
            views: list[dict[str, Any]] = []
            listing.page(None, 1)  # refreshes the listing's order of this worker's teams when it is stale
            for _, name in listing.order:
                ledger = store.load(name)
                if ledger and "unit_costs" in ledger:
                    views.extend(unit_cost_views(name, ledger["unit_costs"], rule))
                    if len(views) >= MAX_UNIT_COSTS:
                        break
            if not local_only(request):
                for answer in await peers.answers("/unit-costs"):
                    views.extend(answer["unit_costs"])
            views.sort(key=lambda view: (view["team"], view["endpoint"], view["outcome"]))
            return self.json({"unit_costs": views[:MAX_UNIT_COSTS]})

    @app.page("/silences")
    class Silences(View):
        """Every worker reads every silence (streams/worker/silences.py), so any one answers alone."""

        async def get(self, request: Request) -> Response:
            await silences_ready(pipeline)  # a worker just started answers once it has read them all
            now = time.time()
            return self.json({"silences": [silence.to_json(now) for silence in pipeline.silences]})

        async def post(self, request: Request) -> Response:
            try:
                silence = parse_silence(orjson.loads(await request.read()), now=time.time())
            except (orjson.JSONDecodeError, ValueError) as exc:
                return self.json({"error": f"not a silence: {exc}"}, status=400)
            try:
                await shared_silences.add(silence)
            except TooManySilences as exc:  # the cap (SPENDWATCH_MAX_SILENCES): this request can't be met now
                return self.json({"error": str(exc)}, status=409)
            log.info("silence %s added by %s until %s: %s", silence.id, silence.created_by,
                     silence.to_json()["ends_at"], silence.comment)
            return self.json(silence.to_json(time.time()), status=201)

    @app.page("/silences/{silence_id}")
    class OneSilence(View):
        async def get(self, request: Request, silence_id: str) -> Response:
            await silences_ready(pipeline)
            silence = pipeline.silences.get(silence_id)
            if silence is None:
                return self.json({"error": f"no silence {silence_id!r}"}, status=404)
            return self.json(silence.to_json(time.time()))

        async def delete(self, request: Request, silence_id: str) -> Response:
            await silences_ready(pipeline)
            if not await shared_silences.delete(silence_id):
                return self.json({"error": f"no silence {silence_id!r}"}, status=404)
            log.info("silence %s deleted", silence_id)
            return self.json({"id": silence_id, "deleted": True})

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
