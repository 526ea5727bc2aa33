"""Every place spendwatch reaches into faust-streaming 0.15.3 or aiokafka, why, and what would retire it.

Each patch is applied from `app.create_pipeline` (or, for the spinner, `cli.run_worker`) and
nowhere else; grep for this module's names to find them all.

- `install_transport`: Faust commits offsets of messages it never processed (the cases are in
  streams/worker/consumer.py); its producer buffer's flush returns with table writes still
  queued, so a commit can pass input whose records were never written; and the buffer never
  yields to the event loop. Retired by faust-streaming #606 / PR #707 and robinhood/faust #559
  being fixed, and a `ProducerBuffer` whose flush drains it and whose loop yields. It also
  turns off Faust's Cython stream iterator, which acknowledges a message inline rather than
  through `Consumer.ack`: retired with the rest, or by that iterator calling `Consumer.ack`.
- `shorten_fetch_wait`: Faust hard-codes fetch_max_wait_ms=1500. Retired by a Faust setting
  for its consumer's fetch wait.
- `recover_to_true_ends`: Tansu 0.6 reports a batch's base offset + 1 as a changelog's end,
  so tables came back short. Retired by Tansu answering ListOffsets with the true end; on
  Apache Kafka it costs one fetch per changelog partition per rebalance.
- `guard_http`: Faust serves its own pages (/table, /router, /graph) with no setting to turn
  them off; the middleware answers 404 for them.
- `quiet_spinner`: Faust's spinner sets the root logger to DEBUG. Retired by a spinner that
  honours the log level.
- `named`: Faust names an agent after its function's `__qualname__`; not a workaround, the
  one place it is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import faust
import faust.streams as faust_streams
from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import ProducerBuffer

from streams.worker.consumer import SpendwatchConsumer
from streams.worker.recovery import true_end_offsets

log = logging.getLogger("spendwatch.recovery")

F = TypeVar("F", bound=Callable[..., Any])


class SpendwatchProducerBuffer(ProducerBuffer):
    """Faust's buffer of table writes, with a flush that waits for every write, and a loop that yields.

    - `flush`: Faust's returns as soon as no write has gone out for 0.1 s, with writes still
      queued; the consumer then commits its offsets (`Consumer._commit_offsets` flushes the
      producer first and trusts it). Under load one send can take longer than that, and a
      worker killed right after had committed input whose ledger records were never written:
      seen here as 2% of a backlog missing after a takeover (`make takeover-loop`). Ours
      returns only when nothing is queued or being handed to aiokafka, whose own flush
      (called next by `Producer.flush`) then waits for delivery.
    - `_send_pending`: the loop that sends queued writes never yields while the queue is
      non-empty (aiokafka's `send` returns without suspending while a batch has room), so a
      burst of changelog writes (20,000 teams' records) held `/healthz` and every agent until
      it had drained; ours gives the event loop a turn every `YIELD_EVERY` sends.
    """

    YIELD_EVERY = 100
    FLUSH_POLL_S = 1.0
    _sent = 0
    _in_flight = 0

    async def _send_pending(self, fut: Any) -> None:
        self._in_flight += 1
        try:
            await super()._send_pending(fut)
        finally:
            self._in_flight -= 1
        self._sent += 1
        if self._sent % self.YIELD_EVERY == 0:
            await asyncio.sleep(0)

    async def flush(self) -> None:
        while self.size or self._in_flight:
            if self.should_stop:
                raise RuntimeError(f"producer buffer stopped with {self.size} table writes queued")
            self.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.message_sent.wait(), timeout=self.FLUSH_POLL_S)


class SpendwatchProducer(faust_aiokafka.Producer):
    """Faust's aiokafka producer with `SpendwatchProducerBuffer` (Faust builds its buffer in __init__)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        buffer = SpendwatchProducerBuffer(loop=self.loop, beacon=self.beacon)
        buffer.app = self.app
        if self.threaded_producer is not None:
            buffer.threaded_producer = self.threaded_producer
        self.buffer = buffer


class SpendwatchTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with `SpendwatchConsumer` and `SpendwatchProducer`."""

    Consumer = SpendwatchConsumer
    Producer = SpendwatchProducer
    bundled_topics: frozenset[str] = frozenset()  # whose messages the consumer hands on as bundles


def install_transport(app: faust.App, bundled_topics: Iterable[str] = ()) -> None:
    """Give `app` the transport above: `App.transport` is a settable property, Faust's extension point.

    Messages of `bundled_topics` reach their stream as `MessageBundle`s: only an agent that
    reads them with `unbundled` may consume those topics."""
    transport = SpendwatchTransport(app.conf.broker_consumer, app)
    transport.bundled_topics = frozenset(bundled_topics)
    app.transport = transport
    # `async for event in stream` runs Faust's Cython iterator when it is built, and that iterator
    # acknowledges a message by writing the consumer's acked offsets itself: `SpendwatchConsumer.ack`
    # was never called for the ledger's deltas (nor for any agent but ingest, which takes batches
    # through the Python path), so a bundle committed only its last offset, nothing moved past the
    # first bundle, and a restarted worker read every delta again; a stale message's ack was
    # not refused either. Faust reads this module global at each `__aiter__`.
    faust_streams._CStreamIterator = None


def shorten_fetch_wait(max_wait_ms: int) -> None:
    """Make Faust's consumers ask the broker to answer a fetch within `max_wait_ms`.

    Faust hard-codes fetch_max_wait_ms=1500 for its consumer. A broker that does not answer
    a waiting fetch as soon as data arrives (the embedded Tansu does not, measured in
    `make bench`) then holds every hop of the pipeline up to that long, and an alert crosses
    four hops (input, deltas, alerts, sink queue). A short wait costs a few empty fetches a
    second per consumer.
    """
    thread: Any = faust_aiokafka.AIOKafkaConsumerThread
    original = getattr(thread, "_spendwatch_original_create", thread._create_worker_consumer)

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms  # read by aiokafka when the consumer starts
        return consumer

    thread._spendwatch_original_create = original
    thread._create_worker_consumer = create_worker_consumer


def recover_to_true_ends(bootstrap: str, options: Mapping[str, Any] | None = None) -> None:
    """Make Faust's recovery read each changelog to its true end (streams/worker/recovery.py says why)."""
    from faust.tables.recovery import Recovery

    recovery: Any = Recovery
    original = getattr(recovery, "_spendwatch_original_build_highwaters", recovery._build_highwaters)

    async def build_highwaters(self: Any, consumer: Any, tps: Any, destination: Any, title: str) -> None:
        await original(self, consumer, tps, destination, title)
        # Faust keeps the last offset (end - 1), -1 for an empty partition.
        reported = {TopicPartition(tp.topic, tp.partition): destination[tp] + 1 for tp in tps}
        ends = await true_end_offsets(bootstrap, reported, options)
        for tp in tps:
            end = ends[TopicPartition(tp.topic, tp.partition)]
            if end - 1 > destination[tp]:
                log.info("%s changelog %s:%s ends at %d, broker reported %d", title, tp.topic, tp.partition,
                         end, destination[tp] + 1)
                destination[tp] = end - 1

    recovery._spendwatch_original_build_highwaters = original
    recovery._build_highwaters = build_highwaters


def guard_http(app: faust.App, middleware: Callable[..., Awaitable[Any]]) -> None:
    """Put `middleware` in front of every page Faust serves, its own included (no public hook for that)."""
    app.web.web_app.middlewares.append(middleware)  # type: ignore[attr-defined]


def quiet_spinner(worker: faust.Worker) -> None:
    """No progress spinner: at warning level and above it sets the root logger to DEBUG.

    Every debug line of Faust and aiokafka (several per message sent) then became a LogRecord:
    4% of the worker's time under load (py-spy). Without it the configured level holds.
    """
    worker.spinner = None


def named(name: str, fun: F) -> F:
    """Faust names an agent, and its log lines, after the function's `__qualname__`."""
    fun.__name__ = fun.__qualname__ = name.replace("-", "_")
    return fun
