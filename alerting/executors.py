"""Executors: the calls that carry out a command (alerting/actions.py), one per system.

They have the sinks' shape (`name`, and `notify`, which raises `DeliveryError` saying whether a
retry can help), so `alerting.retry.deliver` retries them the same way. Each takes only the
commands it can carry out (`can`).

- LiteLLM: `POST /team/block` and `/team/unblock` with `{"team_id": ...}` and the master key.
- Kubernetes: the Jobs labelled with the run's id (`GET .../jobs?labelSelector=`), each patched
  `{"spec": {"suspend": true}}` (JSON merge patch): the Job's pods stop, and resume when it is
  patched back.
- Webhook: the command as JSON in a POST, for anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from alerting.notifier import Alert, DeliveryError, error_for_status

TIMEOUT = aiohttp.ClientTimeout(total=10)
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


async def _call(method: str, url: str, what: str, secret: str, **kwargs: Any) -> Any:
    """One HTTP call; its JSON answer, or DeliveryError (the secret never in it)."""
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, \
                session.request(method, url, **kwargs) as response:
            text = await response.text()
            if response.status >= 300:
                raise error_for_status(what, response.status, response.headers.get("Retry-After"),
                                       text[:200].replace(secret, "**********") if secret else text[:200])
            return orjson.loads(text) if text.strip() else None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError(f"{what} unreachable: {type(exc).__name__}", retryable=True) from None
    except orjson.JSONDecodeError:
        return None


class LiteLLMExecutor:
    name = "litellm"
    actions = frozenset({"block_team", "unblock_team"})

    def __init__(self, url: str, master_key: str, team_ids: dict[str, str] | None = None) -> None:
        self._url, self._key = url.rstrip("/"), master_key
        self.team_ids = team_ids or {}  # our team name -> LiteLLM's team_id, where they differ

    def __repr__(self) -> str:
        return f"LiteLLMExecutor(url={self._url!r}, master_key=**********)"

    async def notify(self, command: Alert) -> None:
        path = "/team/block" if command["action"] == "block_team" else "/team/unblock"
        team_id = self.team_ids.get(command["team"], command["team"])
        await _call("POST", f"{self._url}{path}", "litellm", self._key, data=orjson.dumps({"team_id": team_id}),
                    headers={"Authorization": f"Bearer {self._key}", "Content-Type": "application/json"})


class KubernetesExecutor:
    name = "kubernetes"
    actions = frozenset({"stop_run"})

    def __init__(self, api_url: str, token: str | None, namespace: str, run_label: str,
                 namespaces: dict[str, str] | None = None) -> None:
        self._url, self._token = api_url.rstrip("/"), token
        self.namespace, self.run_label, self.namespaces = namespace, run_label, namespaces or {}

    def __repr__(self) -> str:
        return f"KubernetesExecutor(api_url={self._url!r}, token=**********)"

    def _token_now(self) -> str:
        # The service account token is rotated on disk: read it at each call.
        if self._token is not None:
            return self._token
        try:
            return SERVICE_ACCOUNT_TOKEN.read_text().strip()
        except OSError:
            raise DeliveryError("kubernetes: no token (SPENDWATCH_KUBERNETES_TOKEN or a service account)",
                                retryable=False) from None

    async def notify(self, command: Alert) -> None:
        token = self._token_now()
        namespace = quote(self.namespaces.get(command["team"], self.namespace), safe="")
        jobs_url = f"{self._url}/apis/batch/v1/namespaces/{namespace}/jobs"
        auth = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        listed = await _call("GET", jobs_url, "kubernetes", token, headers=auth,
                             params={"labelSelector": f"{self.run_label}={command['run_id']}"})
        jobs = [item["metadata"]["name"] for item in (listed or {}).get("items", [])]
        if not jobs:
            raise DeliveryError(f"kubernetes: no Job labelled {self.run_label}={command['run_id']} in {namespace}",
                                retryable=False)
        for job in jobs:
            await _call("PATCH", f"{jobs_url}/{quote(job, safe='')}", "kubernetes", token,
                        data=orjson.dumps({"spec": {"suspend": True}}),
                        headers={**auth, "Content-Type": "application/merge-patch+json"})


class WebhookExecutor:
    name = "webhook"
    actions = frozenset({"block_team", "unblock_team", "stop_run", "throttle_endpoint"})

    def __init__(self, url: str) -> None:
        self._url = url  # may embed a token: never in an error or a log line

    def __repr__(self) -> str:
        return "WebhookExecutor(url=**********)"

    async def notify(self, command: Alert) -> None:
        await _call("POST", self._url, "action webhook", self._url, data=orjson.dumps(command),
                    headers={"Content-Type": "application/json"})
