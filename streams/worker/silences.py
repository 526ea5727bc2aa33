"""Silences shared by every worker and kept across restarts: the compacted topic `<app>-silences`.

`POST /silences` writes the silence there (key: its id) and `DELETE /silences/{id}` a tombstone;
each answers once the broker has the record. Every worker reads the whole topic from its
start with a plain consumer (no group: each needs every silence) and keeps following it, so
a worker restarted after SIGKILL, or a second worker, honours every silence. Alerts wait for
that first read before they are published, so none escapes a silence at startup.

The topic stays small: a new silence past `SPENDWATCH_MAX_SILENCES` is refused, and a silence
ended `SPENDWATCH_SILENCE_RETENTION_SECONDS` ago is removed with a tombstone by whichever worker
notices first (every worker looks; a second tombstone for a key changes nothing), so
compaction drops it and no worker reads it again. Keep that retention above the time a write
takes to reach every worker: a Slack click extends only an active silence, so a removal that
long after its end cannot race with one.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TopicT

from alerting.silences import Silence, silence_from_record
from streams.kafka_client import aiokafka_options, bootstrap_servers
from streams.worker.liveness import exit_now
from streams.worker.pipeline import RAW_BYTES, Pipeline

log = logging.getLogger("spendwatch.silences")

#: How long publishing an alert waits for the silences to be read at startup before it goes on without.
LOAD_WAIT_S = 30.0
#: How often each worker looks for silences due for removal.
SWEEP_EVERY_S = 5.0


class SharedSilences:
    """The way to change the silences every worker holds (`pipeline.silences`), and the reader feeding them."""

    def __init__(self, pipeline: Pipeline, broker_url: str) -> None:
        self.pipeline, self.broker_url = pipeline, broker_url
        self.book, self.loaded = pipeline.silences, pipeline.silences_loaded
        self.topic: TopicT = pipeline.app.topic(f"{pipeline.settings.app_id}-silences", partitions=1,
                                                compacting=True, deleting=False, **RAW_BYTES)

    async def add(self, silence: Silence) -> None:
        """Write a silence (new, or replacing one by its id); TooManySilences past the cap.

        Each worker checks its own book, so workers adding at the same moment can pass the cap
        by a few: it bounds memory and the topic, it is not a quota.
        """
        self.book.make_room_for(silence, self.pipeline.settings.max_silences)
        await self._write(silence.id, orjson.dumps(silence.to_json()))
        self.book.put(silence)

    async def delete(self, silence_id: str) -> bool:
        if self.book.get(silence_id) is None:
            return False
        await self._write(silence_id, None)
        self.book.remove(silence_id)
        return True

    async def _write(self, key: str, value: bytes | None) -> None:
        await self.topic.maybe_declare()
        sent = await self.topic.send(key=key.encode(), value=value)
        await sent  # the broker has it: every worker will read it, now or after a restart

    async def sweep(self, now: float) -> int:
        """Tombstone every silence that ended a retention ago; how many were removed."""
        due = self.book.expired(now - self.pipeline.settings.silence_retention_seconds)
        for silence in due:
            await self._write(silence.id, None)
            self.book.remove(silence.id)
        if due:
            log.info("removed %d expired silences", len(due))
        return len(due)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        if value is None:
            self.book.remove(key.decode(errors="replace"))
            return
        try:
            self.book.put(silence_from_record(orjson.loads(value)))
        except Exception as exc:  # noqa: BLE001 - one bad record must not stop the reader (and the worker)
            log.warning("skipped a record on %s that is not a silence (%s)", self.topic.get_topic_name(),
                        type(exc).__name__)

    async def follow(self) -> None:
        """Read the topic from its start, then keep reading; `loaded` is set at the first end reached."""
        await self.topic.maybe_declare()
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(self.broker_url), group_id=None,
                                    enable_auto_commit=False, fetch_max_wait_ms=200,
                                    **aiokafka_options(self.pipeline.settings))
        await consumer.start()
        try:
            partition = TopicPartition(self.topic.get_topic_name(), 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            next_sweep = 0.0
            while not self.pipeline.app.should_stop:
                batch = await consumer.getmany(partition, timeout_ms=500)
                for record in batch.get(partition, []):
                    self.apply(record.key, record.value)
                if self.loaded.is_set() and time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + SWEEP_EVERY_S
                    await self._sweep_now()
                if not self.loaded.is_set():
                    # Tansu's ListOffsets is not to be trusted; a fetch response's high watermark is.
                    highwater = consumer.highwater(partition)
                    if highwater is not None and await consumer.position(partition) >= highwater:
                        log.info("silences loaded: %d known", len(list(self.book)))
                        self.loaded.set()
        finally:
            await consumer.stop()

    async def _sweep_now(self) -> None:
        try:
            await self.sweep(time.time())
        except Exception as exc:  # noqa: BLE001 - removal can wait for the next look; reading must go on
            log.warning("could not remove expired silences yet: %s", type(exc).__name__)


async def silences_ready(pipeline: Pipeline) -> None:
    """Return once the silences topic has been read to its end (or `LOAD_WAIT_S` has passed: logged)."""
    if pipeline.silences_loaded.is_set():
        return
    try:
        await asyncio.wait_for(pipeline.silences_loaded.wait(), LOAD_WAIT_S)
    except TimeoutError:
        log.error("silences not loaded after %.0fs; publishing alerts without them", LOAD_WAIT_S)


def attach(pipeline: Pipeline, broker_url: str) -> SharedSilences:
    silences = SharedSilences(pipeline, broker_url)

    @pipeline.app.task
    async def follow_silences() -> None:
        try:
            await silences.follow()
        except Exception:  # noqa: BLE001 (logged by exit_now) a worker blind to silences would page through them
            exit_now("reading the silences topic failed")

    return silences
