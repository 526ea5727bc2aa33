"""Executors: the calls that carry out a command (alerting/actions.py), one per system.

They have the sinks' shape (`name`, and `notify`, which raises `DeliveryError` saying whether a
retry can help), so `alerting.retry.deliver` retries them the same way. Each takes only the
commands it can carry out (`can`).

- LiteLLM: `POST /team/block` and `/team/unblock` with `{"team_id": ...}` and the master key;
  `POST /team/update` with `{"team_id", "models": [...]}` to hold a team to its allowed models.
- Kubernetes: the Jobs labelled with both the run's id and its team
  (`GET .../jobs?labelSelector=run=ID,team=TEAM`), each patched `{"spec": {"suspend": true}}`
  (JSON merge patch): the Job's pods stop, and resume when it is patched back. The run label
  alone is not enough: run ids are producers' names, and two teams may share one in a
  namespace, so a team opted in to actions could otherwise suspend another team's Job.
- Webhook: the command as JSON in a POST, for anything else.

Their URLs must be https: the calls carry a master key, a service account token or a webhook
secret, and act on other systems. Plain http only where `SPENDWATCH_ALLOW_PLAIN_HTTP_EXECUTORS`
says so (tests, local stand-ins). Error texts have every secret masked before they are cut
(alerting/redact.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import aiohttp
import orjson

from alerting.notifier import Alert, DeliveryError, error_for_status
from alerting.redact import redacted

TIMEOUT = aiohttp.ClientTimeout(total=10)
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
PLAIN_HTTP_SETTING = "SPENDWATCH_ALLOW_PLAIN_HTTP_EXECUTORS"
#: A Kubernetes label value: at most 63 characters, alphanumerics with - _ . inside (and empty).
LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def checked_url(url: str, what: str, allow_plain_http: bool) -> str:
    """`url` when it is https (or http and `allow_plain_http`); else ValueError naming the setting, never the URL."""
    scheme = urlparse(url).scheme
    if scheme == "https" or (scheme == "http" and allow_plain_http):
        return url
    raise ValueError(f"{what} must be an https URL (plain http only with {PLAIN_HTTP_SETTING}=true, "
                     f"for tests and local stand-ins)")


async def _call(method: str, url: str, what: str, secret: str, **kwargs: Any) -> Any:
    """One HTTP call; its JSON answer, or DeliveryError (the secret never in it)."""
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, \
                session.request(method, url, **kwargs) as response:
            text = await response.text()
            if response.status >= 300:
                # Masked whole, then cut: cut first, a secret echoed across the cut would leave its prefix.
                raise error_for_status(what, response.status, response.headers.get("Retry-After"),
                                       redacted(text, [secret], 200))
            return orjson.loads(text) if text.strip() else None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError(f"{what} unreachable: {type(exc).__name__}", retryable=True) from None
    except orjson.JSONDecodeError:
        return None


class LiteLLMExecutor:
    name = "litellm"
    actions = frozenset({"block_team", "unblock_team", "restrict_models"})

    def __init__(self, url: str, master_key: str, team_ids: dict[str, str] | None = None, *,
                 allow_plain_http: bool = False) -> None:
        self._url = checked_url(url, "SPENDWATCH_LITELLM_URL", allow_plain_http).rstrip("/")
        self._key = master_key
        self.team_ids = team_ids or {}  # our team name -> LiteLLM's team_id, where they differ

    def __repr__(self) -> str:
        return f"LiteLLMExecutor(url={self._url!r}, master_key=**********)"

    async def notify(self, command: Alert) -> None:
        team_id = self.team_ids.get(command["team"], command["team"])
        body: dict[str, Any] = {"team_id": team_id}
        if command["action"] == "restrict_models":
            path = "/team/update"
            body["models"] = list(command["models"])
        else:
            path = "/team/block" if command["action"] == "block_team" else "/team/unblock"
        await _call("POST", f"{self._url}{path}", "litellm", self._key, data=orjson.dumps(body),
                    headers={"Authorization": f"Bearer {self._key}", "Content-Type": "application/json"})


class KubernetesExecutor:
    name = "kubernetes"
    actions = frozenset({"stop_run"})

    def __init__(self, api_url: str, token: str | None, namespace: str, run_label: str,
                 namespaces: dict[str, str] | None = None, *, team_label: str = "spendwatch.io/team",
                 allow_plain_http: bool = False) -> None:
        self._url = checked_url(api_url, "SPENDWATCH_KUBERNETES_API_URL", allow_plain_http).rstrip("/")
        self._token = token
        self.namespace, self.run_label, self.namespaces = namespace, run_label, namespaces or {}
        self.team_label = team_label

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
        run_id, team = str(command.get("run_id") or ""), str(command["team"])
        if not run_id or not LABEL_VALUE.fullmatch(run_id) or not team or not LABEL_VALUE.fullmatch(team):
            # Not a label value, so no Job can carry it; and a `,` or `=` in it would add terms to the selector.
            raise DeliveryError("kubernetes: the run id or team is not a valid label value; no Job can carry it",
                                retryable=False)
        token = self._token_now()
        namespace = quote(self.namespaces.get(team, self.namespace), safe="")
        jobs_url = f"{self._url}/apis/batch/v1/namespaces/{namespace}/jobs"
        auth = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        wanted = {self.run_label: run_id, self.team_label: team}
        listed = await _call("GET", jobs_url, "kubernetes", token, headers=auth,
                             params={"labelSelector": ",".join(f"{k}={v}" for k, v in wanted.items())})
        # The API server selected these; each is checked again, so a Job is patched only when it
        # carries both labels, whatever answered the list.
        jobs = [item["metadata"]["name"] for item in (listed or {}).get("items", [])
                if all((item["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
        if not jobs:
            raise DeliveryError(f"kubernetes: no Job labelled {self.run_label}={run_id} and {self.team_label}={team} "
                                f"in {namespace}", retryable=False)
        for job in jobs:
            await _call("PATCH", f"{jobs_url}/{quote(job, safe='')}", "kubernetes", token,
                        data=orjson.dumps({"spec": {"suspend": True}}),
                        headers={**auth, "Content-Type": "application/merge-patch+json"})


class WebhookExecutor:
    name = "webhook"
    actions = frozenset({"block_team", "unblock_team", "stop_run", "throttle_endpoint", "restrict_models"})

    def __init__(self, url: str, *, allow_plain_http: bool = False) -> None:
        self._url = checked_url(url, "the action's webhook_url", allow_plain_http)  # may embed a token: never
        # in an error or a log line

    def __repr__(self) -> str:
        return "WebhookExecutor(url=**********)"

    async def notify(self, command: Alert) -> None:
        # The URL less its scheme is the secret: a token may sit in its host, path or query.
        await _call("POST", self._url, "action webhook", self._url.split("://", 1)[-1], data=orjson.dumps(command),
                    headers={"Content-Type": "application/json"})
