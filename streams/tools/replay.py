"""`spendwatch replay`: the live detectors over JSONL files, offline, in event-time order.

Each line is what a Kafka message would hold (an event or an array of events). Events are
validated and priced exactly as the worker does, put in release order (streams/input/kinds.py),
and applied per team through the same `apply_and_judge` as the worker, so replay and the
live worker count the same figures and raise the same alerts for the same events, whatever
order Kafka delivered them in.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson

from streams import gc_tuning
from streams.input.events import InputLimits
from streams.input.intake import decode_events, row_rejection
from streams.input.kinds import KIND_OF_ORDER, KINDS, position, release_key, sort_in_release_order
from streams.input.kinds import Row as KindRow
from streams.input.rows import RowContext
from streams.settings import Settings
from streams.state.dedup import EventIdIndex
from streams.state.judging import RuleBook, alert_from_verdict, apply_and_judge, commands_from_alert
from streams.state.ledger import Ledger, WindowPolicy, new_ledger

#: `spendwatch replay`'s default: one process per core, up to 8.
DEFAULT_PROCESSES = min(8, os.cpu_count() or 1)

#: (event time, kind order, sequence, team, row): the shape `make eval` builds its workloads in.
Row = tuple[float, int, int, str, KindRow]  # (event time, kind order, line number, team, row)


@dataclass
class ReplaySummary:
    events: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def refuse(self, refused: Counter[tuple[str, str]]) -> None:
        """Events decoded but refused as rows (a computed cost over the cap): rejected, not counted."""
        for (kind, reason), count in refused.items():
            self.events[kind] -= count
            self.rejected[reason] += count

    def lines(self) -> list[str]:
        total = sum(self.events.values())
        rate = total / self.seconds if self.seconds else 0.0
        out = [f"replayed {total} events in {self.seconds:.2f}s ({rate:,.0f} events/s): "
               + ", ".join(f"{kind} {n}" for kind, n in sorted(self.events.items()))]
        if self.rejected:
            out.append("rejected: " + ", ".join(f"{reason} {n}" for reason, n in sorted(self.rejected.items())))
        if self.duplicates:
            out.append(f"repeated event_id, counted once: {self.duplicates}")
        out.append("alerts: " + (", ".join(f"{k} {n}" for k, n in sorted(self.alerts.items())) or "none"))
        return out


def read_rows(lines: Iterable[bytes], kind: str, settings: Settings, summary: ReplaySummary,
              now: float) -> list[Row]:
    """(ts, kind order, sequence, team, row) for every valid event in the lines."""
    context = row_context(settings)
    rows: list[Row] = []
    refused: Counter[tuple[str, str]] = Counter()
    for ts, order, seq, team, (at, event) in read_events(lines, kind, settings, summary, now):
        row = built_row(kind, at, event, context, refused)
        if row is not None:
            rows.append((ts, order, seq, team, row))
    summary.refuse(refused)
    return rows


def row_context(settings: Settings) -> RowContext:
    return RowContext(settings.gpu_prices, max_event_cost_usd=settings.max_event_cost_usd)


def built_row(kind: str, at: int, event: Any, context: RowContext, refused: Counter[tuple[str, str]]) -> Any:
    """The event's row, or None when building it rejects the event, counted in `refused` by (kind, reason),
    as the worker's intake dead-letters it (streams/input/intake.py, `row_rejection`)."""
    try:
        return KINDS[kind].to_row(at, event, context)
    except Exception as exc:  # noqa: BLE001 - the same rejection the worker makes, never a crash
        refused[(kind, row_rejection(exc, event).reason)] += 1
        return None


def read_events(lines: Iterable[bytes], kind: str, settings: Settings, summary: ReplaySummary,
                now: float) -> list[tuple[float, int, int, str, tuple[int, Any]]]:
    """`read_rows` with (position, event) in place of each row: `detect(..., context=...)` builds them."""
    decoded: list[tuple[float, int, int, str, tuple[int, Any]]] = []
    limits = InputLimits.from_settings(settings)
    order = KINDS[kind].order
    for seq, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        events, rejections = decode_events(kind, line, now, settings.future_tolerance_seconds, limits)
        for rejection in rejections:
            summary.rejected[rejection.reason] += 1
        for index, event in enumerate(events):
            decoded.append((event.ts, order, seq, event.team, (position(seq, index), event)))
        summary.events[kind] += len(events)
    return decoded


def replay(inputs: dict[str, BinaryIO], output: BinaryIO, settings: Settings,
           now: float | None = None, actions: BinaryIO | None = None, processes: int = 1) -> ReplaySummary:
    """Run the detectors over `inputs` ({"usage"|"gpu"|"runs": file}) and write alerts as JSONL, and into
    `actions` the commands they call for (SPENDWATCH_ACTIONS), as the worker puts them on the actions topic.

    `processes` > 1 shares the teams among that many forked processes (see `detect`)."""
    started = time.perf_counter()
    summary = ReplaySummary()
    now = time.time() if now is None else now
    decoded: list[Any] = []
    with gc_tuning.paused():  # every row lives until the end: collections would only walk them
        for kind, stream in inputs.items():
            decoded.extend(read_events(stream, kind, settings, summary, now))
        # Rows are built (priced, their ids hashed) by whichever process detects their team.
        for alert in detect(decoded, settings, summary, processes=processes, context=row_context(settings)):
            output.write(orjson.dumps(alert) + b"\n")
            summary.alerts[f"{alert['kind']}/{alert['status']}"] += 1
            if actions is not None:
                for command in commands_from_alert(alert, settings):
                    actions.write(orjson.dumps(command) + b"\n")
        # Freed while collections are paused: the first one after would walk every row still held.
        decoded.clear()
    summary.seconds = time.perf_counter() - started
    return summary


#: Below this many rows one process does it all: forking costs more than it saves.
PARALLEL_MIN_ROWS = 20_000

TeamEntries = dict[str, list[tuple[str, Any]]]  # team -> its (kind, row or (position, event)), in any order
TimedAlert = tuple[float, str, dict[str, Any]]  # (event time, team, alert)


def detect(rows: Iterable[Row], settings: Settings, summary: ReplaySummary | None = None,
           ledgers: dict[str, Ledger] | None = None, processes: int = 1,
           context: RowContext | None = None) -> Iterator[dict[str, Any]]:
    """Alerts from rows in any order, each team's rows applied in release order, as the worker does.

    `ledgers`, when given, receives each team's final ledger (the figures `/spend` would show).
    `processes` > 1 shares the teams among forked processes: a team's figures and alerts depend on
    its own rows only (its ledger, its ids, its detectors), as they do on the worker's partitions,
    so the alerts are the same, merged in the same order. With `ledgers` one process does it all.
    With `context`, each row is still (position, event), as `read_events` gives it, and is built
    with that context by the process that detects its team.
    """
    by_team: TeamEntries = {}
    for _ts, order, _seq, team, row in rows:
        by_team.setdefault(team, []).append((KIND_OF_ORDER[order], row))
    total = sum(len(entries) for entries in by_team.values())
    if processes > 1 and ledgers is None and len(by_team) > 1 and total >= PARALLEL_MIN_ROWS:
        alerts, duplicates, refused = _detect_in_processes(by_team, settings, processes, context)
    else:
        alerts, duplicates, refused = _detect_teams(by_team, list(by_team), settings, ledgers, context)
    if summary is not None:
        summary.duplicates += duplicates
        summary.refuse(refused)
    alerts.sort(key=lambda item: (item[0], item[1], item[2]["alert_id"]))
    for _, _, alert in alerts:
        yield alert


def _detect_teams(by_team: TeamEntries, teams: Sequence[str], settings: Settings,
                  ledgers: dict[str, Ledger] | None = None,
                  context: RowContext | None = None) -> tuple[list[TimedAlert], int, Counter[tuple[str, str]]]:
    """The alerts of `teams`, how many of their rows repeated an event_id, and the events refused as rows."""
    policy = WindowPolicy.from_settings(settings)
    rules = RuleBook(settings)
    ids = EventIdIndex(settings.dedup_horizon_seconds)
    alerts: list[TimedAlert] = []
    duplicates = 0
    refused: Counter[tuple[str, str]] = Counter()
    for team in teams:
        entries = by_team[team]
        if context is not None:
            entries = [(kind, row) for kind, (at, event) in entries
                       if (row := built_row(kind, at, event, context, refused)) is not None]
        sort_in_release_order(entries, _event_time, _release_key)
        ledger = new_ledger()
        applied, verdicts, _ = apply_and_judge(ledger, team, entries, rules, policy, ids,
                                               with_accounts=ledgers is not None)
        duplicates += applied.duplicates
        if ledgers is not None:
            ledgers[team] = ledger
        alerts.extend((verdict.ts, team, alert_from_verdict(verdict, settings.base_url, settings.public_url))
                      for verdict in verdicts)
    return alerts, duplicates, refused


# What the forked processes read: set just before the fork, so they inherit it instead of unpickling it.
_shared: tuple[TeamEntries, Settings, list[list[str]], RowContext | None] | None = None


def _detect_share(share: int) -> tuple[list[TimedAlert], int, Counter[tuple[str, str]]]:
    assert _shared is not None
    by_team, settings, shares, context = _shared
    return _detect_teams(by_team, shares[share], settings, None, context)


def _detect_in_processes(by_team: TeamEntries, settings: Settings, processes: int,
                         context: RowContext | None) -> tuple[list[TimedAlert], int, Counter[tuple[str, str]]]:
    """Teams dealt out biggest first to the least loaded process; each process detects its own."""
    global _shared
    shares: list[list[str]] = [[] for _ in range(min(processes, len(by_team)))]
    loads = [0] * len(shares)
    for team in sorted(by_team, key=lambda team: -len(by_team[team])):
        lightest = loads.index(min(loads))
        shares[lightest].append(team)
        loads[lightest] += len(by_team[team])
    _shared = (by_team, settings, shares, context)
    try:
        with multiprocessing.get_context("fork").Pool(len(shares)) as pool:
            results = pool.map(_detect_share, range(len(shares)))
    finally:
        _shared = None
    return ([alert for alerts, _, _ in results for alert in alerts], sum(duplicates for _, duplicates, _ in results),
            sum((refused for _, _, refused in results), Counter()))


def _release_key(entry: tuple[str, KindRow]) -> tuple[Any, ...]:
    return release_key(*entry)


def _event_time(entry: tuple[str, KindRow]) -> float:
    kind, row = entry
    # Read for every row when a team's rows are sorted: one lookup, and no `cast` (a call at run time).
    return row[_TIME_FIELD[kind]]  # type: ignore[return-value]  # the time field holds a float


_TIME_FIELD = {kind: spec.time_field for kind, spec in KINDS.items()}
