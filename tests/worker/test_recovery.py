"""Tables recover to the true end of their changelogs (streams/worker/recovery.py), on the real embedded broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.worker.recovery import true_end_offsets

pytestmark = pytest.mark.e2e  # on the embedded broker


async def write_batches(bootstrap: str, topic: str, sizes: list[int]) -> list[int]:
    """Each size goes out as one produce batch (sent together, flushed); returns every offset written."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    offsets: list[int] = []
    try:
        for size in sizes:
            sent = [await producer.send(topic, b"x", partition=0) for _ in range(size)]
            offsets += [(await future).offset for future in sent]
    finally:
        await producer.stop()
    return offsets


async def reported_end(bootstrap: str, tp: TopicPartition) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


def test_true_end_counts_every_record_of_a_multi_record_last_batch(broker, topics):
    topic = f"{topics.prefix}-changelog"
    broker.create_topics([topic], partitions=1)
    tp = TopicPartition(topic, 0)

    async def scenario() -> tuple[list[int], int, int]:
        offsets = await write_batches(broker.bootstrap, topic, [2, 1, 5])
        reported = await reported_end(broker.bootstrap, tp)
        ends = await true_end_offsets(broker.bootstrap, {tp: reported})
        return offsets, reported, ends[tp]

    offsets, reported, true_end = asyncio.run(scenario())
    assert offsets == list(range(8))
    assert true_end == 8, f"broker reported {reported}"
    # Why this module exists: Tansu 0.6 reports the last batch's base offset + 1 (here 4, not 8).
    # On a broker that reports 8 the check above still holds; this line documents what was measured.
    assert reported in (4, 8)


def test_true_end_of_an_empty_partition_is_zero_without_reading(broker, topics):
    tp = TopicPartition(f"{topics.prefix}-empty", 0)
    assert asyncio.run(true_end_offsets(broker.bootstrap, {tp: 0})) == {tp: 0}
