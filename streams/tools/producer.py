"""Publishing with aiokafka: `spendwatch produce`, the simulator and the tests' helpers share it."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.kafka_client import aiokafka_options, bootstrap_servers
from streams.settings import Settings


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
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 - closed by the `with` below
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
