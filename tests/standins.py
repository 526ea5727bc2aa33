"""Slack, PagerDuty, LiteLLM admin and Kubernetes API stand-ins: real HTTP servers on 127.0.0.1 that
check each request against the public API rules and can be told to fail. Fakes, not mocks
(Alertmanager's httptest style).

- Slack: incoming webhooks (`POST /services/...`) and the Web API (`POST /api/chat.postMessage`,
  `/api/chat.update`) with a bot token. Block Kit limits are checked, and any live mention
  (`<!channel>`, `<!here>`, `<@U...>`) in a text Slack would parse counts as a violation.
- PagerDuty: Events API v2 (`POST /v2/enqueue`): routing key, event_action, dedup_key,
  payload fields and their limits, 202 on success.
- LiteLLM's admin API: `POST /team/block` and `/team/unblock`, the master key and
  `{"team_id": str}` (its BlockTeamRequest); `POST /team/update` with `{"team_id", "models"}`.
- Kubernetes: `GET /apis/batch/v1/namespaces/{ns}/jobs?labelSelector=k=v[,k2=v2]` (a JobList) and
  `PATCH .../jobs/{name}` as a JSON merge patch, with the bearer token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from aiohttp import web

from streams.tools.broker import free_port

LIVE_MENTION = re.compile(r"<(!channel|!here|!everyone|@[UW][A-Z0-9]+|#C[A-Z0-9]+)")
PD_SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass
class Failure:
    """Answer `status` while `active()` says so (and for at most `times` requests when set)."""

    status: int
    until: float | None = None
    times: int | None = None
    retry_after: str | None = None
    when: Callable[[dict[str, Any]], bool] | None = None

    def end(self) -> None:
        """Stop failing from now on (an outage that lasts until the test has seen what it needs)."""
        self.until = time.monotonic()

    def applies(self, body: dict[str, Any]) -> bool:
        if self.when is not None and not self.when(body):
            return False
        if self.until is not None and time.monotonic() >= self.until:
            return False
        return self.times is None or self.times > 0


@dataclass
class StandIn:
    """Both receivers on one port. `accepted` holds what a real service would have taken."""

    port: int = field(default_factory=free_port)
    accepted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    accepted_at: list[float] = field(default_factory=list)  # time.monotonic() of each accepted request
    violations: list[str] = field(default_factory=list)
    attempts: int = 0
    failures: list[Failure] = field(default_factory=list)
    channel_ids: dict[str, str] = field(default_factory=dict)  # Slack channel name -> id
    litellm_master_key: str = "sk-litellm-master-0123456789"
    k8s_token: str = "k8s-service-account-token-abc"
    jobs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (namespace, name) -> Job
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (channel id, ts) -> message
    originals: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # the same, as first posted
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _ts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, status: int, *, seconds: float | None = None, times: int | None = None,
             retry_after: str | None = None, when: Callable[[dict[str, Any]], bool] | None = None) -> Failure:
        until = time.monotonic() + seconds if seconds is not None else None
        failure = Failure(status, until, times, retry_after, when)
        self.failures.append(failure)
        return failure

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [body for k, body in self.accepted if k == kind]

    # -- server ------------------------------------------------------------------------------

    def start(self) -> StandIn:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/services/{path:.*}", self._slack_webhook)
            app.router.add_post("/api/{method}", self._slack_api)
            app.router.add_post("/v2/enqueue", self._pagerduty)
            app.router.add_post("/team/{verb:block|unblock}", self._litellm_team)
            app.router.add_post("/team/update", self._litellm_team_update)
            app.router.add_get("/apis/batch/v1/namespaces/{namespace}/jobs", self._k8s_list_jobs)
            app.router.add_patch("/apis/batch/v1/namespaces/{namespace}/jobs/{name}", self._k8s_patch_job)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _failure(self, body: dict[str, Any]) -> web.Response | None:
        self.attempts += 1
        for failure in self.failures:
            if failure.applies(body):
                if failure.times is not None:
                    failure.times -= 1
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                return web.Response(status=failure.status, text="stand-in told to fail", headers=headers)
        return None

    # -- Slack ---------------------------------------------------------------------------------

    def _check_slack_message(self, body: dict[str, Any]) -> list[str]:
        problems = []
        if not isinstance(body.get("text"), str) or not body["text"]:
            problems.append("a message needs a text fallback")
        blocks = body.get("blocks") or []
        if len(blocks) > 50:
            problems.append("more than 50 blocks")
        texts = [body.get("text", "")]
        for block in blocks:
            kind = block.get("type")
            if kind == "header":
                text = block["text"]
                if text.get("type") != "plain_text" or len(text.get("text", "")) > 150:
                    problems.append("header must be plain_text of at most 150 characters")
            elif kind == "section":
                if "text" in block:
                    if len(block["text"]["text"]) > 3000:
                        problems.append("section text over 3000 characters")
                    texts.append(block["text"]["text"])
                fields = block.get("fields", [])
                if len(fields) > 10 or any(len(f["text"]) > 2000 for f in fields):
                    problems.append("section fields: at most 10 of 2000 characters")
                texts.extend(f["text"] for f in fields)
                if "text" not in block and not fields:
                    problems.append("a section needs text or fields")
            elif kind == "actions":
                problems += self._check_actions(block)
            elif kind == "context":
                elements = block.get("elements", [])
                if not 1 <= len(elements) <= 10:
                    problems.append("context: 1 to 10 elements")
                texts.extend(e.get("text", "") for e in elements)
            else:
                problems.append(f"unexpected block type {kind!r}")
        for text in texts:
            if LIVE_MENTION.search(text):
                problems.append(f"live mention in {text[:80]!r}")
        return problems

    @staticmethod
    def _check_actions(block: dict[str, Any]) -> list[str]:
        """Block Kit's actions block of buttons: 1-25 elements, ids and values within their limits."""
        problems = []
        elements = block.get("elements", [])
        if not 1 <= len(elements) <= 25:
            problems.append("actions: 1 to 25 elements")
        if len(block.get("block_id", "")) > 255:
            problems.append("block_id: at most 255 characters")
        ids = [e.get("action_id") for e in elements]
        if len(set(ids)) != len(ids):
            problems.append("action_id must be unique within the block")
        for element in elements:
            text = element.get("text", {})
            if element.get("type") != "button" or text.get("type") != "plain_text" or \
                    not 0 < len(text.get("text", "")) <= 75:
                problems.append("a button needs plain_text of at most 75 characters")
            if not element.get("action_id") or len(element["action_id"]) > 255:
                problems.append("action_id: 1 to 255 characters")
            if len(element.get("value", "")) > 2000:
                problems.append("button value: at most 2000 characters")
            if element.get("style") not in (None, "primary", "danger"):
                problems.append("button style: primary or danger")
        return problems

    async def _slack_webhook(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        failure = self._failure(body)
        if failure is not None:
            return failure
        problems = self._check_slack_message(body)
        if problems:
            self.violations.extend(problems)
            return web.Response(status=400, text="invalid_blocks")
        self.accepted.append(("slack", body))
        self.accepted_at.append(time.monotonic())
        return web.Response(text="ok")

    async def _slack_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if not request.headers.get("Authorization", "").startswith("Bearer xoxb-"):
            return web.json_response({"ok": False, "error": "not_authed"})
        raw = await request.read()
        body = orjson.loads(raw) if request.content_type == "application/json" else dict(await request.post())
        if isinstance(body.get("blocks"), str):
            body["blocks"] = orjson.loads(body["blocks"])
        failure = self._failure(body)
        if failure is not None:
            return failure
        problems = self._check_slack_message(body)
        if not body.get("channel"):
            problems.append("channel is required")
        if method == "chat.update" and not body.get("ts"):
            problems.append("chat.update needs ts")
        if method not in ("chat.postMessage", "chat.update"):
            problems.append(f"unexpected method {method}")
        if problems:
            self.violations.extend(problems)
            return web.json_response({"ok": False, "error": "invalid_blocks"})
        self._ts += 1
        ts = body.get("ts") or f"1700000000.{self._ts:06d}"
        channel = self.channel_id(body["channel"])
        if method == "chat.update" and (channel, ts) not in self.messages:
            return web.json_response({"ok": False, "error": "message_not_found"})
        if method == "chat.update" or not body.get("thread_ts"):
            self.messages[(channel, ts)] = body
            self.originals.setdefault((channel, ts), body)
        self.accepted.append((method, body))
        self.accepted_at.append(time.monotonic())
        return web.json_response({"ok": True, "channel": channel, "ts": ts})

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        """A top-level message as it stands now (updates applied)."""
        return self.messages[(self.channel_id(channel), ts)]

    def first_message(self, channel: str) -> tuple[str, str, dict[str, Any]]:
        """The first top-level message in a channel as it was posted: its channel id, ts and body."""
        wanted = self.channel_id(channel)
        ts = min(ts for chan, ts in self.originals if chan == wanted)
        return wanted, ts, self.originals[(wanted, ts)]

    def channel_id(self, channel: str) -> str:
        """Slack answers with the channel's id, whether it was given a name (#search) or the id."""
        if not channel.startswith("#"):
            return channel
        return self.channel_ids.setdefault(channel, f"C{len(self.channel_ids):03d}{channel[1:].upper()[:8]}")

    def in_channel(self, channel: str, method: str = "chat.postMessage") -> list[dict[str, Any]]:
        """What was posted (or updated) in a channel, given by name or id."""
        wanted = {channel, self.channel_id(channel)}
        return [body for body in self.of(method) if body["channel"] in wanted]

    # -- PagerDuty -----------------------------------------------------------------------------

    async def _pagerduty(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        failure = self._failure(body)
        if failure is not None:
            return failure
        problems = []
        if not isinstance(body.get("routing_key"), str) or len(body["routing_key"]) != 32:
            problems.append("routing_key must be 32 characters")
        action = body.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            problems.append(f"bad event_action {action!r}")
        dedup_key = body.get("dedup_key")
        if action != "trigger" and not dedup_key:
            problems.append("dedup_key is required to acknowledge or resolve")
        if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
            problems.append("dedup_key: a string of at most 255 characters")
        if action == "trigger":
            payload = body.get("payload") or {}
            if not payload.get("summary") or len(payload["summary"]) > 1024:
                problems.append("payload.summary: required, at most 1024 characters")
            if not payload.get("source"):
                problems.append("payload.source is required")
            if payload.get("severity") not in PD_SEVERITIES:
                problems.append(f"payload.severity must be one of {sorted(PD_SEVERITIES)}")
        if problems:
            self.violations.extend(problems)
            return web.json_response({"status": "invalid event", "errors": problems}, status=400)
        self.accepted.append(("pagerduty", body))
        self.accepted_at.append(time.monotonic())
        return web.json_response({"status": "success", "message": "Event processed", "dedup_key": dedup_key},
                                 status=202)

    # -- LiteLLM admin API and Kubernetes API (the action executors) ----------------------------

    async def _litellm_team(self, request: web.Request) -> web.Response:
        """LiteLLM's POST /team/block and /team/unblock: the master key, and a BlockTeamRequest body."""
        if request.headers.get("Authorization") != f"Bearer {self.litellm_master_key}":
            return web.json_response({"error": {"message": "Authentication Error", "code": "401"}}, status=401)
        body = orjson.loads(await request.read())
        if set(body) != {"team_id"} or not isinstance(body["team_id"], str) or not body["team_id"]:
            self.violations.append(f"litellm /team/{request.match_info['verb']}: body must be {{'team_id': str}}")
            return web.json_response({"detail": [{"msg": "team_id: field required"}]}, status=422)
        failure = self._failure(body)
        if failure is not None:
            return failure
        self.accepted.append((f"litellm:{request.match_info['verb']}", body))
        self.accepted_at.append(time.monotonic())
        return web.json_response({"team_id": body["team_id"], "blocked": request.match_info["verb"] == "block"})

    async def _litellm_team_update(self, request: web.Request) -> web.Response:
        """LiteLLM's POST /team/update: the master key, and an UpdateTeamRequest body (team_id, and here models)."""
        if request.headers.get("Authorization") != f"Bearer {self.litellm_master_key}":
            return web.json_response({"error": {"message": "Authentication Error", "code": "401"}}, status=401)
        body = orjson.loads(await request.read())
        models = body.get("models")
        if not isinstance(body.get("team_id"), str) or not body["team_id"] or not isinstance(models, list) \
                or not all(isinstance(m, str) and m for m in models):
            self.violations.append("litellm /team/update: body must be {'team_id': str, 'models': [str, ...]}")
            return web.json_response({"detail": [{"msg": "team_id or models invalid"}]}, status=422)
        self.accepted.append(("litellm:update", body))
        self.accepted_at.append(time.monotonic())
        return web.json_response({"team_id": body["team_id"], "data": {"models": models}})

    def _k8s_authorized(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.k8s_token}":
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "reason": "Unauthorized", "code": 401}, status=401)
        return None


    async def _k8s_list_jobs(self, request: web.Request) -> web.Response:
        """GET .../jobs?labelSelector=key=value[,key=value...]: a batch/v1 JobList of the matching Jobs."""
        refused = self._k8s_authorized(request)
        if refused is not None:
            return refused
        selector = request.query.get("labelSelector", "")
        terms = [term.split("=") for term in selector.split(",")]  # equality terms, all of which must hold
        if not selector or any(len(term) != 2 or not all(term) for term in terms):
            self.violations.append(f"kubernetes: expected labelSelector key=value[,key=value...], got {selector!r}")
            return web.json_response({"kind": "Status", "code": 400, "reason": "BadRequest"}, status=400)
        namespace = request.match_info["namespace"]
        items = [job for (ns, _), job in self.jobs.items()
                 if ns == namespace and all(job["metadata"].get("labels", {}).get(k) == v for k, v in terms)]
        return web.json_response({"apiVersion": "batch/v1", "kind": "JobList", "metadata": {"resourceVersion": "1"},
                                  "items": items})


    async def _k8s_patch_job(self, request: web.Request) -> web.Response:
        """PATCH a Job: a JSON merge patch, which is what `kubectl patch --type merge` sends."""
        refused = self._k8s_authorized(request)
        if refused is not None:
            return refused
        if request.content_type != "application/merge-patch+json":
            self.violations.append(f"kubernetes: PATCH with content type {request.content_type!r}")
            return web.json_response({"kind": "Status", "code": 415, "reason": "UnsupportedMediaType"}, status=415)
        key = (request.match_info["namespace"], request.match_info["name"])
        if key not in self.jobs:
            return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)
        patch = orjson.loads(await request.read())
        if set(patch) != {"spec"} or not isinstance(patch["spec"].get("suspend"), bool):
            self.violations.append(f"kubernetes: unexpected patch {patch!r}")
        self.jobs[key]["spec"].update(patch["spec"])
        self.accepted.append(("kubernetes:patch", {"namespace": key[0], "name": key[1], "patch": patch}))
        self.accepted_at.append(time.monotonic())
        return web.json_response(self.jobs[key])


def slack_click(worker_url: str, signing_secret: str, channel: str, ts: str, message: dict[str, Any], action: str,
                user: str = "ana", timestamp: int | None = None, sign_with: str | None = None) -> int:
    """Click a button as Slack does: a signed `block_actions` interaction, form-encoded; the HTTP status.

    The payload has the fields of Slack's documented example (type, user, api_app_id, token,
    container, trigger_id, team, channel, message, response_url, actions). `sign_with` signs
    with another secret (a forgery); `timestamp` sets the request's time (a replay).
    """
    [button] = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == action]
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ANA", "username": user, "name": user, "team_id": "T0SPEND"},
        "api_app_id": "A0SPEND", "token": "legacy-verification-token", "trigger_id": "123.456.abc",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
        "team": {"id": "T0SPEND", "domain": "spendwatch-test"},
        "channel": {"id": channel, "name": channel.lower()},
        "message": {"type": "message", "ts": ts, "text": message["text"], "blocks": message["blocks"]},
        "response_url": "https://hooks.slack.com/actions/T0SPEND/1/xyz",
        "actions": [{"action_id": action, "block_id": "spendwatch-incident", "type": "button",
                     "value": button["value"], "text": button["text"], "action_ts": f"{time.time():.6f}"}],
    }
    body = urllib.parse.urlencode({"payload": orjson.dumps(payload).decode()}).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new((sign_with or signing_secret).encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    response = httpx.post(f"{worker_url}/slack/interactions", content=body, timeout=10, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest.hexdigest()}"})
    return response.status_code


def job(namespace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """A batch/v1 Job as the API returns it (the fields the executor reads, and a few it does not)."""
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": namespace, "labels": labels, "uid": f"uid-{name}"},
            "spec": {"suspend": False, "parallelism": 8, "completions": 1},
            "status": {"active": 8}}
