"""The actions topic, as an outbox: commands go on it with the alert that calls for them, and the
`execute` agent carries each out once, then tells people in Slack what it did and how to undo it.

    alert published ──► spendwatch.actions ──► execute ──► LiteLLM / Kubernetes / webhook
                                                      └──► Slack (and the console): what was done

A command is carried out only by the executors its team opted into (`SPENDWATCH_ACTIONS`), and
not at all when it is a dry run (the default): then Slack says what would have been done. The
agent acknowledges a command only once its outcome is recorded in the `deliveries` table
(`action|<action_id>`, then `notice|<action_id>` for the message), so a worker killed half-way
neither repeats a call nor loses one, as for alerts (streams/worker/delivery.py). A command no
executor could carry out goes to the dead-letter topic with the reason.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from alerting.actions import describe
from alerting.executors import KubernetesExecutor, LiteLLMExecutor, WebhookExecutor
from alerting.notifier import Alert, Notifier
from alerting.retry import deliver
from alerting.routing import CONSOLE, SLACK, build_notifiers, routing_from
from alerting.slack import NOTICE
from streams.errors import RejectedEvent
from streams.input.commands import parse_command
from streams.input.events import INTERNAL_ERROR, Rejection, unforeseen
from streams.input.intake import DeadLetter, RawMessage
from streams.settings import ActionSetting
from streams.state.judging import commands_from_alert
from streams.worker.dead_letters import send_dead_letter
from streams.worker.liveness import crash_only
from streams.worker.pipeline import RAW_BYTES, Pipeline, table

log = logging.getLogger("spendwatch.actions")


async def publish_commands(pipeline: Pipeline, alert: Alert) -> None:
    """Put the commands an alert calls for on the actions topic, after the alert and before its ledger record."""
    for command in commands_from_alert(alert, pipeline.settings):
        await (await pipeline.app.topic(pipeline.settings.actions_topic, **RAW_BYTES).send(
            key=command["team"].encode(), value=orjson.dumps(command)))
        log.info("command %s %s for %s (%s)", command["action_id"], command["action"], command["team"],
                 "dry run" if command["dry_run"] else "for real")


def executors_for(setting: ActionSetting, pipeline: Pipeline, team: str) -> list[Notifier]:
    settings = pipeline.settings
    plain_http = settings.allow_plain_http_executors  # settings refused plain http at start unless this is set
    out: list[Notifier] = []
    for name in setting.executor:
        if name == "litellm" and settings.litellm_url and settings.litellm_master_key is not None:
            team_ids = {team: setting.litellm_team_id} if setting.litellm_team_id else {}
            out.append(LiteLLMExecutor(settings.litellm_url, settings.litellm_master_key.get_secret_value(), team_ids,
                                       allow_plain_http=plain_http))
        elif name == "kubernetes":
            token = settings.kubernetes_token.get_secret_value() if settings.kubernetes_token is not None else None
            out.append(KubernetesExecutor(settings.kubernetes_api_url, token, settings.kubernetes_namespace,
                                          settings.kubernetes_run_label,
                                          {team: setting.namespace} if setting.namespace else {},
                                          team_label=settings.kubernetes_team_label, allow_plain_http=plain_http))
        elif name == "webhook" and setting.webhook_url is not None:
            out.append(WebhookExecutor(setting.webhook_url.get_secret_value(), allow_plain_http=plain_http))
    return out


def attach(pipeline: Pipeline) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    if not settings.actions:
        return
    done = table(app, "actions-done", settings.partitions, help="action|id and notice|id -> outcome")
    routing = routing_from(settings)
    people = {name: notifier for name, notifier in build_notifiers(settings, {}).items()
              if name.split(":")[0].split("-")[0] in (SLACK, CONSOLE)}

    async def tell(command: dict[str, Any], text: str) -> None:
        """The news, where the team's alerts go in Slack (routes apply) and on the console."""
        news = {"alert_id": f"notice-{command['action_id']}", "dedup_key": command["action_id"], "kind": NOTICE,
                "status": "firing", "severity": "info", "team": command["team"],
                "endpoint": command.get("endpoint"), "summary": text, "ts": command["ts"]}
        for receiver in routing.receivers_for(news):
            notifier = people.get(receiver.name)
            if notifier is not None:
                await deliver(notifier, news, deadline_s=settings.delivery_deadline_seconds)

    async def execute(stream: Any) -> None:
        async for event in stream.noack().events():
            try:
                command = parse_command(event.message.value)
            except Exception as exc:  # noqa: BLE001 - RejectedEvent or unforeseen: one bad command never stops the agent
                reason, detail = (exc.reason, exc.detail) if isinstance(exc, RejectedEvent) \
                    else (INTERNAL_ERROR, unforeseen(exc))
                message = event.message
                await send_dead_letter(pipeline, DeadLetter(
                    RawMessage(message.topic, message.partition, message.offset, message.value or b""),
                    Rejection(reason, detail, message.value or b"", None)))
                event.ack()
                continue
            action_key, notice_key = f"action|{command['action_id']}", f"notice|{command['action_id']}"
            if done.get(action_key) is None:
                outcome = await carry_out(command)
                if outcome is None:  # stopping mid-retry: the next worker carries it out
                    pipeline.consumer.give_up(event.message)
                    continue
                done[action_key] = outcome
                await app.producer.flush()  # the record of the call is durable before anything else
            if done.get(notice_key) is None:
                await tell(command, done[action_key]["text"])
                done[notice_key] = "told"
                await app.producer.flush()
            event.ack()

    async def carry_out(command: dict[str, Any]) -> dict[str, Any] | None:
        setting = settings.action_setting(command["team"])
        # Both must say "for real": a command on the topic cannot turn off its team's dry run.
        if command["dry_run"] or setting is None or setting.dry_run:
            log.info("dry run: %s for %s not carried out", command["action"], command["team"])
            return {"result": "dry_run", "text": describe(dict(command, dry_run=True), False)}
        runners = [e for e in executors_for(setting, pipeline, command["team"])
                   if command["action"] in getattr(e, "actions", ())]
        errors = []
        for runner in runners:
            outcome = await deliver(runner, command, deadline_s=settings.delivery_deadline_seconds,
                                    stopping=lambda: app.should_stop)
            if outcome.abandoned:
                return None
            metrics.deliveries.labels(f"action:{runner.name}", outcome.result).inc()
            if not outcome.delivered:
                errors.append(f"{runner.name}: {outcome.error}")
        if not runners:
            errors.append(f"no executor of team {command['team']} can {command['action']}")
        if errors:
            await pipeline.dead_letter.send(value=orjson.dumps(command), headers=[
                ("spendwatch-reason", b"action_failed"), ("spendwatch-detail", "; ".join(errors).encode()[:500])])
            log.error("command %s %s for %s failed: %s", command["action_id"], command["action"], command["team"],
                      "; ".join(errors))
        return {"result": "failed" if errors else "done", "at": time.time(),
                "text": describe(command, not errors, "; ".join(errors) or None)}

    topic = app.topic(settings.actions_topic, **RAW_BYTES)
    app.agent(topic, name="execute")(crash_only("execute", execute))
