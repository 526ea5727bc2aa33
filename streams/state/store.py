"""The `ledgers` table: each team's record, its pending rows and its event-id chunks.

One Faust table holds everything of a team, so that every write of one step lands in one
changelog partition (the partition of the deltas message being processed), in order. A crash
loses a suffix of those writes, never a middle, so each step writes its pieces first and the
team record last: the record is the commit point.

    T                 the team record: figures, detectors, received positions, live chunks, `op`
    T\\0p\\0<op>        rows waiting for the watermark, taken in by step <op> (with any it applied)
    T\\0i\\0<op>        the event_id hashes step <op> counted (for de-duplication)

A piece whose op is newer than the record's belongs to a step the crash cut short: recovery
lists it as an orphan, and the team's next step deletes it before writing anything. Values of
any size are kept under the broker's message limit by `RecordStore` (a team with 20,000
endpoints is legitimate).

`LedgerStore.step` is pure: it reads the table and returns what to write; the agent publishes
the step's alerts, then `commit` writes. So an alert is on the broker before the record that
raised it, and a step replayed after a crash raises it again (same alert_id, dropped by
delivery) rather than never.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import msgspec
import orjson

from detectors.verdict import Verdict
from streams.input.kinds import KINDS, sort_in_release_order
from streams.state.dedup import EventIdIndex
from streams.state.deltas import decode_delta, encode_deltas
from streams.state.judging import RuleBook, apply_and_judge
from streams.state.ledger import Applied, Ledger, WindowPolicy, new_ledger, take_fresh, team_cost_usd
from streams.state.watermarks import PROGRESS_KEY, Watermark

SEP = "\x00"
_header = msgspec.msgpack.Encoder()
_read_header = msgspec.msgpack.Decoder(list[int])
#: The first byte of a header: no JSON or msgpack value we store starts with it (it is msgpack's -1).
HEADER_TAG = b"\xff"
_chunks_encoder = msgspec.msgpack.Encoder()
_chunks_decoder = msgspec.msgpack.Decoder(list[bytes])

# (event time, kind, row): the time first, so that rows with distinct times sort as floats, in C.
Entry = tuple[float, str, Sequence[Any]]


_kind_and_row = itemgetter(1, 2)  # of an Entry
entry_time: Callable[[Entry], float] = itemgetter(0)


def _release_key(entry: Entry) -> tuple[Any, ...]:
    return KINDS[entry[1]].release_key(entry[2])


class PendingRows:
    """A team's rows waiting for the watermark, as sorted runs: one per step that left rows waiting.

    A step sorts what arrived once; releasing cuts each run at the watermark, and the step sorts the cuts in
    with what arrived (timsort merges sorted runs in C).
    A heap cost a push and a pop per row, and in a backlog most rows wait at least one step
    (88% of 1,000,000, read unevenly over 4 partitions): 6% of the worker's time under py-spy.
    """

    def __init__(self) -> None:
        self.runs: list[list[Entry]] = []

    def add(self, run: list[Entry]) -> None:
        """A sorted run of rows."""
        if run:
            self.runs.append(run)

    def release(self, through: float) -> list[list[Entry]]:
        """The sorted runs of rows at or before `through`, taken out."""
        released, kept = [], []
        for run in self.runs:
            cut = bisect_right(run, through, key=entry_time)
            if cut:
                released.append(run[:cut])
            if cut < len(run):
                kept.append(run[cut:] if cut else run)
        self.runs = kept
        return released

    def oldest(self) -> float | None:
        return min(entry_time(run[0]) for run in self.runs) if self.runs else None

    def __len__(self) -> int:
        return sum(len(run) for run in self.runs)


def packed(value: Any) -> bytes:
    """`value` as JSON, in a buffer of its own length: the table keeps it until the team's next step.

    orjson returns the buffer it grew the text in, about 4.6x a 28 KB ledger's length and 4 KB for a
    few bytes (traced with tracemalloc, orjson 3.13), so a table of packed ledgers held twice what it
    stored (`python -m evaluation.memory`, docs/benchmarks-notes.md). The copy costs a memcpy per step.

    >>> packed({"a": [1, 2.5]})
    b'{"a":[1,2.5]}'
    """
    return bytes(memoryview(orjson.dumps(value)))


class RecordStore:
    """Values of any size over a table whose values must each stay under `max_value_bytes`.

    A large value is written as numbered pieces and then a header naming them. Pieces
    alternate between two generations, so a crash in the middle of writing one leaves the
    last complete value readable under its header.

    >>> store = RecordStore({}, max_value_bytes=4)
    >>> store.put("k", b"0123456789"); store.get("k"), len(store.table)
    (b'0123456789', 4)
    >>> store.put("k", b"ab"); store.get("k"), sorted(store.table)
    (b'ab', ['k'])
    """

    def __init__(self, table: MutableMapping[str, bytes], max_value_bytes: int) -> None:
        self.table = table
        self.max_value_bytes = max_value_bytes

    @staticmethod
    def _piece(key: str, parity: int, index: int) -> str:
        return f"{key}{SEP}c{parity}{SEP}{index}"

    def _header_of(self, raw: bytes | None) -> list[int] | None:
        return _read_header.decode(raw[1:]) if raw is not None and raw[:1] == HEADER_TAG else None

    def get(self, key: str) -> bytes | None:
        raw = self.table.get(key)
        header = self._header_of(raw)
        if header is None:
            return raw
        generation, count, _ = header
        return b"".join(self.table[self._piece(key, generation % 2, i)] for i in range(count))

    def put(self, key: str, data: bytes) -> None:
        old = self._header_of(self.table.get(key))
        if len(data) <= self.max_value_bytes:
            self.table[key] = data
            if old is not None:
                self._drop_pieces(key, old)
            return
        generation = old[0] + 1 if old is not None else 1
        parity, size = generation % 2, self.max_value_bytes
        count = -(-len(data) // size)
        for index in range(count):
            self.table[self._piece(key, parity, index)] = data[index * size:(index + 1) * size]
        other = old[1] if old is not None else 0  # the previous generation's pieces, kept until the next write
        self.table[key] = HEADER_TAG + _header.encode([generation, count, other])
        stale = old[2] if old is not None else 0  # this parity's pieces from two generations back
        for index in range(count, stale):
            self.table.pop(self._piece(key, parity, index), None)

    def delete(self, key: str) -> None:
        old = self._header_of(self.table.pop(key, None))
        if old is not None:
            self._drop_pieces(key, old)

    def _drop_pieces(self, key: str, header: list[int]) -> None:
        generation, count, other = header
        for parity, pieces in ((generation % 2, count), (1 - generation % 2, other)):
            for index in range(pieces):
                self.table.pop(self._piece(key, parity, index), None)


@dataclass
class Step:
    """What one step did and what it has to write."""

    team: str
    partition: int
    ledger: Ledger
    applied: Applied
    verdicts: list[Verdict]
    windows_judged: int = 0
    replayed: int = 0  # rows a delta brought that were taken in before
    writes: list[tuple[str, bytes | None]] = field(default_factory=list)  # before the record; None deletes
    after: list[str] = field(default_factory=list)  # deleted once the record is written


def pending_key(team: str, op: int) -> str:
    return f"{team}{SEP}p{SEP}{op}"


def ids_key(team: str, op: int) -> str:
    return f"{team}{SEP}i{SEP}{op}"


class LedgerStore:
    """Team records over the `ledgers` table, and what is kept in memory beside them."""

    def __init__(self, table: MutableMapping[str, bytes], rules: RuleBook, policy: WindowPolicy, ids: EventIdIndex,
                 kind_of_source: Callable[[str], str], max_value_bytes: int, horizon_s: float) -> None:
        self.store = RecordStore(table, max_value_bytes)
        self.rules, self.policy, self.ids = rules, policy, ids
        self.kind_of_source = kind_of_source
        self.max_value_bytes = max_value_bytes
        self.horizon_s = horizon_s
        self.pending: dict[str, PendingRows] = {}  # per team: rows past the record's `through`
        # Per team: (op, newest ts) of its id chunks, in op order.
        self.id_chunks: dict[str, deque[tuple[int, float]]] = {}
        self.orphans: dict[str, list[str]] = {}  # per team: pieces of steps cut short, deleted at its next step
        self.waiting: dict[int, dict[str, float]] = {}  # per deltas partition: team -> oldest pending event time
        self.spend: dict[int, dict[str, float]] = {}  # per partition, team: total cost, for `/spend` listings
        self.endpoints: dict[str, int] = {}  # per team: how many endpoints it has (keys past a limit are watched)

    @property
    def table(self) -> MutableMapping[str, bytes]:
        return self.store.table

    def load(self, team: str) -> Ledger | None:
        raw = self.store.get(team)
        return None if raw is None else orjson.loads(raw)

    def teams(self) -> Iterator[tuple[str, Ledger]]:
        for key in list(self.table.keys()):
            if SEP not in key:
                ledger = self.load(key)
                if ledger is not None:
                    yield key, ledger

    # -- one step ------------------------------------------------------------------------------

    def step(self, team: str, partition: int, watermark: float,
             parts: Sequence[tuple[str, Sequence[Sequence[Any]]]] | None = None,
             deltas: Sequence[bytes] | None = None) -> Step:
        """Take in a delta's parts (if any) and apply every row the watermark has released.

        `deltas`, when given, are the encoded messages the parts came from: rows left waiting are
        stored as those bytes rather than encoded again, when every row in them was fresh.
        """
        ledger = self.load(team) or new_ledger()
        op = ledger["op"] + 1
        writes: list[tuple[str, bytes | None]] = [(key, None) for key in self.orphans.pop(team, [])]
        pending = self.pending.setdefault(team, PendingRows())
        through = max(ledger["through"] if ledger["through"] is not None else -math.inf, watermark)
        arrived: list[Entry] = []
        replayed = 0
        for source, rows in parts or ():
            kind = self.kind_of_source(source)
            fresh, skipped = take_fresh(ledger, source, rows)
            replayed += skipped
            arrived.extend(self._entries(kind, fresh))
        for run in pending.release(through):
            arrived.extend(run)
        # One sort, in C, of sorted runs: timsort merges them (a heapq.merge in Python cost 2% of the worker).
        sort_in_release_order(arrived, entry_time, _release_key)
        cut = bisect_right(arrived, through, key=entry_time)
        ordered, later = arrived[:cut], arrived[cut:]
        applied, verdicts, judged = apply_and_judge(ledger, team, map(_kind_and_row, ordered),
                                                    self.rules, self.policy, self.ids)
        if math.isinf(through):  # every source idle: applied all there was, and no further
            through = ledger["through"] if ledger["through"] is not None else -math.inf
            if ordered:
                through = max(through, entry_time(ordered[-1]))
        ledger["through"] = None if math.isinf(through) else through
        if later:
            # Stored as it came when it holds nothing else taken in before: recovery keeps only the rows
            # past the record's `through`, so the rows applied now are read back and dropped.
            chunk = _chunks_encoder.encode(list(deltas)) if deltas is not None and not replayed \
                else self._encode_entries(later)
            writes.append((pending_key(team, op), chunk))
            ledger["pending"].append([op, entry_time(later[-1])])
            pending.add(later)
        after = [pending_key(team, chunk_op) for chunk_op, newest in ledger["pending"] if newest <= through]
        ledger["pending"] = [[chunk_op, newest] for chunk_op, newest in ledger["pending"] if newest > through]
        if applied.new_ids:
            writes.append((ids_key(team, op), packed(applied.new_ids)))
            self.id_chunks.setdefault(team, deque()).append((op, max(ts for _, ts in applied.new_ids)))
        after.extend(self._expired_id_chunks(team, ledger))
        ledger["op"] = op
        self._note_waiting(team, partition)
        return Step(team, partition, ledger, applied, verdicts, judged, replayed, writes, after)

    def commit(self, step: Step) -> None:
        """Write a step: its pieces, then the record (the commit point), then what it retired."""
        for key, value in step.writes:
            if value is None:
                self.store.delete(key)
            else:
                self.store.put(key, value)
        self.store.put(step.team, packed(step.ledger))
        for key in step.after:
            self.store.delete(key)
        self._index(step.team, step.partition, step.ledger)

    def _index(self, team: str, partition: int, ledger: Ledger) -> None:
        cost = team_cost_usd(ledger)
        if cost is not None:
            # As `/spend` shows it, so cursors match; kept by partition so a listing of the
            # partitions a worker owns never hashes 20,000 team names.
            self.spend.setdefault(partition, {})[team] = cost
            self.endpoints[team] = max(0, len(ledger["accounts"]) - 1)

    def releasable(self, partition: int, watermark: float) -> list[str]:
        """Teams of a deltas partition with rows the watermark has passed."""
        return [team for team, oldest in self.waiting.get(partition, {}).items() if oldest <= watermark]

    def _note_waiting(self, team: str, partition: int) -> None:
        waiting = self.waiting.setdefault(partition, {})
        oldest = self.pending[team].oldest() if team in self.pending else None
        if oldest is not None:
            waiting[team] = oldest
        else:
            waiting.pop(team, None)

    def _expired_id_chunks(self, team: str, ledger: Ledger) -> list[str]:
        """Id chunks wholly behind the horizon, oldest op first.

        Only the front of the queue is looked at, so a step costs the same however long the
        team's history: a scan of every chunk made the cost per event grow with it (160 us to
        3 ms over 100,000 one-event steps). A chunk behind one still inside the horizon waits
        for it; keeping an id longer changes nothing, since a repeat is judged against the
        repeating row's own time (streams/state/ledger.py).
        """
        chunks = self.id_chunks.get(team)
        if not chunks or ledger["newest"] is None:
            return []
        cutoff = ledger["newest"] - self.horizon_s
        expired = []
        while chunks and chunks[0][1] < cutoff:
            expired.append(ids_key(team, chunks.popleft()[0]))
        return expired

    def _encode_entries(self, entries: Sequence[Entry]) -> bytes:
        by_kind: dict[str, list[Sequence[Any]]] = {}
        for _, kind, row in entries:
            by_kind.setdefault(kind, []).append(row)
        return _chunks_encoder.encode(encode_deltas(list(by_kind.items()), self.max_value_bytes))

    def _decode_entries(self, data: bytes) -> list[Entry]:
        entries: list[Entry] = []
        for message in _chunks_decoder.decode(data):
            for source, rows in decode_delta(message):
                # A chunk this store encoded names each part by its kind; a delta stored as it came, by its source.
                kind = source if source in KINDS else self.kind_of_source(source)
                entries.extend(self._entries(kind, rows))
        return entries

    def _entries(self, kind: str, rows: Sequence[Sequence[Any]]) -> Iterator[Entry]:
        return zip(map(itemgetter(KINDS[kind].time_field), rows), itertools.repeat(kind), rows)

    # -- after a rebalance ---------------------------------------------------------------------

    def recover(self, owned: Callable[[str], int | None]) -> None:
        """Rebuild what is kept in memory from the table, for the teams `owned` maps to a partition."""
        self.pending.clear()
        self.id_chunks.clear()
        self.orphans.clear()
        self.waiting.clear()
        self.spend.clear()
        self.endpoints.clear()
        self.ids.clear()
        pieces: dict[str, dict[str, list[int]]] = {}
        records = []
        for key in list(self.table.keys()):
            fields = key.split(SEP)
            if len(fields) == 1:
                records.append(key)
            elif len(fields) == 3 and fields[1] in ("p", "i"):
                pieces.setdefault(fields[0], {"p": [], "i": []})[fields[1]].append(int(fields[2]))
        for team in set(records) | set(pieces):
            partition = owned(team)
            if partition is None:
                continue
            ledger = self.load(team) or new_ledger()
            self._index(team, partition, ledger)
            live = {op for op, _ in ledger["pending"]}
            found = pieces.get(team, {"p": [], "i": []})
            through = ledger["through"] if ledger["through"] is not None else -math.inf
            rows_waiting: list[Entry] = []
            for op in found["p"]:
                if op in live:
                    data = self.store.get(pending_key(team, op))
                    if data is not None:
                        rows_waiting.extend(entry for entry in self._decode_entries(data) if entry[0] > through)
                else:
                    self.orphans.setdefault(team, []).append(pending_key(team, op))
            self.pending[team] = PendingRows()
            sort_in_release_order(rows_waiting, entry_time, _release_key)
            self.pending[team].add(rows_waiting)
            for op in sorted(found["i"]):
                if op > ledger["op"]:
                    self.orphans.setdefault(team, []).append(ids_key(team, op))
                    continue
                pairs = orjson.loads(self.store.get(ids_key(team, op)) or b"[]")
                for hashed, ts in pairs:
                    self.ids.remember(team, hashed, ts)
                self.id_chunks.setdefault(team, deque()).append((op, max((ts for _, ts in pairs), default=0.0)))
            self._note_waiting(team, partition)


class LedgerStage:
    """What the ledger agent does with the messages of the deltas topic, without Faust.

    The agent is handed a run of consecutive messages of one partition at a time (a bundle,
    streams/worker/consumer.py). Their progress reports move the partition's watermark; their
    deltas are gathered per team; then each team with deltas is taken in (and whatever the
    final watermark allows applied) in one step, and every other team the watermark has passed
    is released in one more. Taking the run as a whole changes no figure: rows are applied in
    release order whatever the step they arrive in, as replay applies them all in one go. It
    saves steps: one message at a time, each ingest batch cost a team two (one to store its
    rows as a pending chunk, one at the next report to apply them and delete the chunk), each
    loading and writing the team's record. `steps` yields one step at a time: the caller
    publishes its alerts and commits it before asking for the next.
    """

    def __init__(self, store: LedgerStore, max_out_of_order_s: float) -> None:
        self.store = store
        self.max_out_of_order_s = max_out_of_order_s
        self.watermarks: dict[int, Watermark] = {}

    def watermark(self, partition: int) -> Watermark:
        mark = self.watermarks.get(partition)
        if mark is None:
            mark = self.watermarks[partition] = Watermark(self.max_out_of_order_s)
        return mark

    def steps(self, partition: int, messages: Sequence[tuple[bytes, bytes]]) -> Iterator[Step]:
        """The steps for consecutive (key, value) messages of one deltas partition, in offset order."""
        mark = self.watermark(partition)
        parts_of_team: dict[str, list[tuple[str, Sequence[Sequence[Any]]]]] = {}
        deltas_of_team: dict[str, list[bytes]] = {}
        for key, value in messages:
            if key == PROGRESS_KEY:
                mark.report(_progress_decoder.decode(value))
            else:
                delta = decode_delta(value)
                for source, _ in delta:
                    mark.activate(source)
                team = key.decode()
                parts_of_team.setdefault(team, []).extend(delta)
                deltas_of_team.setdefault(team, []).append(value)
        watermark = mark.value()
        for team, parts in parts_of_team.items():
            yield self.store.step(team, partition, watermark, parts, deltas_of_team[team])
        for team in self.store.releasable(partition, watermark):
            yield self.store.step(team, partition, watermark)

    def recover(self, owned: Callable[[str], int | None]) -> None:
        self.store.recover(owned)
        self.watermarks.clear()  # soft state: every owner reports again within a second


def encode_progress(partitions: dict[str, int], sources: dict[str, list[Any]]) -> bytes:
    """A progress report (streams/state/watermarks.py) as the deltas topic carries it."""
    return _progress_encoder.encode({"partitions": partitions, "sources": sources})


_progress_encoder = msgspec.msgpack.Encoder()
_progress_decoder = msgspec.msgpack.Decoder()
