"""The Faust agents: short `async for` loops around the pure functions in intake and ledger."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from streams.app import Pipeline
from streams.delta_codec import Part, decode_delta, encode_delta
from streams.intake import GPU, USAGE, DeadLetter, Intake, RawMessage, kind_of_source, parts_by_team, take_in
from detectors.verdict import Verdict
from streams.detection import TeamWatch, alert_from_verdict
from streams.ledger import apply_gpu, apply_runs, apply_usage, new_ledger
from streams.liveness import crash_only

log = logging.getLogger("spendwatch.agents")


def attach(pipeline: Pipeline) -> None:
    app, settings = pipeline.app, pipeline.settings

    liveness = pipeline.liveness

    async def ingest(stream: Any) -> None:
        """Validate and price a micro-batch; forward one delta per team."""
        async for events in stream.take_events(settings.batch_size, within=settings.batch_seconds):
            with liveness.step("ingest"):
                messages = [RawMessage(e.message.topic, e.message.partition, e.message.offset, e.message.value or b"")
                            for e in events]
                intake = take_in(messages, pipeline.kind_of_topic, time.time(),
                                 settings.future_tolerance_seconds, settings.gpu_prices)
                await forward(pipeline, intake)

    async def ledger(stream: Any) -> None:
        """Apply each delta to its team's ledger: one table write per team per delta."""
        async for event in stream.events():
            with liveness.step("ledger"):
                team = event.message.key.decode()
                chunk_key = f"{team}|{event.message.partition}|{event.message.offset}"
                verdicts = apply_delta(pipeline, team, decode_delta(event.message.value), chunk_key)
                for verdict in verdicts:
                    await publish_alert(pipeline, verdict)

    app.agent(pipeline.inputs, name="ingest")(crash_only("ingest", ingest))
    app.agent(pipeline.deltas, name="ledger")(crash_only("ledger", ledger))

    @pipeline.event_ids.on_recover
    async def rebuild_id_index() -> None:
        rebuild_ids(pipeline)

    @app.timer(5.0)
    async def measure_lag() -> None:
        """Consumer lag per assigned partition: how far behind the newest message each one is."""
        consumer = app.consumer
        assigned: dict[str, int] = {}
        lagging: set[str] = set()
        agent_of = {settings.usage_topic: "ingest", settings.gpu_topic: "ingest", settings.runs_topic: "ingest",
                    pipeline.deltas_topic_name: "ledger"}
        for tp in consumer.assignment():
            assigned[tp.topic] = assigned.get(tp.topic, 0) + 1
            position = await consumer.position(tp)
            highwater = consumer.highwater(tp)
            if position is not None and highwater is not None:
                pipeline.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))
                if highwater > position and tp.topic in agent_of:
                    lagging.add(agent_of[tp.topic])
        pipeline.lagging = lagging
        for topic in pipeline.metrics.assigned_topics | assigned.keys():
            pipeline.metrics.assigned.labels(topic).set(assigned.get(topic, 0))
        pipeline.metrics.assigned_topics |= assigned.keys()


async def forward(pipeline: Pipeline, intake: Intake) -> None:
    metrics = pipeline.metrics
    metrics.batches.inc()
    for dead in intake.dead_letters:
        await send_dead_letter(pipeline, dead)
    for team, parts in parts_by_team(intake, pipeline.kind_of_topic).items():
        await pipeline.deltas.send(key=team.encode(), value=encode_delta(parts))
    if intake.unpriced:
        metrics.unpriced.inc(sum(intake.unpriced.values()))


async def send_dead_letter(pipeline: Pipeline, dead: DeadLetter) -> None:
    """The rejected bytes, untouched, with why and where from in the headers."""
    message, rejection = dead
    headers = [
        ("spendwatch-reason", rejection.reason.encode()),
        ("spendwatch-detail", rejection.detail.encode()),
        ("spendwatch-source", f"{message.topic}:{message.partition}:{message.offset}".encode()),
    ]
    if rejection.index is not None:
        headers.append(("spendwatch-index", str(rejection.index).encode()))
    await pipeline.dead_letter.send(value=rejection.payload, headers=headers)
    pipeline.metrics.dead_letters.labels(rejection.reason).inc()
    pipeline.metrics.events.labels(message.topic, "rejected").inc()
    log.warning("dead-lettered %s:%s:%s: %s (%s)", message.topic, message.partition, message.offset,
                rejection.reason, rejection.detail)


async def publish_alert(pipeline: Pipeline, verdict: Verdict) -> None:
    """Alerts go to the alerts topic (the outbox the delivery agent reads) and to `/alerts`."""
    alert = alert_from_verdict(verdict, pipeline.settings.base_url)
    await pipeline.alerts.send(key=alert["dedup_key"].encode(), value=orjson.dumps(alert))
    pipeline.app.recent_alerts.append(alert)  # type: ignore[attr-defined]
    pipeline.metrics.alerts.labels(alert["kind"], alert["status"]).inc()
    log.warning("alert %s %s: %s", alert["kind"], alert["status"], alert["summary"])


def apply_delta(pipeline: Pipeline, team: str, parts: list[Part], chunk_key: str) -> list[Verdict]:
    """Apply one delta to the team's ledger part by part, run the detectors over its rows, write the ledger back."""
    ledger = pipeline.ledgers.get(team) or new_ledger()
    watch = TeamWatch(ledger, team, pipeline.rules, pipeline.policy)
    metrics = pipeline.metrics
    changed, new_ids = False, []
    for source, rows in parts:
        kind = kind_of_source(source, pipeline.kind_of_topic)
        if kind == USAGE:
            applied = apply_usage(ledger, team, source, rows, pipeline.policy, pipeline.ids, on_row=watch.on_usage)
        elif kind == GPU:
            applied = apply_gpu(ledger, source, rows, pipeline.policy, on_row=watch.on_run)
        else:
            applied = apply_runs(ledger, source, rows, on_row=watch.on_run)
        topic = source.rsplit(":", 1)[0]
        metrics.events.labels(topic, "accepted").inc(applied.counted)
        if applied.duplicates:
            metrics.events.labels(topic, "duplicate").inc(applied.duplicates)
        if applied.replayed:
            metrics.events.labels(topic, "replayed").inc(applied.replayed)
        if applied.late:
            metrics.late.inc(applied.late)
        changed = changed or bool(applied.counted or applied.duplicates)
        new_ids.extend(applied.new_ids)
    verdicts = watch.close()
    metrics.windows.inc(watch.windows_judged)
    metrics.deltas.inc()
    if changed:
        pipeline.ledgers[team] = ledger
    if new_ids:
        # Written after the ledger: a crash between the two can only forget ids, never lose counts.
        pipeline.event_ids[chunk_key] = new_ids
        pipeline.id_chunks.setdefault(team, []).append((chunk_key, max(ts for _, ts in new_ids)))
    forget_old_ids(pipeline, team, ledger)
    return verdicts


def forget_old_ids(pipeline: Pipeline, team: str, ledger: dict[str, Any]) -> None:
    """Drop id chunks older than the dedup horizon behind the team's newest event."""
    chunks = pipeline.id_chunks.get(team)
    team_account = ledger["accounts"].get("")
    if not chunks or team_account is None:
        return
    cutoff = team_account["high"] - pipeline.settings.dedup_horizon_seconds
    while chunks and chunks[0][1] < cutoff:
        chunk_key, _ = chunks.pop(0)
        del pipeline.event_ids[chunk_key]
    pipeline.ids.prune(team, team_account["high"])
    pipeline.metrics.dedup_ids.set(len(pipeline.ids))


def rebuild_ids(pipeline: Pipeline) -> None:
    """Rebuild the in-memory id index from the event-ids table after recovery."""
    pipeline.ids.clear()
    pipeline.id_chunks.clear()
    for chunk_key, pairs in pipeline.event_ids.items():
        team = chunk_key.rsplit("|", 2)[0]
        for hashed, ts in pairs:
            pipeline.ids.remember(team, hashed, ts)
        pipeline.id_chunks.setdefault(team, []).append((chunk_key, max((ts for _, ts in pairs), default=0.0)))
    log.info("rebuilt the event_id index: %d ids", len(pipeline.ids))
