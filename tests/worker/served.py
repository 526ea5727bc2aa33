"""A worker's HTTP API served for real on 127.0.0.1, without a broker.

`create_pipeline` builds the app, its views and the guard exactly as a worker does; its aiohttp
application is then served by aiohttp's TestServer in the test's own event loop. What needs a
broker is replaced by stand-ins, each said below: they are the only way to reach these views
without Kafka (the e2e tests cover the same paths against the embedded broker).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from faust.types import TP

from streams.settings import load_settings
from streams.worker.app import create_pipeline
from streams.worker.pipeline import Pipeline


@dataclass
class Sent:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class StandInProducer:
    """Faust's producer as far as a topic's `send` uses it: keeps each message, and acknowledges every one
    waiting once the sender has sent nothing for `quiet_turns` turns of the event loop, as a broker answers
    a batch a round trip later (counted in turns, not seconds, so a slow machine gives the same count).
    `most_unacknowledged` is the most messages ever waiting at once: 1 when each send waits for its own."""

    quiet_turns: int = 20
    sent: list[Sent] = field(default_factory=list)
    waiting: list[asyncio.Future[Any]] = field(default_factory=list)
    most_unacknowledged: int = 0

    async def maybe_start(self) -> None:
        return None

    def _acknowledge(self, sent: int, turns: int) -> None:
        if len(self.sent) != sent:
            return  # a later send starts its own count
        if turns > 0:
            asyncio.get_running_loop().call_soon(self._acknowledge, sent, turns - 1)
            return
        for future in self.waiting:
            if not future.done():
                future.set_result(None)
        self.waiting = []

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None,
                   timestamp: float | None = None, headers: Any = None, **_: Any) -> asyncio.Future[Any]:
        self.sent.append(Sent(topic, key, value, list(headers or [])))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.most_unacknowledged = max(self.most_unacknowledged, len(self.waiting))
        asyncio.get_running_loop().call_soon(self._acknowledge, len(self.sent), self.quiet_turns)
        return future

    def to(self, topic: str) -> list[Sent]:
        return [message for message in self.sent if message.topic == topic]


@dataclass
class Served:
    pipeline: Pipeline
    server: TestServer
    producer: StandInProducer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def own_every_partition(self) -> None:
        """Stand-in for the consumer group's assignment (which needs a broker): this worker holds every team."""
        deltas = self.pipeline.deltas_topic_name
        owned = {TP(deltas, partition) for partition in range(self.pipeline.settings.partitions)}
        self.pipeline.app.consumer.assignment = lambda: owned  # type: ignore[method-assign]

    def peers_are(self, *urls: str) -> None:
        """Stand-in for the group's metadata (which needs a broker): the workers it names besides this one."""
        metadata = {url: {} for url in urls}
        self.pipeline.app.router.tables_metadata = lambda: metadata  # type: ignore[method-assign]


async def serve(tmp_path: Path, **settings: Any) -> Served:
    pipeline = create_pipeline(load_settings(data_dir=str(tmp_path / "data"), **settings), "kafka://127.0.0.1:1")
    producer = StandInProducer()
    pipeline.app.producer = producer  # type: ignore[assignment]
    server = TestServer(pipeline.app.web.web_app, host="127.0.0.1")  # type: ignore[attr-defined]
    await server.start_server()
    return Served(pipeline, server, producer)
