"""Which alerts call for which commands, and what Slack is told about them."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from alerting.actions import commands_for, describe
from alerting.executors import PLAIN_HTTP_SETTING, KubernetesExecutor, LiteLLMExecutor, WebhookExecutor
from alerting.notifier import DeliveryError
from streams.errors import SettingsError
from streams.settings import load_settings
from tests.standins import StandIn, job


def alert(kind="budget_threshold", status="firing", pct=100, endpoint=None, run_id=None):
    return {"alert_id": f"{kind}-{status}-{pct}", "kind": kind, "status": status, "threshold_pct": pct,
            "team": "search", "endpoint": endpoint, "run_id": run_id, "summary": "why", "ts": "2026-12-01T10:00:00Z"}


@pytest.mark.parametrize(("given", "wanted"), [
    (alert(), ["block_team"]),
    (alert(status="resolved"), ["unblock_team"]),
    (alert(pct=80), []),
    (alert(endpoint="chat"), ["throttle_endpoint"]),
    (alert(endpoint="chat", status="resolved"), []),
    (alert(kind="runaway_training", run_id="ft-1"), ["stop_run"]),
    (alert(kind="runaway_training", status="resolved", run_id="ft-1"), []),
    (alert(kind="flash_spike"), []),
])
def test_which_alerts_call_for_which_commands(given, wanted):
    assert [c["action"] for c in commands_for(given, dry_run=False)] == wanted


def test_the_same_alert_makes_the_same_command():
    assert commands_for(alert(), True) == commands_for(alert(), True)
    assert commands_for(alert(), True)[0]["action_id"] != commands_for(alert(status="resolved"), True)[0]["action_id"]


def test_slack_hears_what_was_done_and_how_to_undo_it():
    [block] = commands_for(alert(), dry_run=False)
    assert describe(block, True).startswith("Done: blocked team search. Why: why. To undo: unblock it")
    assert describe(block, False, "litellm: 500").startswith("Could not act: team search was not blocked")


def test_an_executor_that_cannot_reach_its_api_says_so_without_its_secret():
    litellm = LiteLLMExecutor("http://127.0.0.1:9", "sk-master-secret", allow_plain_http=True)
    with pytest.raises(DeliveryError) as info:
        asyncio.run(litellm.notify(commands_for(alert(), False)[0]))
    assert info.value.retryable and "sk-master-secret" not in str(info.value) + repr(litellm)
    kubernetes = KubernetesExecutor("http://127.0.0.1:9", "k8s-token-secret", "default", "spendwatch.io/run-id",
                                    allow_plain_http=True)
    assert "k8s-token-secret" not in repr(kubernetes)


RUN, TEAM = "spendwatch.io/run-id", "spendwatch.io/team"


def stop(run_id="ft-1", team="research"):
    return {"action_id": "s1", "action": "stop_run", "team": team, "run_id": run_id, "reason": "runaway",
            "alert_id": "a1", "dry_run": False, "ts": "2026-12-01T10:00:00Z"}


def kubernetes(standin: StandIn) -> KubernetesExecutor:
    return KubernetesExecutor(standin.url, standin.k8s_token, "ml", RUN, team_label=TEAM, allow_plain_http=True)


def test_a_job_is_suspended_only_when_it_carries_both_the_run_and_the_team_label(standin):
    """Issue "Poison": run ids are producers' names; another team's Job sharing the id is never touched."""
    standin.jobs[("ml", "ours")] = job("ml", "ours", {RUN: "ft-1", TEAM: "research"})
    standin.jobs[("ml", "theirs")] = job("ml", "theirs", {RUN: "ft-1", TEAM: "ads"})
    standin.jobs[("ml", "unlabelled")] = job("ml", "unlabelled", {RUN: "ft-1"})
    asyncio.run(kubernetes(standin).notify(stop()))
    assert [p["name"] for p in standin.of("kubernetes:patch")] == ["ours"]
    assert standin.jobs[("ml", "theirs")]["spec"]["suspend"] is False
    assert standin.jobs[("ml", "unlabelled")]["spec"]["suspend"] is False
    assert standin.violations == []
    with pytest.raises(DeliveryError) as info:  # ads opted in too: its command finds only its own Jobs
        asyncio.run(kubernetes(standin).notify(stop(run_id="ft-1", team="nobody")))
    assert not info.value.retryable and [p["name"] for p in standin.of("kubernetes:patch")] == ["ours"]


class LaxKubernetes(StandIn):
    """A Kubernetes API that lists every Job of the namespace, whatever the selector says."""

    async def _k8s_list_jobs(self, request: web.Request) -> web.Response:
        items = [j for (ns, _), j in self.jobs.items() if ns == request.match_info["namespace"]]
        return web.json_response({"apiVersion": "batch/v1", "kind": "JobList", "items": items})


def test_a_job_the_api_lists_without_both_labels_is_still_not_patched():
    """Checked again on the answer: an API (or proxy) that ignored the selector still gets only the team's Job
    suspended."""
    lax = LaxKubernetes().start()
    try:
        lax.jobs[("ml", "ours")] = job("ml", "ours", {RUN: "ft-1", TEAM: "research"})
        lax.jobs[("ml", "theirs")] = job("ml", "theirs", {RUN: "ft-1", TEAM: "ads"})
        lax.jobs[("ml", "other-run")] = job("ml", "other-run", {RUN: "ft-2", TEAM: "research"})
        asyncio.run(kubernetes(lax).notify(stop()))
        assert [p["name"] for p in lax.of("kubernetes:patch")] == ["ours"]
    finally:
        lax.stop()


@pytest.mark.parametrize(("run_id", "team"), [
    ("ft-1,spendwatch.io/team!=x", "research"), ("ft-1", "research,x=y"), ("ft 1", "research"),
    ("a" * 64, "research"), ("ft-1", "research team"), ("", "research")])
def test_a_name_that_is_no_label_value_is_refused_before_any_call(standin, run_id, team):
    standin.jobs[("ml", "ours")] = job("ml", "ours", {RUN: "ft-1", TEAM: "research"})
    with pytest.raises(DeliveryError) as info:
        asyncio.run(kubernetes(standin).notify(stop(run_id=run_id, team=team)))
    assert not info.value.retryable and standin.of("kubernetes:patch") == [] and standin.violations == []


def test_executors_refuse_plain_http_unless_told_naming_the_setting():
    for build in (lambda plain: LiteLLMExecutor("http://litellm:4000", "sk-secret", allow_plain_http=plain),
                  lambda plain: KubernetesExecutor("http://kube:6443", "t", "default", RUN, allow_plain_http=plain),
                  lambda plain: WebhookExecutor("http://ops.example/hook?token=s3cr3t", allow_plain_http=plain)):
        with pytest.raises(ValueError, match=PLAIN_HTTP_SETTING) as info:
            build(False)
        assert "s3cr3t" not in str(info.value) and "sk-secret" not in str(info.value)
        build(True)
    LiteLLMExecutor("https://litellm:4000", "sk-secret")
    with pytest.raises(ValueError):
        WebhookExecutor("ftp://ops.example/hook", allow_plain_http=True)


@pytest.mark.parametrize(("actions", "more", "named"), [
    ({"a": {"executor": "litellm"}}, {"litellm_url": "http://litellm:4000", "litellm_master_key": "k"},
     "SPENDWATCH_LITELLM_URL"),
    ({"a": {"executor": "kubernetes"}}, {"kubernetes_api_url": "http://kube:6443"}, "SPENDWATCH_KUBERNETES_API_URL"),
    ({"a": {"executor": "webhook", "webhook_url": "http://ops.example/h?token=s3cr3t"}}, {},
     "SPENDWATCH_ACTIONS['a'].webhook_url"),
])
def test_settings_refuse_plain_http_executor_urls_at_start(monkeypatch, actions, more, named):
    monkeypatch.chdir("/")  # no .env
    with pytest.raises(SettingsError) as info:
        load_settings(actions=actions, **more)
    assert named in str(info.value) and PLAIN_HTTP_SETTING in str(info.value) and "s3cr3t" not in str(info.value)
    load_settings(actions=actions, allow_plain_http_executors=True, **more)
    https = {k: v.replace("http://", "https://") for k, v in more.items()}
    safe = {t: {k: (v.replace("http://", "https://") if isinstance(v, str) else v) for k, v in a.items()}
            for t, a in actions.items()}
    load_settings(actions=safe, **https)
