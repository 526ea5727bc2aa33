"""A Faust consumer that never commits past a message it did not process.

faust-streaming 0.15.3 (the newest release) can commit an input offset whose message never
reached an agent, and the input is then lost for good:

1. `Consumer._drain_messages` treats any jump in the offsets it is handed as a *gap*
   (`_add_gap`), and `_new_offset` merges gaps into the acknowledged offsets as if they had
   been processed. Offsets jump whenever records that were fetched are not delivered: the
   fetch loop stops at a generation change or when flow stops (faust-streaming PR #223), and
   the next fetch carries on past them. A message that then arrives below the read offset is
   dropped as already read. Measured here: input offsets 456-573 lost in a takeover.
2. `_new_offset`'s head check (`min(acked) - committed > 1`) lets one missing offset through,
   and is off while the committed offset is None or 0, which it is between a revoke and the
   seek that follows.
3. A message fetched in an earlier generation is skipped by the stream and still
   acknowledged; after a rebalance those stale acks make a run that was never processed in
   this generation, and it gets committed.

Upstream: faust-streaming/faust #606 (loss since the head check was relaxed), PR #707 (open;
caps commits at the smallest unacked message, which does not cover offsets never delivered),
robinhood/faust #559 (a gap right after a rebalance).

The fix keeps Faust's design and changes three decisions, each a pure function below so it
can be tested without a broker:

- `DeliveryGuard`: a message is handed on only if it is the next offset expected since the
  last seek (nothing between an assignment and the seek that follows it). On a jump the
  partition is fetched again from the expected offset; a jump that survives that second fetch
  is a real hole in the log (transaction markers, compaction, retention) and is recorded as one.
- `committable_offset`: the committed offset moves only over a run that starts exactly at
  the last commit and consists of acknowledged offsets and verified holes.
- `SpendwatchConsumer.ack`: an acknowledgement made during a rebalance, or for a message of
  an earlier generation, is refused: the message will be processed again (at least once).

`streams/worker/faust_patches.py` carries the consumer into Faust through `App.transport`.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ConsumerMessage, ack_lock

log = logging.getLogger("spendwatch.consumer")


class Admit(enum.Enum):
    DELIVER = "deliver"  # the next offset expected: hand it on
    REWIND = "rewind"  # offsets were skipped: fetch the partition again from the expected offset
    HOLE = "hole"  # the same jump after a fresh fetch: the log has no records there; hand it on
    DROP = "drop"  # below the expected offset: already handed on since the last seek
    WAIT = "wait"  # no seek since the partition was assigned: the seek that follows fetches it again


@dataclass
class DeliveryGuard:
    """Which fetched messages may reach the agents, per partition, from the offsets alone.

    >>> guard = DeliveryGuard()
    >>> guard.on_seek("tp", 456)
    >>> guard.admit("tp", 574)  # 456-573 were fetched but never handed on
    <Admit.REWIND: 'rewind'>
    >>> guard.on_rewind("tp"); guard.admit("tp", 456), guard.admit("tp", 457)
    (<Admit.DELIVER: 'deliver'>, <Admit.DELIVER: 'deliver'>)
    """

    expected: dict[Any, int] = field(default_factory=dict)  # next offset to hand on, known after a seek
    suspect: dict[Any, int] = field(default_factory=dict)  # the expected offset a rewind was issued for
    holes: dict[Any, tuple[int, int]] = field(default_factory=dict)  # verified holes not yet taken

    def on_seek(self, tp: Any, offset: int) -> None:
        """A seek by Faust (committed offsets, recovery): delivery restarts at `offset`."""
        self.expected[tp] = offset
        self.suspect.pop(tp, None)

    def on_rewind(self, tp: Any) -> None:
        """Our own seek back to the expected offset: the next jump from there is verified."""
        self.suspect[tp] = self.expected[tp]

    def forget(self, tp: Any) -> None:
        self.expected.pop(tp, None)
        self.suspect.pop(tp, None)
        self.holes.pop(tp, None)

    def admit(self, tp: Any, offset: int) -> Admit:
        expected = self.expected.get(tp)
        if expected is None:
            # Between an assignment and Faust's seek to the committed offsets the fetcher already
            # runs, from wherever aiokafka started. Handing those messages on would let the ledger
            # take in later positions of a source before earlier ones that are still unprocessed
            # (and then skip those as taken). The consumer fetches them again once it knows where
            # delivery starts (`SpendwatchConsumer.seek_to_committed`).
            return Admit.WAIT
        if offset == expected:
            self.expected[tp] = offset + 1
            self.suspect.pop(tp, None)
            return Admit.DELIVER
        if offset < expected:
            return Admit.DROP
        if self.suspect.get(tp) == expected:  # fetched afresh from `expected`, and still nothing there
            self.holes[tp] = (expected, offset)
            self.expected[tp] = offset + 1
            del self.suspect[tp]
            return Admit.HOLE
        return Admit.REWIND


def committable_offset(base: int | None, acked: Iterable[int], holes: Mapping[int, int]) -> int | None:
    """The offset to commit: the end of the unbroken run of processed offsets from `base`.

    `base` is the committed offset (the next one to process); `holes` maps the start of each
    verified hole to its end (exclusive). None when nothing new can be committed, and always
    None when `base` is unknown: never guess where the processed run begins.

    >>> committable_offset(456, [457, 458], {})  # 456 was never processed
    >>> committable_offset(456, [456, 457, 459], {})
    458
    >>> committable_offset(456, [456, 460], {457: 460})
    461
    >>> committable_offset(None, range(470, 574), {})
    """
    if base is None:
        return None
    done = set(acked)
    position = base
    while True:
        if position in done:
            position += 1
        elif position in holes:
            position = holes[position]
        else:
            break
    return position if position > base else None


class GuardedReadOffsets(dict[TP, int | None]):
    """Faust's read offsets, with nothing to say about the topics `DeliveryGuard` orders.

    Faust's fetch loop drops a message below the partition's read offset as already read. For
    the topics whose acks count, the guard has already decided that, and the two can disagree
    after a seek: a message the guard let through (and now expects to be processed) could be
    dropped by Faust, never processed and never acknowledged. So Faust reads None for those
    partitions and the guard alone decides; changelogs keep Faust's read offsets.
    """

    def __init__(self, guarded: Callable[[str], bool]) -> None:
        super().__init__()
        self._guarded = guarded

    def __getitem__(self, tp: TP) -> int | None:
        return None if self._guarded(tp.topic) else self.get(tp)


#: The most messages one bundle carries: a fetch of small messages can hold tens of thousands.
MAX_BUNDLE = 1000


class MessageBundle(ConsumerMessage):
    """Consecutive messages of one partition from one fetch, handed to the stream as one.

    Faust's delivery costs about 200 us a message (a task and two queues each, measured with
    py-spy on a bare counting agent: 3,000-4,500 messages/s), the whole budget of a worker that
    is sent one event a message. The ingest agent reads every message of a batch anyway, and the
    ledger agent does better taking a run of deltas together (streams/state/store.py::LedgerStage),
    so both get their topics bundled: the bundle's offset is its last message's, and acknowledging
    it acknowledges every message in it (`SpendwatchConsumer._ack_bundle`), so commits still
    move only over offsets that were processed.
    """

    __slots__ = ("messages",)

    def __init__(self, first: Message) -> None:
        super().__init__(first.topic, first.partition, first.offset, first.timestamp, first.timestamp_type, None,
                         None, b"", None, 0, 0, first.tp, generation_id=first.generation_id)
        self.messages: list[Message] = [first]


def unbundled(message: Message) -> list[Message]:
    """The messages a stream event stands for: a bundle's, or the message itself."""
    return message.messages if isinstance(message, MessageBundle) else [message]


class SpendwatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with the three decisions above; everything else is Faust's."""

    def __post_init__(self) -> None:  # mode's Service hook, called by __init__
        super().__post_init__()
        self.guard = DeliveryGuard()
        self._read_offset = GuardedReadOffsets(lambda topic: bool(self.app.topics.acks_enabled_for(topic)))
        self._rewound_at: dict[TP, tuple[int, float]] = {}  # partition -> (offset, when) of a rewind not yet refetched
        self._held: set[TP] = set()  # partitions whose fetched messages are being held back (logged once)
        self._fetched_early: set[TP] = set()  # partitions with messages fetched before their seek
        self._commit_base: dict[TP, int] = {}  # where processing resumed, while no commit is known
        self._holes: dict[TP, dict[int, int]] = {}

    # -- delivery --------------------------------------------------------------------------

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """What `_guarded` lets through, with each bundled partition's messages as `MessageBundle`s."""
        bundled = self.transport.bundled_topics  # type: ignore[attr-defined]
        bundles: dict[TP, MessageBundle] = {}
        async for tp, message in self._guarded(timeout):
            if message.topic not in bundled:
                yield tp, message
                continue
            bundle = bundles.get(tp)
            if bundle is None:
                bundles[tp] = MessageBundle(message)
            else:
                bundle.messages.append(message)
                bundle.offset = message.offset
                if len(bundle.messages) >= MAX_BUNDLE:
                    yield tp, bundles.pop(tp)
        for tp, bundle in bundles.items():
            yield tp, bundle

    async def _guarded(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Faust's fetched messages as `DeliveryGuard` admits them."""
        rewound: set[TP] = set()
        async for tp, message in super().getmany(timeout):
            if tp in rewound:
                continue  # fetched before our seek: the fresh fetch brings them again
            if not self.app.topics.acks_enabled_for(message.topic):
                yield tp, message  # changelogs are compacted: their offsets jump by design
                continue
            verdict = self.guard.admit(tp, message.offset)
            if verdict is Admit.WAIT:
                self._fetched_early.add(tp)  # fetched again by the seek to the committed offset
            if verdict is Admit.WAIT or verdict is Admit.DROP:
                if tp not in self._held:
                    self._held.add(tp)  # once per partition until it delivers again: a takeover's worth of lines
                    log.info("%s:%s offset %d %s", tp.topic, tp.partition, message.offset,
                             "fetched before the seek: not handed on" if verdict is Admit.WAIT
                             else f"is below {self.guard.expected[tp]}: already handed on, dropped")
                continue
            self._held.discard(tp)
            if verdict is not Admit.REWIND and tp in self._rewound_at:
                offset, when = self._rewound_at.pop(tp)
                log.info("%s:%s fetched again from %d after %.1fs (now at %d)", tp.topic, tp.partition, offset,
                         time.monotonic() - when, message.offset)
            if verdict is Admit.DELIVER:
                yield tp, message
            elif verdict is Admit.HOLE:
                start, end = self.guard.holes.pop(tp)
                self._holes.setdefault(tp, {})[start] = end
                log.warning("%s:%s has no records at offsets %d-%d (verified by a second fetch); "
                            "moving past them", tp.topic, tp.partition, start, end - 1)
                yield tp, message
            elif verdict is Admit.REWIND:
                expected = self.guard.expected[tp]
                log.warning("%s:%s: offsets %d-%d were fetched but not delivered; fetching again from %d",
                            tp.topic, tp.partition, expected, message.offset - 1, expected)
                rewound.add(tp)
                await self._rewind(tp, expected)
                self.guard.on_rewind(tp)
                self._rewound_at[tp] = (expected, time.monotonic())

    async def _rewind(self, tp: TP, offset: int) -> None:
        """Seek in the consumer's own thread, without waiting on the broker.

        Faust's `seek` calls aiokafka from this thread, which can leave its fetcher asleep, and
        its `seek_wait` blocks delivery until the position is confirmed; during a rebalance
        either can stall every partition (measured: a restarted worker that rewound four
        partitions fetched nothing more). A partition revoked meanwhile needs no rewind: its
        next owner starts from the committed offset.
        """
        thread = self._thread
        try:
            await thread.call_thread(thread._ensure_consumer().seek, tp, offset)
        except Exception as exc:  # noqa: BLE001 - IllegalStateError when no longer assigned
            log.info("%s:%s not rewound (%s); its next assignment starts from the commit", tp.topic, tp.partition,
                     type(exc).__name__)

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        self.guard.on_seek(partition, offset)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        unknown = [tp for tp, offset in committed.items() if not offset or offset < 0]
        earliest = await self.earliest_offsets(*unknown) if unknown else {}
        for tp, offset in committed.items():
            start = offset if offset and offset > 0 else int(earliest.get(tp) or 0)
            self.guard.on_seek(tp, start)
            self._commit_base[tp] = start
            if tp in unknown or tp in self._fetched_early:
                # Send the fetcher where delivery starts, after the guard knows it (no message can be
                # held back from here on). Without a commit seen, aiokafka otherwise keeps the
                # position it took at assignment, which on the embedded broker can be another
                # worker's commit while this read saw none: a partition read to its end then never
                # delivered anything to prove where it was, looked unread for good and held every
                # watermark. And messages fetched before this seek were held back by the guard,
                # while the fetch that brought them may have come after aiokafka's own seek: with
                # nothing left to fetch the partition would stay unread (seen: a takeover whose
                # input partition was read to its end and never counted). Re-reading is safe:
                # rows already taken in are skipped by position.
                await self._rewind(tp, start)
            if self.app.topics.acks_enabled_for(tp.topic):
                log.info("%s:%s: delivery starts at %d (committed: %s)", tp.topic, tp.partition, start, offset)
        self._fetched_early.difference_update(committed)
        return committed

    # -- acknowledgements and commits ------------------------------------------------------

    def ack(self, message: Message) -> bool:
        stale = self.app.rebalancing or (message.generation_id is not None
                                         and message.generation_id != self.app.consumer_generation_id)
        if stale and self.app.topics.acks_enabled_for(message.topic):
            self._unacked_messages.discard(message)
            message.acked = True
            return False  # processed again after the rebalance: at least once, never skipped
        if isinstance(message, MessageBundle):
            return self._ack_bundle(message)
        return bool(super().ack(message))

    def _ack_bundle(self, bundle: MessageBundle) -> bool:
        """Faust's `ack` for every message the bundle carries, as one step under its (reentrant) lock."""
        with ack_lock:
            if bundle.acked:
                return False
            bundle.acked = True
            self._unacked_messages.discard(bundle)
            for message in bundle.messages:
                super().ack(message)
            return True

    def give_up(self, message: Message) -> None:
        """Let go of a message without acknowledging it: shutdown does not wait for it, and it is
        never committed, so the next worker gets it again (a delivery abandoned at SIGTERM)."""
        self._unacked_messages.discard(message)

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        committed = self._committed_offset[tp]
        base = committed if committed is not None else self._commit_base.get(tp)
        holes = self._holes.get(tp, {})
        offset = committable_offset(base, acked, holes)
        if offset is None:
            return None
        done = [o for o in acked if o < offset]
        acked[:] = [o for o in acked if o >= offset]
        self._acked_index[tp].difference_update(done)
        for start in [s for s in holes if s < offset]:
            del holes[start]
        return offset

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # `getmany` never hands on a jump it has not verified, and verified holes are tracked
        # above; a gap here would let a commit pass unprocessed messages, so none is recorded.
        log.error("unexpected offset jump on %s:%s (%d-%d); not committing over it", tp.topic, tp.partition,
                  offset_from, offset_to)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self._forget(revoked)
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self._forget(assigned)  # acks of an earlier assignment of these partitions mean nothing now
        await super().on_partitions_assigned(assigned, generation_id)

    def _forget(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self.guard.forget(tp)
            self._commit_base.pop(tp, None)
            self._holes.pop(tp, None)
            self._rewound_at.pop(tp, None)
            self._held.discard(tp)
            self._fetched_early.discard(tp)
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            # Faust's own read offset from an earlier assignment (changelogs keep theirs: see
            # GuardedReadOffsets): left alone, it drops the records below it as already read.
            self._read_offset[tp] = None

    def topic_partitions(self, topic: str) -> int | None:
        """How many partitions `topic` has, from the cluster metadata.

        Faust reads the group coordinator's subscription snapshot, which only the group's
        leader has: every other worker got None.
        """
        try:
            partitions = self._thread._ensure_consumer().partitions_for_topic(topic)
        except Exception:  # noqa: BLE001 - not started yet
            return None
        return len(partitions) if partitions else None

    def resume_offset(self, tp: TP) -> int | None:
        """The offset processing resumed from at the last seek (committed, or the log start)."""
        committed = self._committed_offset[tp]
        return committed if committed is not None else self._commit_base.get(tp)
