"""Delivery from the alerts topic, which is the outbox: one queue topic and one agent per kind of sink.

    spendwatch.alerts ──► route ──► <app>-deliver-slack ──► deliver-slack ──► Slack (each routed channel)
                                └─► <app>-deliver-pagerduty ──► deliver-pagerduty ──► PagerDuty (each key)

`route` copies each alert to the queue of every receiver that should get it
(alerting/routing.py: `SPENDWATCH_ROUTES`, then the catch-all), naming the receiver in a
header. Each sink's agent reads its own queue in order (keyed by incident, so an incident's
messages stay in order), hands the alert to the named receiver through
`alerting.retry.deliver`, and records the outcome in the `deliveries` table before it moves
on. Each queue has its own committed offsets, so Slack being down never delays PagerDuty, and
a worker killed mid-outage delivers what was pending after restart; the table stops a
receiver that had already taken an alert from getting it twice. An alert refused for good (a
400), or given up on at the deadline, goes to the dead-letter topic with the sink and the reason.

A timer repeats still-firing incidents every `SPENDWATCH_ALERT_REPEAT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from faust.types import TableT, TopicT

from alerting.incidents import decode_alert, due_reminders, record, unsilenced
from alerting.notifier import Alert, Notifier
from alerting.retry import Outcome, deliver
from alerting.routing import PAGER, Receiver, build_notifiers, routing_from
from streams.worker.liveness import crash_only
from streams.worker.pipeline import RAW_BYTES, Pipeline, table

log = logging.getLogger("spendwatch.delivery")

#: How often incidents held back by a silence are checked for its end.
SILENCE_CHECK_S = 5.0
#: Names the receiver a queued alert is for (a name, never a secret: alerting/routing.py's `Receiver`).
RECEIVER_HEADER = "spendwatch-receiver"


#: Queues an acknowledgement for PagerDuty; returns how many PagerDuty receivers get it.
Acknowledge = Callable[[Alert], Awaitable[int]]


def attach(pipeline: Pipeline) -> Acknowledge:
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
    routing = routing_from(settings)
    notifiers = build_notifiers(settings, threads)
    receivers = {receiver.name: receiver for receiver in routing.receivers}
    queues: dict[str, TopicT] = {}
    for receiver in receivers.values():
        if receiver.sink not in queues:
            queues[receiver.sink] = app.topic(f"{settings.app_id}-deliver-{receiver.sink}",
                                              partitions=settings.partitions, **RAW_BYTES)
            _delivery_agent(pipeline, receiver.sink, {name: notifiers[name] for name, r in receivers.items()
                                                      if r.sink == receiver.sink},
                            queues[receiver.sink], deliveries, pending)

    async def enqueue(receiver: Receiver, alert: Alert, value: bytes) -> None:
        await queues[receiver.sink].send(key=alert["dedup_key"].encode(), value=value,
                                         headers=[(RECEIVER_HEADER, receiver.name.encode())])

    async def route(stream: Any) -> None:
        """Copy each alert to the queue of every receiver that should get it."""
        async for event in stream.events():
            alert = decode_alert(event.message.value)
            if alert is None:
                log.warning("skipped a message on the alerts topic that is not an alert")
                continue
            if alert.get("silenced"):
                pipeline.metrics.silenced.labels(alert["kind"]).inc()
                log.info("alert %s (%s %s) is silenced: not sent", alert["alert_id"], alert["kind"], alert["status"])
                continue
            for receiver in routing.receivers_for(alert):
                pending[f"{receiver.name}|{alert['alert_id']}"] = alert
                await enqueue(receiver, alert, event.message.value)

    app.agent(pipeline.alerts, name="route")(crash_only("route", route))

    @pending.on_recover
    async def requeue_pending() -> None:
        for key, alert in sorted(pending.items(), key=lambda item: (item[1]["ts"], item[0])):
            receiver = receivers.get(key.split("|", 1)[0])
            if receiver is None:
                log.warning("alert %s was pending for %s, which is no longer configured", alert["alert_id"],
                            key.split("|", 1)[0])
            elif deliveries.get(key) is None:
                log.info("re-queueing alert %s for %s after recovery", alert["alert_id"], receiver.name)
                await enqueue(receiver, alert, orjson.dumps(alert))

    async def track_incidents(stream: Any) -> None:
        async for event in stream.events():
            alert = decode_alert(event.message.value)
            if alert is None:
                continue
            repeats_sent.discard(alert["alert_id"])
            record(incidents, alert, now=time.time())

    app.agent(pipeline.alerts, name="incidents")(crash_only("incidents", track_incidents))

    async def send_again(alert: Alert) -> None:
        if alert["alert_id"] not in repeats_sent:  # the agent above records it when it comes back
            repeats_sent.add(alert["alert_id"])
            await pipeline.alerts.send(key=alert["dedup_key"].encode(), value=orjson.dumps(alert))

    @app.timer(60.0)
    async def repeat_firing() -> None:
        now = time.time()
        for alert in due_reminders(incidents, now=now, every_s=settings.alert_repeat_seconds):
            await send_again(dict(alert, silenced=pipeline.silences.silencing(alert, now) is not None))

    async def acknowledge(acknowledgement: Alert) -> int:
        """Queue `acknowledge` for every PagerDuty receiver the incident's alerts go to, and wait for the broker.

        Straight onto the queue, not the alerts topic (whose messages are alerts raised or resolved); and
        no `pending` record, which only an agent can write: once the broker has it, it is delivered.
        """
        pagers = [receiver for receiver in routing.receivers_for(acknowledgement) if receiver.sink == PAGER]
        for receiver in pagers:
            sent = await queues[PAGER].send(key=acknowledgement["dedup_key"].encode(),
                                            value=orjson.dumps(acknowledgement),
                                            headers=[(RECEIVER_HEADER, receiver.name.encode())])
            await sent
        return len(pagers)

    @app.timer(SILENCE_CHECK_S)
    async def release_unsilenced() -> None:
        """An incident still firing when its silence ends (expired or deleted) is let through, once."""
        for alert in unsilenced(incidents, lambda alert: pipeline.silences.silencing(alert, time.time()) is None):
            log.info("incident %s is no longer silenced and still firing: sending it", alert["dedup_key"])
            await send_again(alert)

    return acknowledge


def receiver_of(event: Any, sink: str) -> str:
    """The receiver a queued alert is for; a message queued before routes existed is for the sink's own."""
    name = (event.headers or {}).get(RECEIVER_HEADER)
    return name.decode() if isinstance(name, bytes) else sink


def _delivery_agent(pipeline: Pipeline, sink: str, notifiers: dict[str, Notifier], queue: TopicT,
                    deliveries: TableT, pending: TableT) -> None:
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
            receiver = receiver_of(event, sink)
            done_key = f"{receiver}|{alert['alert_id']}"
            if deliveries.get(done_key) is not None:
                log.info("%s already took alert %s", receiver, alert["alert_id"])
                event.ack()
                continue  # taken before a restart: never twice
            notifier = notifiers.get(receiver)
            if notifier is None:
                outcome = Outcome(False, 0, f"receiver {receiver} is no longer configured")
            else:
                log.info("delivering alert %s (%s %s) to %s", alert["alert_id"], alert["kind"], alert["status"],
                         receiver)
                outcome = await deliver(notifier, alert, deadline_s=settings.delivery_deadline_seconds,
                                        on_retry=lambda exc: metrics.retries.labels(sink).inc(),
                                        sleep=stoppable_sleep, stopping=lambda: app.should_stop)
            if outcome.abandoned:
                log.info("stopping: alert %s left for the next worker to deliver to %s", alert["alert_id"], receiver)
                pipeline.consumer.give_up(event.message)
                continue
            deliveries[done_key] = outcome.result
            if pending.get(done_key) is not None:
                del pending[done_key]
            # The receiver has it: make the record of that durable now, not at the next commit, so a
            # worker killed right after leaves the least room to deliver it a second time.
            await app.producer.flush()
            metrics.deliveries.labels(sink, outcome.result).inc()
            if not outcome.delivered:
                await pipeline.dead_letter.send(value=event.message.value, headers=[
                    ("spendwatch-reason", b"delivery_failed"),
                    ("spendwatch-sink", sink.encode()),
                    ("spendwatch-receiver", receiver.encode()),
                    ("spendwatch-detail", (outcome.error or "").encode()[:500]),
                    ("spendwatch-source", f"{event.message.topic}:{event.message.partition}:"
                                          f"{event.message.offset}".encode()),
                ])
            event.ack()

    app.agent(queue, name=f"deliver-{sink}")(crash_only(f"deliver-{sink}", deliver_alerts))
