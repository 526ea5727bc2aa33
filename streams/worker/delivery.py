"""Delivery from the alerts topic, which is the outbox: one queue topic and one agent per sink.

    spendwatch.alerts ──► route ──► <app>-deliver-slack ──► deliver_slack ──► Slack
                                └─► <app>-deliver-pagerduty ──► deliver_pagerduty ──► PagerDuty

`route` copies each alert to the queue of every sink that should get it (routing by
severity). Each sink's agent reads its own queue in order (keyed by incident, so an
incident's messages stay in order), hands the alert to `alerting.retry.deliver`, and
records the outcome in the `deliveries` table before it moves on. Each queue has its own
committed offsets, so Slack being down never delays PagerDuty, and a worker killed
mid-outage delivers what was pending after restart; the table stops a sink that had
already taken an alert from getting it twice. An alert refused for good (a 400), or given
up on at the deadline, goes to the dead-letter topic with the sink and the reason.

A timer repeats still-firing incidents every `SPENDWATCH_ALERT_REPEAT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from faust.types import TableT, TopicT

from alerting.incidents import decode_alert, due_reminders, record
from alerting.notifier import Notifier
from alerting.retry import deliver
from alerting.routing import build_notifiers, routes_to
from streams.worker.liveness import crash_only
from streams.worker.pipeline import RAW_BYTES, Pipeline, table

log = logging.getLogger("spendwatch.delivery")


def attach(pipeline: Pipeline) -> None:
    app, settings = pipeline.app, pipeline.settings
    deliveries = table(app, "deliveries", settings.partitions,
                                help="sink|alert_id -> delivered or failed")
    threads = table(app, "slack-threads", settings.partitions,
                    help="incident -> the Slack message that opened it")
    # Written only by the agent below, so each key's changelog lands in its alert's partition.
    incidents = table(app, "incidents", settings.partitions,
                      help="firing incidents, for repeats")
    repeats_sent: set[str] = set()  # alert_ids of repeats published but not yet read back
    # sink|alert_id -> the alert, from routing until its sink took or refused it. Kafka should
    # redeliver an unfinished alert from its queue after a crash; measured here, a restarted
    # worker sometimes resumed past it instead (uncommitted partitions), so after every
    # recovery what is still pending is put back on its queue (the deliveries table drops
    # any copy a sink already took).
    pending = table(app, "pending-deliveries", settings.partitions, help="sink|alert_id -> alert not yet handled")
    queues = {}
    for notifier in build_notifiers(settings, threads):
        queues[notifier.name] = app.topic(f"{settings.app_id}-deliver-{notifier.name}",
                                          partitions=settings.partitions, **RAW_BYTES)
        _delivery_agent(pipeline, notifier, queues[notifier.name], deliveries, pending)

    async def route(stream: Any) -> None:
        """Copy each alert to the queue of every sink that should get it."""
        async for event in stream.events():
            alert = decode_alert(event.message.value)
            if alert is None:
                log.warning("skipped a message on the alerts topic that is not an alert")
                continue
            for sink, queue in queues.items():
                if routes_to(sink, alert, settings.pagerduty_min_severity):
                    pending[f"{sink}|{alert['alert_id']}"] = alert
                    await queue.send(key=alert["dedup_key"].encode(), value=event.message.value)

    app.agent(pipeline.alerts, name="route")(crash_only("route", route))

    @pending.on_recover
    async def requeue_pending() -> None:
        for key, alert in sorted(pending.items(), key=lambda item: (item[1]["ts"], item[0])):
            sink = key.split("|", 1)[0]
            if sink in queues and deliveries.get(key) is None:
                log.info("re-queueing alert %s for %s after recovery", alert["alert_id"], sink)
                await queues[sink].send(key=alert["dedup_key"].encode(), value=orjson.dumps(alert))

    async def track_incidents(stream: Any) -> None:
        async for event in stream.events():
            alert = decode_alert(event.message.value)
            if alert is None:
                continue
            repeats_sent.discard(alert["alert_id"])
            record(incidents, alert, now=time.time())

    app.agent(pipeline.alerts, name="incidents")(crash_only("incidents", track_incidents))

    @app.timer(60.0)
    async def repeat_firing() -> None:
        for alert in due_reminders(incidents, now=time.time(), every_s=settings.alert_repeat_seconds):
            if alert["alert_id"] not in repeats_sent:  # the agent above records it when it comes back
                repeats_sent.add(alert["alert_id"])
                await pipeline.alerts.send(key=alert["dedup_key"].encode(), value=orjson.dumps(alert))


def _delivery_agent(pipeline: Pipeline, notifier: Notifier, queue: TopicT, deliveries: TableT, pending: TableT) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics

    async def stoppable_sleep(seconds: float) -> None:
        """A backoff that ends early when the worker is stopping (SIGTERM must not wait out a retry)."""
        end = time.monotonic() + seconds
        while not app.should_stop and time.monotonic() < end:
            await asyncio.sleep(min(0.2, end - time.monotonic()))

    async def deliver_alerts(stream: Any) -> None:
        # Acknowledged by hand, once the outcome is recorded: an alert abandoned at shutdown is not
        # acknowledged, so its offset is never committed and the next worker delivers it.
        async for event in stream.noack().events():
            alert = decode_alert(event.message.value)
            if alert is None:
                event.ack()
                continue
            done_key = f"{notifier.name}|{alert['alert_id']}"
            if deliveries.get(done_key) is not None:
                log.info("%s already took alert %s", notifier.name, alert["alert_id"])
                event.ack()
                continue  # taken before a restart: never twice
            log.info("delivering alert %s (%s %s) to %s", alert["alert_id"], alert["kind"], alert["status"],
                     notifier.name)
            outcome = await deliver(notifier, alert, deadline_s=settings.delivery_deadline_seconds,
                                    on_retry=lambda exc: metrics.retries.labels(notifier.name).inc(),
                                    sleep=stoppable_sleep, stopping=lambda: app.should_stop)
            if outcome.abandoned:
                log.info("stopping: alert %s left for the next worker to deliver to %s", alert["alert_id"],
                         notifier.name)
                pipeline.consumer.give_up(event.message)
                continue
            deliveries[done_key] = outcome.result
            if pending.get(done_key) is not None:
                del pending[done_key]
            # The receiver has it: make the record of that durable now, not at the next commit, so a
            # worker killed right after leaves the least room to deliver it a second time.
            await app.producer.flush()
            metrics.deliveries.labels(notifier.name, outcome.result).inc()
            if not outcome.delivered:
                await pipeline.dead_letter.send(value=event.message.value, headers=[
                    ("spendwatch-reason", b"delivery_failed"),
                    ("spendwatch-sink", notifier.name.encode()),
                    ("spendwatch-detail", (outcome.error or "").encode()[:500]),
                    ("spendwatch-source", f"{event.message.topic}:{event.message.partition}:"
                                          f"{event.message.offset}".encode()),
                ])
            event.ack()

    app.agent(queue, name=f"deliver-{notifier.name}")(crash_only(f"deliver-{notifier.name}", deliver_alerts))
