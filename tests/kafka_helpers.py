"""Talk to the broker with aiokafka directly, as a user's producer would (not through our code)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord


def publish(bootstrap: str, topic: str, messages: Iterable[tuple[int | None, bytes]],
            headers: list[tuple[str, bytes]] | None = None) -> int:
    """Send (partition, value) pairs, each with `headers` when given; partition None lets the client choose."""

    async def send_all() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        sent = 0
        try:
            for partition, value in messages:
                await producer.send(topic, value, partition=partition, headers=headers)
                sent += 1
            await producer.flush()
        finally:
            await producer.stop()
        return sent

    return asyncio.run(send_all())


def read_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> list[ConsumerRecord]:
    """Read a topic from the beginning until `expected` records arrive or the time is up."""

    async def consume() -> list[ConsumerRecord]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False, group_id=None)
        await consumer.start()
        records: list[ConsumerRecord] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while len(records) < expected and loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for partition_records in batch.values():
                    records.extend(partition_records)
        finally:
            await consumer.stop()
        return records

    return asyncio.run(consume())
