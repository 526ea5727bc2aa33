"""The Faust consumer fix (streams/worker/consumer.py), without a broker.

The failing sequences from the takeover bug are replayed against Faust's own consumer and
against ours: Faust's commits over input it never delivered, ours does not. Kafka itself is
not needed for these decisions; where a test needs the fetch thread, a stand-in for
`_getmany`/`_seek` on one instance feeds records and records seeks (it cannot be provoked on
demand from a real broker), and the end-to-end takeover tests cover the real thing.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams.worker.consumer import (
    MAX_BUNDLE,
    Admit,
    DeliveryGuard,
    MessageBundle,
    SpendwatchConsumer,
    committable_offset,
    unbundled,
)
from streams.worker.faust_patches import SpendwatchTransport, install_transport

INPUT = TP("ai.token-usage", 0)


def make_consumer(cls: type, app_id: str) -> Any:
    app = faust.App(app_id, broker="kafka://127.0.0.1:1", env={})
    transport_cls = SpendwatchTransport if cls is SpendwatchConsumer else faust_aiokafka.Transport
    app.transport = transport_cls(app.conf.broker_consumer, app)
    app.topic(INPUT.topic)  # an acking topic, as the ingest agent's input is
    app.topics._acking_topics.add(INPUT.topic)
    app.consumer_generation_id = 7
    app.rebalancing = False
    return app.consumer


def message(offset: int, generation: int = 7) -> ConsumerMessage:
    return ConsumerMessage(INPUT.topic, INPUT.partition, offset, None, None, [], b"", b"{}", None, 0, 2, INPUT,
                           generation_id=generation)


def test_stock_faust_commits_over_a_jump_and_ours_does_not():
    """Committed 456, first message delivered 574: Faust adds a gap 457-574 and commits 575."""
    for cls, want in ((faust_aiokafka.Consumer, 575), (SpendwatchConsumer, None)):
        consumer = make_consumer(cls, f"jump-{cls.__name__}")
        consumer._committed_offset[INPUT] = 456
        asyncio.run(consumer._add_gap(INPUT, 457, 574))
        consumer.ack(message(574))
        assert consumer._new_offset(INPUT) == want, cls.__name__


def test_stock_faust_commits_stale_acks_with_no_committed_offset_and_ours_does_not():
    """Between a revoke and the seek, acks of 470-573 from the old generation get committed as 574."""
    for cls, want in ((faust_aiokafka.Consumer, 574), (SpendwatchConsumer, None)):
        consumer = make_consumer(cls, f"stale-{cls.__name__}")
        consumer.app.rebalancing = True
        for offset in range(470, 574):
            consumer.ack(message(offset, generation=6))
        consumer.app.rebalancing = False
        assert consumer._new_offset(INPUT) == want, cls.__name__


def test_stock_faust_lets_one_missing_offset_through():
    for cls, want in ((faust_aiokafka.Consumer, 459), (SpendwatchConsumer, None)):
        consumer = make_consumer(cls, f"one-{cls.__name__}")
        consumer._committed_offset[INPUT] = 456
        for offset in (457, 458):
            consumer.ack(message(offset))
        assert consumer._new_offset(INPUT) == want, cls.__name__


def test_ours_commits_an_unbroken_run_and_keeps_the_rest():
    consumer = make_consumer(SpendwatchConsumer, "run")
    consumer._committed_offset[INPUT] = 456
    for offset in (456, 457, 459):
        consumer.ack(message(offset))
    assert consumer._new_offset(INPUT) == 458
    consumer._committed_offset[INPUT] = 458
    assert consumer._new_offset(INPUT) is None  # 458 still missing
    consumer.ack(message(458))
    assert consumer._new_offset(INPUT) == 460


def test_an_ack_of_an_earlier_generation_is_refused():
    consumer = make_consumer(SpendwatchConsumer, "generation")
    consumer._committed_offset[INPUT] = 10
    assert consumer.ack(message(10, generation=6)) is False
    assert consumer._new_offset(INPUT) is None
    assert consumer.ack(message(10)) is True
    assert consumer._new_offset(INPUT) == 11


def test_guard_rewinds_once_then_takes_a_verified_hole():
    guard = DeliveryGuard()
    guard.on_seek("tp", 100)
    assert [guard.admit("tp", o) for o in (100, 101)] == [Admit.DELIVER, Admit.DELIVER]
    assert guard.admit("tp", 104) is Admit.REWIND  # 102-103 fetched but not delivered
    guard.on_rewind("tp")
    assert guard.admit("tp", 104) is Admit.HOLE  # the fresh fetch from 102 still starts at 104
    assert guard.holes["tp"] == (102, 104)
    assert guard.admit("tp", 104) is Admit.DROP and guard.admit("tp", 105) is Admit.DELIVER


def test_committable_offset_needs_a_known_start():
    assert committable_offset(None, [1, 2, 3], {}) is None
    assert committable_offset(0, [0, 1, 2], {}) == 3
    assert committable_offset(5, [], {5: 9}) == 9


def stand_in_fetches(consumer: Any, fetches: list[list[int]], seeks: list[int]) -> None:
    """Replace the consumer's fetch thread: each `_getmany` returns the next list of offsets."""

    async def fake_getmany(active_partitions: Any, timeout: float) -> Any:
        offsets = fetches.pop(0) if fetches else []
        return {INPUT: [SimpleNamespace(topic=INPUT.topic, partition=0, offset=o, timestamp=None, timestamp_type=0,
                                        headers=[], key=b"", value=b"{}", checksum=None, serialized_key_size=0,
                                        serialized_value_size=2) for o in offsets]}

    async def fake_rewind(tp: TP, offset: int) -> None:
        seeks.append(offset)

    consumer._getmany = fake_getmany
    consumer._rewind = fake_rewind
    consumer.highwater = lambda tp: 1000
    consumer._active_partitions = {INPUT}


def drain(consumer: Any, fetches: int) -> list[Any]:
    async def run() -> list[Any]:
        got = []
        for _ in range(fetches):
            async for _tp, msg in consumer.getmany(timeout=0.1):
                got.append(msg)
        return got

    return asyncio.run(run())


@pytest.mark.parametrize("first_after_rewind,want", [(456, list(range(456, 460))), (470, [470, 471])])
def test_getmany_fetches_again_instead_of_skipping(first_after_rewind, want):
    """A stand-in fetch thread: the first fetch jumps 456 -> 574; the second starts where asked."""
    consumer = make_consumer(SpendwatchConsumer, f"getmany-{first_after_rewind}")
    consumer.guard.on_seek(INPUT, 456)
    seeks: list[int] = []
    refetched = 4 if first_after_rewind == 456 else 2
    stand_in_fetches(consumer, [[574, 575], list(range(first_after_rewind, first_after_rewind + refetched))], seeks)
    assert [msg.offset for msg in drain(consumer, 2)] == want
    assert seeks == [456]


def test_an_input_partitions_messages_come_bundled_and_one_ack_commits_them_all():
    """Faust's delivery costs about 200 us a message, so the ingest agent gets each fetch's messages
    of a partition as one bundle; acknowledging the bundle acknowledges each of its messages."""
    consumer = make_consumer(SpendwatchConsumer, "bundle")
    consumer.transport.bundled_topics = frozenset({INPUT.topic})
    consumer.guard.on_seek(INPUT, 456)
    consumer._committed_offset[INPUT] = 456
    seeks: list[int] = []
    stand_in_fetches(consumer, [[456, 457, 458], [574], list(range(459, 459 + MAX_BUNDLE + 1))], seeks)
    bundles = drain(consumer, 3)  # the second fetch jumps and is fetched again from 459
    assert seeks == [459]
    assert all(isinstance(b, MessageBundle) for b in bundles)
    assert [[m.offset for m in unbundled(b)] for b in bundles] == [
        [456, 457, 458], list(range(459, 459 + MAX_BUNDLE)), [459 + MAX_BUNDLE]]
    assert [b.offset for b in bundles] == [458, 458 + MAX_BUNDLE, 459 + MAX_BUNDLE]  # its last message's
    assert consumer.ack(bundles[1]) is True
    assert consumer._new_offset(INPUT) is None  # 456-458 not yet processed
    assert consumer.ack(bundles[0]) is True and consumer.ack(bundles[0]) is False
    assert consumer._new_offset(INPUT) == 459 + MAX_BUNDLE


def test_a_bundle_of_an_earlier_generation_is_refused():
    consumer = make_consumer(SpendwatchConsumer, "bundle-generation")
    consumer._committed_offset[INPUT] = 10
    stale = MessageBundle(message(10, generation=6))
    stale.messages.append(message(11, generation=6))
    assert consumer.ack(stale) is False
    assert consumer._new_offset(INPUT) is None


@pytest.mark.parametrize("committed,fetched_early,start,seeks", [
    (573, False, 573, []),  # a commit: delivery starts there, where Faust's own seek put the fetcher
    (None, False, 12, [12]),  # no commit seen: the log start, and the fetcher is sent there too
    (573, True, 573, [573]),  # messages held back before the seek: fetched again from the commit
])
def test_the_fetcher_is_sent_where_the_guard_starts(committed, fetched_early, start, seeks):
    """Before: the guard assumed the log start while the fetcher stayed at another worker's commit;
    a partition read to its end then delivered nothing, looked unread for good and held the watermark.
    And messages fetched before the seek were held back with nothing to fetch them again (a takeover
    whose input partition was read to its end and never counted)."""
    consumer = make_consumer(SpendwatchConsumer, f"start-{committed}-{fetched_early}")
    if fetched_early:
        consumer._fetched_early.add(INPUT)
    sent_to: list[int] = []

    async def stand_in_committed() -> dict[TP, int | None]:  # the thread's seek_to_committed
        return {INPUT: committed}

    async def stand_in_earliest(*tps: TP) -> dict[TP, int]:
        return {INPUT: 12}

    async def stand_in_rewind(tp: TP, offset: int) -> None:
        sent_to.append(offset)

    consumer._thread = SimpleNamespace(seek_to_committed=stand_in_committed)
    consumer.earliest_offsets = stand_in_earliest
    consumer._rewind = stand_in_rewind
    asyncio.run(consumer.seek_to_committed())
    assert consumer.guard.expected[INPUT] == start
    assert sent_to == seeks


def test_faust_read_offset_cannot_drop_what_the_guard_lets_through():
    """Faust's fetch loop drops a message below `_read_offset[tp]`. After a seek back to the commit
    (456) its read offset could still say 460 while the guard hands on 456-459: those were dropped,
    never processed and never acknowledged. For acking topics Faust now reads None; changelogs keep theirs."""
    consumer = make_consumer(SpendwatchConsumer, "read-offset")
    changelog = TP("spendwatch-ledgers-changelog", 0)
    consumer._read_offset[INPUT] = 460
    consumer._read_offset[changelog] = 9
    read_offset = consumer._read_offset.__getitem__  # what `Consumer._drain_messages` binds and calls
    assert read_offset(INPUT) is None
    assert read_offset(changelog) == 9
    assert read_offset(TP("spendwatch-ledgers-changelog", 1)) is None  # never set: Faust's defaultdict said None


def test_nothing_is_handed_on_between_an_assignment_and_the_seek():
    """The fetcher runs before Faust seeks to the committed offsets. A message handed on then could
    carry a later position of its source than rows not yet processed, which the ledger would then
    skip as taken; the seek fetches it again in order."""
    guard = DeliveryGuard()
    assert guard.admit("tp", 2882) is Admit.WAIT  # assigned, not yet sought: from wherever aiokafka began
    guard.on_seek("tp", 25)
    assert guard.admit("tp", 25) is Admit.DELIVER
    guard.forget("tp")  # revoked and assigned again
    assert guard.admit("tp", 26) is Admit.WAIT


def test_a_streams_async_for_acknowledges_through_our_consumer():
    """Faust's Cython iterator writes acked offsets itself, past `SpendwatchConsumer.ack`: a bundle of the
    ledger's deltas then committed only its last offset, and a restarted worker read every delta again."""
    app = faust.App("python-iterator", broker="kafka://127.0.0.1:1", env={})
    install_transport(app)
    stream = app.stream(app.channel())
    iterator = stream.__aiter__()
    try:
        assert iterator.__qualname__ == "Stream._py_aiter"  # whose ack goes through `Consumer.ack`
    finally:
        asyncio.run(iterator.aclose())
