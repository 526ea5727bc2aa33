"""The Faust agents: short `async for` loops around the pure functions in intake and the ledger store."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from detectors.verdict import Verdict
from streams.input.events import InputLimits
from streams.input.intake import Intake, RawMessage, micro_batches, parts_by_team, take_in
from streams.input.otlp import SpanFields
from streams.state.deltas import encode_deltas
from streams.state.judging import alert_from_verdict
from streams.state.store import Step, encode_progress
from streams.state.watermarks import PROGRESS_KEY
from streams.worker.actions import publish_commands
from streams.worker.consumer import unbundled
from streams.worker.dead_letters import send_dead_letter
from streams.worker.liveness import crash_only
from streams.worker.pipeline import Pipeline
from streams.worker.silences import silences_ready

log = logging.getLogger("spendwatch.agents")

#: How often the ingest agent looks for a partition that has just turned idle (a look costs a dict scan).
IDLE_CHECK_SECONDS = 0.1


def attach(pipeline: Pipeline) -> None:
    app, settings, liveness = pipeline.app, pipeline.settings, pipeline.liveness
    limits = InputLimits.from_settings(settings)
    otlp_topics = {settings.otlp_topic: SpanFields(settings.otlp_team_attribute, settings.otlp_endpoint_attribute)} \
        if settings.otlp_topic else None
    # A message's steps and the rebuild after a rebalance must not interleave: a step awaits its
    # alerts' sends between computing and writing, and a rebuild in that gap replaced the rows
    # waiting in memory with the table's, which did not yet hold the step's new pending chunk;
    # those rows were then never applied (a takeover left every team a few rows short).
    ledger_turn = asyncio.Lock()

    async def ingest(stream: Any) -> None:
        """Validate and price a micro-batch; forward each team's rows, then report progress."""
        size = settings.batch_size
        async for events in stream.take_events(size, within=settings.batch_seconds):
            # Events are bundles of messages (streams/worker/consumer.py); a micro-batch is bounded
            # by messages and by bytes.
            messages = [RawMessage(m.topic, m.partition, m.offset, m.value or b"", headers_of(m.headers))
                        for e in events for m in unbundled(e.message)]
            for batch in micro_batches(messages, size, settings.batch_bytes):
                with liveness.step("ingest"):
                    intake = take_in(batch, pipeline.kind_of_topic, time.time(),
                                     settings.future_tolerance_seconds, settings.gpu_prices, limits, otlp_topics)
                    if intake.skipped:
                        pipeline.metrics.events.labels(settings.otlp_topic, "skipped").inc(intake.skipped)
                    await forward(pipeline, intake)
                    await send_progress(pipeline)

    async def ledger(stream: Any) -> None:
        """Take each delta in, and apply what the watermark releases: one record write per team per step."""
        async for event in stream.events():
            # Events are bundles of consecutive messages of one partition (streams/worker/consumer.py).
            messages = [(m.key or b"", m.value or b"") for m in unbundled(event.message)]
            async with ledger_turn:
                with liveness.step("ledger"):
                    for step in pipeline.stage.steps(event.message.partition, messages):
                        for verdict in step.verdicts:  # on the broker before the record that raised them
                            await publish_alert(pipeline, verdict)
                        pipeline.store.commit(step)
                        count_step(pipeline, step)

    app.agent(pipeline.inputs, name="ingest")(crash_only("ingest", ingest))
    app.agent(pipeline.deltas, name="ledger")(crash_only("ledger", ledger))

    @pipeline.ledgers.on_recover
    async def rebuild_from_table() -> None:
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == pipeline.deltas_topic_name}

        def partition_if_owned(team: str) -> int | None:
            partition = pipeline.partition_of(team)
            return partition if partition in owned else None

        async with ledger_turn:
            pipeline.stage.recover(partition_if_owned)
        log.info("rebuilt rows waiting for the watermark (%d teams) and the event_id index (%d ids)",
                 sum(1 for rows in pipeline.store.pending.values() if rows), len(pipeline.ids))

    @app.timer(1.0)
    async def report_progress() -> None:
        """Idle partitions are only noticed by the clock: report every second, data or not."""
        if not app.rebalancing:
            await send_progress(pipeline)

    @app.timer(IDLE_CHECK_SECONDS)
    async def report_idle() -> None:
        """A partition turning idle is reported when it happens, not at the next second's report."""
        if not app.rebalancing and pipeline.progress.idle_due():
            await send_progress(pipeline)

    stalls: dict[int, tuple[float | None, float]] = {}  # per deltas partition: (watermark, since when)
    warned: dict[int, float] = {}

    @app.timer(5.0)
    async def measure_lag() -> None:
        """Consumer lag per assigned partition: how far behind the newest message each one is."""
        consumer = app.consumer
        assigned: dict[str, int] = {}
        lagging: set[str] = set()
        agent_of = {topic: "ingest" for topic in pipeline.kind_of_topic}
        agent_of[pipeline.deltas_topic_name] = "ledger"
        for tp in consumer.assignment():
            assigned[tp.topic] = assigned.get(tp.topic, 0) + 1
            position = await consumer.position(tp)
            highwater = consumer.highwater(tp)
            if position is not None and highwater is not None:
                pipeline.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))
                if highwater > position and tp.topic in agent_of:
                    lagging.add(agent_of[tp.topic])
        pipeline.lagging.clear()
        pipeline.lagging.update(lagging)
        for topic in pipeline.metrics.assigned_topics | assigned.keys():
            pipeline.metrics.assigned.labels(topic).set(assigned.get(topic, 0))
        pipeline.metrics.assigned_topics |= assigned.keys()
        pending = sum(len(rows) for rows in pipeline.store.pending.values())
        pipeline.metrics.pending.set(pending)
        now = time.monotonic()
        for partition, mark in pipeline.stage.watermarks.items():
            value = mark.value()
            pipeline.metrics.watermark.labels(str(partition)).set(value)
            last_value, since = stalls.get(partition, (None, now))
            if value != last_value:
                stalls[partition] = (value, now)
            elif pending and now - since > 30 and now - warned.get(partition, 0.0) > 60:
                warned[partition] = now
                log.warning("watermark of deltas partition %d has stayed at %s for %.0fs with %d events waiting; "
                            "held by %s", partition, value, now - since, pending, ", ".join(mark.holders()[:8]))



async def forward(pipeline: Pipeline, intake: Intake) -> None:
    metrics = pipeline.metrics
    metrics.batches.inc()
    for dead in intake.dead_letters:
        await send_dead_letter(pipeline, dead)
    for team, parts in parts_by_team(intake).items():
        for value in encode_deltas(parts, pipeline.settings.max_message_bytes):
            await pipeline.deltas.send(key=team.encode(), value=value)
    for source, (last_offset, newest) in intake.sources.items():
        pipeline.progress.forwarded(source, last_offset, newest)
    if intake.unpriced:
        metrics.unpriced.inc(sum(intake.unpriced.values()))


async def send_progress(pipeline: Pipeline) -> None:
    """Every owned input partition's progress, to every deltas partition, after the deltas it covers."""
    consumer = pipeline.consumer
    try:
        assignment = consumer.assignment()
    except Exception:  # noqa: BLE001 - the consumer is not started yet: nothing to report
        return
    owned = {f"{tp.topic}:{tp.partition}": (consumer.resume_offset(tp), consumer.highwater(tp))
             for tp in assignment if tp.topic in pipeline.kind_of_topic}
    partitions = {topic: consumer.topic_partitions(topic) for topic in pipeline.kind_of_topic}
    counts = {topic: count for topic, count in partitions.items() if count is not None}
    if not owned or len(counts) < len(partitions):
        return
    value = encode_progress(counts, pipeline.progress.report(owned))
    for partition in range(pipeline.settings.partitions):
        await pipeline.deltas.send(key=PROGRESS_KEY, value=value, partition=partition)


def count_step(pipeline: Pipeline, step: Step) -> None:
    metrics, applied = pipeline.metrics, step.applied
    topic_of: dict[str, str] = {}
    for topic, kind in pipeline.kind_of_topic.items():  # usage's own topic, not the OTLP one that also carries usage
        topic_of.setdefault(kind, topic)
    for kind, counted in applied.counted.items():
        metrics.events.labels(topic_of[kind], "accepted").inc(counted)
    if applied.duplicates:
        metrics.events.labels(pipeline.settings.usage_topic, "duplicate").inc(applied.duplicates)
    if step.replayed:
        metrics.events.labels(pipeline.deltas_topic_name, "replayed").inc(step.replayed)
    if applied.late:
        metrics.late.inc(applied.late)
    if applied.out_of_order:
        metrics.out_of_order.inc(applied.out_of_order)
    metrics.windows.inc(step.windows_judged)
    metrics.deltas.inc()
    metrics.dedup_ids.set(len(pipeline.ids))
    watch_endpoint_count(pipeline, step.team)


def watch_endpoint_count(pipeline: Pipeline, team: str) -> None:
    """A team past the endpoint limit is named once in the log and counted in a gauge; nothing is dropped."""
    limit = pipeline.settings.max_endpoints_per_team
    if pipeline.store.endpoints.get(team, 0) > limit and team not in pipeline.teams_over_limit:
        pipeline.teams_over_limit.add(team)
        pipeline.metrics.teams_over_endpoint_limit.set(len(pipeline.teams_over_limit))
        log.warning("team %r has more than %d endpoints (SPENDWATCH_MAX_ENDPOINTS_PER_TEAM); all are still counted, "
                    "at about 2 KB of state each", team, limit)


def headers_of(headers: Any) -> dict[str, bytes] | None:
    """A message's headers as a mapping, or None when it has none (nearly every message: no cost then)."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, dict) else headers
    return {str(name).lower(): value for name, value in pairs if isinstance(value, bytes)}


async def publish_alert(pipeline: Pipeline, verdict: Verdict) -> None:
    """Alerts go to the alerts topic (the outbox the delivery agent reads) and to `/alerts`.

    Waits for the broker to have it: the ledger record that raised it is written after.
    """
    alert = alert_from_verdict(verdict, pipeline.settings.base_url, pipeline.settings.public_url)
    await silences_ready(pipeline)
    silence = pipeline.silences.silencing(alert, time.time())
    if silence is not None:  # raised, recorded and shown as ever; the route agent holds it back
        alert["silenced"] = True
        log.info("alert %s is silenced by %s (%s)", alert["alert_id"], silence.id, silence.comment)
    delivered = await pipeline.alerts.send(key=alert["dedup_key"].encode(), value=orjson.dumps(alert))
    await delivered
    pipeline.recent_alerts.append(alert)
    pipeline.metrics.alerts.labels(alert["kind"], alert["status"]).inc()
    await publish_commands(pipeline, alert)
    log.warning("alert %s %s: %s", alert["kind"], alert["status"], alert["summary"])

