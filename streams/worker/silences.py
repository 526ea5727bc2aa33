"""Silences shared by every worker and kept across restarts: the compacted topic `<app>-silences`.

`POST /silences` writes the silence there (key: its id) and `DELETE /silences/{id}` a tombstone;
each answers once the broker has the record. Every worker reads the whole topic from its
start with a plain consumer (no group: each needs every silence) and keeps following it, so
a worker restarted after SIGKILL, or a second worker, honours every silence. Alerts wait for
that first read before they are published, so none escapes a silence at startup.
"""

from __future__ import annotations

import asyncio
import logging

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


class SharedSilences:
    """The way to change the silences every worker holds (`pipeline.silences`), and the reader feeding them."""

    def __init__(self, pipeline: Pipeline, broker_url: str) -> None:
        self.pipeline, self.broker_url = pipeline, broker_url
        self.book, self.loaded = pipeline.silences, pipeline.silences_loaded
        self.topic: TopicT = pipeline.app.topic(f"{pipeline.settings.app_id}-silences", partitions=1,
                                                compacting=True, deleting=False, **RAW_BYTES)

    async def add(self, silence: Silence) -> None:
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

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        if value is None:
            self.book.remove(key.decode())
            return
        try:
            self.book.put(silence_from_record(orjson.loads(value)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("skipped a record on %s that is not a silence: %s", self.topic.get_topic_name(), exc)

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
            while not self.pipeline.app.should_stop:
                batch = await consumer.getmany(partition, timeout_ms=500)
                for record in batch.get(partition, []):
                    self.apply(record.key, record.value)
                if not self.loaded.is_set():
                    # Tansu's ListOffsets is not to be trusted; a fetch response's high watermark is.
                    highwater = consumer.highwater(partition)
                    if highwater is not None and await consumer.position(partition) >= highwater:
                        log.info("silences loaded: %d known", len(list(self.book)))
                        self.loaded.set()
        finally:
            await consumer.stop()


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
