"""Publishing with aiokafka: `spendwatch produce`, the simulator and the tests' helpers share it."""

from __future__ import annotations

import sys
from typing import Any, Iterable

from aiokafka import AIOKafkaProducer

from streams.kafka_security import aiokafka_options
from streams.settings import Settings


def bootstrap_servers(brokers: str) -> str:
    """`kafka://h1:9092;h2:9092` (Faust's spelling) or `h1:9092,h2:9092` as aiokafka wants it."""
    hosts = []
    for part in brokers.replace(";", ",").split(","):
        part = part.strip()
        if part:
            hosts.append(part.split("://", 1)[-1])
    return ",".join(hosts)


async def start_producer(brokers: str, settings: Settings | None = None, **extra: Any) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(brokers), linger_ms=5,
                                **aiokafka_options(settings), **extra)
    await producer.start()
    return producer


async def publish(producer: AIOKafkaProducer, topic: str, values: Iterable[bytes]) -> int:
    sent = 0
    for value in values:
        await producer.send(topic, value)
        sent += 1
    await producer.flush()
    return sent


def _lines(path: str) -> Iterable[bytes]:
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")
    with stream:
        for line in stream:
            line = line.strip()
            if line:
                yield line


async def produce_file(path: str, topic: str, brokers: str, settings: Settings | None = None) -> int:
    """Publish each non-empty line of a JSONL file as one message."""
    producer = await start_producer(brokers, settings)
    try:
        return await publish(producer, topic, _lines(path))
    finally:
        await producer.stop()
