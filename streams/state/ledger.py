"""A team's ledger: usage accounts per endpoint and for the team, and its training runs.

The ledger is the team record of the `ledgers` table (streams/state/store.py). Rows reach it
in two steps:

1. `take_fresh`: the rows a delta brings, less those already taken in. Each row carries its
   *position* (source offset and index, streams/input/kinds.py), and the ledger remembers per
   source partition the highest position it has taken in (`received`), so a delta
   re-delivered after a crash or a takeover is skipped row by row: state is idempotent under
   Kafka's at-least-once delivery, and the positions travel in the same changelog record as
   the figures they produced.
2. `apply_in_order`: rows the watermark has released, in `release_key` order, counted into
   the accounts and the runs, de-duplicated by event_id, and shown to the detectors.

Row layouts are in streams/input/rows.py. Usage rows (the hot path: 99% of rows) are
de-duplicated and shown to the detectors inline, then counted into the accounts a column at a
time (`count_usage`); every other kind is applied through its entry in `APPLY`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alerting.model import rfc3339
from streams.input.kinds import GPU, OUTCOMES, RUNS, USAGE
from streams.input.rows import GpuRow, OutcomeRow, RunRow
from streams.state.categories import (
    INFERENCE_SERVING,
    TRAINING,
    SpendParts,
    add_cost,
    category_total,
    category_windows,
    new_cost_account,
    total_cost,
)
from streams.state.dedup import EventIdIndex
from streams.state.windows import Account, add_calls, history, new_account

if TYPE_CHECKING:
    from streams.settings import Settings

Ledger = dict[str, Any]
RowHook = Callable[[Sequence[Any]], None]  # called with each row as it is counted (the detectors)
KindRowHook = Callable[[str, Sequence[Any]], None]  # the same for the other kinds, with the row's kind
TEAM_ACCOUNT = ""  # the endpoints' key under which the team as a whole is counted


@dataclass(frozen=True)
class WindowPolicy:
    window_s: int
    windows_kept: int
    late_grace_s: int
    gpu_max_interval_s: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> WindowPolicy:
        return cls(settings.window_seconds, settings.windows_kept, settings.late_grace_seconds,
                   settings.gpu_max_interval_s)


@dataclass
class Applied:
    """What applying some rows did: for metrics and for the id chunk the ledger writes."""

    counted: Counter[str] = field(default_factory=Counter)  # by kind
    duplicates: int = 0
    late: int = 0  # too late for their window (still in the totals)
    out_of_order: int = 0  # applied after a newer row of the team: they arrived behind the watermark
    new_ids: list[tuple[int, float]] = field(default_factory=list)


def new_ledger() -> Ledger:
    return {"op": 0, "received": {}, "through": None, "newest": None, "pending": [],
            "accounts": {}, "runs": {}}


def take_fresh(ledger: Ledger, source: str, rows: Sequence[Sequence[Any]]) -> tuple[Sequence[Sequence[Any]], int]:
    """Rows past this ledger's received position for `source`, and how many were not; advances it."""
    received = ledger["received"]
    done = received.get(source, -1)
    # Every kind's first field is its position. A part's rows are in position order, so the usual case, a
    # part never taken in, is told by its first row alone.
    fresh = rows if not rows or rows[0][0] > done else [row for row in rows if row[0] > done]
    if fresh:
        received[source] = max(done, fresh[-1][0])
    return fresh, len(rows) - len(fresh)


def account_for(ledger: Ledger, endpoint: str) -> Account:
    accounts = ledger["accounts"]
    account = accounts.get(endpoint)
    if account is None:
        account = accounts[endpoint] = new_account()
    return account


def apply_in_order(
    ledger: Ledger,
    team: str,
    entries: Iterable[tuple[str, Sequence[Any]]],
    policy: WindowPolicy,
    ids: EventIdIndex,
    on_usage: RowHook | None = None,
    on_other: KindRowHook | None = None,
    with_accounts: bool = True,
) -> Applied:
    """Count (kind, row) entries, already in release order, into the ledger.

    `with_accounts=False` leaves the usage accounts alone (replay when only alerts are
    wanted: detection never reads them).
    """
    applied = Applied()
    window_s, kept, grace = policy.window_s, policy.windows_kept, policy.late_grace_s
    team_ids, new_ids, counted = ids.of_team(team), applied.new_ids, applied.counted
    seen, remembered = team_ids.times, team_ids.order.append
    horizon, most_ids = ids.horizon_s, ids.max_ids_per_team
    newest = ledger["newest"] if ledger["newest"] is not None else -math.inf
    usage_rows: list[Sequence[Any]] = []  # counted into the accounts after the loop, a column at a time

    def repeated(hashed: int, ts: float) -> bool:
        """Whether an event id was seen within the horizon of this row's own time (not of when the index was last
        pruned, so the answer never depends on how rows were batched); remembers it at this time if not."""
        before = seen.get(hashed)
        if before is None:
            remembered(hashed)
        elif before >= ts - horizon:
            applied.duplicates += 1
            return True
        seen[hashed] = ts  # seen too long ago, if at all: counted (again), remembered at this time
        new_ids.append((hashed, ts))
        if len(seen) > most_ids:
            team_ids.trim(most_ids)
        return False

    for kind, row in entries:
        if kind == USAGE:
            ts = row[2]
            if row[7] and repeated(row[7], ts):  # the event id's hash (streams/input/rows.py)
                continue
            usage_rows.append(row)
            if on_usage is not None:
                on_usage(row)
        else:
            if kind == OUTCOMES and row[5] and repeated(row[5], row[2]):  # an outcome's id, as a call's
                continue
            ts = APPLY[kind](ledger, row, policy)
            if on_other is not None:
                on_other(kind, row)
            counted[kind] += 1
        if ts < newest:
            applied.out_of_order += 1
        else:
            newest = ts
    if usage_rows:
        counted[USAGE] += len(usage_rows)
        if with_accounts:
            applied.late += count_usage(ledger, usage_rows, window_s, kept, grace)
    ledger["newest"] = newest if newest > -math.inf else None
    if ledger["newest"] is not None:
        ids.prune(team, ledger["newest"])
    return applied


def count_usage(ledger: Ledger, rows: Sequence[Sequence[Any]], window_s: int, kept: int, grace: int) -> int:
    """Count usage rows, in the order applied, into their endpoints' accounts and the team's: how many
    were too late for their endpoint's window."""
    by_endpoint: dict[str, list[Sequence[Any]]] = {}
    for row in rows:
        group = by_endpoint.get(row[1])
        if group is None:
            by_endpoint[row[1]] = [row]
        else:
            group.append(row)
    # Accounts are made in the order a row at a time made them (the first row's endpoint, then the team, then
    # the others as they first appear), so a ledger's records read the same however its rows were split.
    account_for(ledger, rows[0][1])
    account_for(ledger, TEAM_ACCOUNT)
    late = 0
    for endpoint, its_rows in by_endpoint.items():
        late += add_calls(account_for(ledger, endpoint), *_usage_columns(its_rows), window_s, kept, grace)
    add_calls(account_for(ledger, TEAM_ACCOUNT), *_usage_columns(rows), window_s, kept, grace)
    return late


UsageColumns = tuple[Sequence[float], Sequence[int], Sequence[int], Sequence[float], Sequence[int]]


def _usage_columns(rows: Sequence[Sequence[Any]]) -> UsageColumns:
    """Event time, prompt and completion tokens, cost and unpriced (streams/input/rows.py's layout) as columns."""
    ts: list[float] = []
    prompt: list[int] = []
    completion: list[int] = []
    cost: list[float] = []
    unpriced: list[int] = []
    for row in rows:  # a plain loop: twice as fast as a map per column, or a transpose with zip(*rows)
        ts.append(row[2])
        prompt.append(row[3])
        completion.append(row[4])
        cost.append(row[5])
        unpriced.append(row[6])
    return ts, prompt, completion, cost, unpriced


def new_run(run_id: str) -> dict[str, Any]:
    return {
        "run_id": run_id, "status": "unknown", "started": None, "ended": None, "high": 0.0,
        "estimated_cost_usd": None, "ceiling_usd": None, "gpus": None, "gpu_type": None,
        "expected_hours": None, "gpu_hours": 0.0, "cost_usd": 0.0, "idle_gpu_hours": 0.0,
        "gpu_last": {},  # gpu_id -> [last sample ts, USD per hour]
    }


def _apply_run(ledger: Ledger, row: RunRow) -> float:
    """A lifecycle event: the estimate and limits on `started`, the end on the others."""
    _position, run_id, status, ts, estimate, ceiling, gpus, gpu_type, hours = row
    run = ledger["runs"].setdefault(run_id, new_run(run_id))
    if status == "started":
        run["started"] = ts if run["started"] is None else min(run["started"], ts)
        for name, value in (("estimated_cost_usd", estimate), ("ceiling_usd", ceiling),
                            ("gpus", gpus), ("gpu_type", gpu_type), ("expected_hours", hours)):
            if value is not None:
                run[name] = value
        if run["status"] == "unknown":
            run["status"] = "running"
    else:
        run["status"] = status
        run["ended"] = ts
    run["high"] = max(run["high"], ts)
    return ts


def _accrue(holder: dict[str, Any], gpu_id: str, ts: float, price: float, interval: float | None,
            utilization: float | None, policy: WindowPolicy) -> tuple[float, float]:
    """A sample pays for the time since that GPU's last one (capped): its (GPU-hours, USD), added to `holder`
    (a run or a serving endpoint)."""
    last = holder["gpu_last"].get(gpu_id)
    if interval is None:
        interval = 0.0 if last is None else min(max(ts - last[0], 0.0), policy.gpu_max_interval_s)
    hours = interval / 3600.0
    holder["gpu_hours"] += hours
    holder["cost_usd"] += hours * price
    if utilization is not None and utilization < 5.0:
        holder["idle_gpu_hours"] += hours
    if last is None or ts >= last[0]:
        holder["gpu_last"][gpu_id] = [ts, price]
    return hours, hours * price


def new_serving(endpoint: str) -> dict[str, Any]:
    return {**new_cost_account(), "endpoint": endpoint, "idle_gpu_hours": 0.0, "gpu_last": {}, "last_sample_usd": 0.0}


def _apply_gpu(ledger: Ledger, row: GpuRow, policy: WindowPolicy) -> float:
    """Accrue GPU-hours and cost to the sample's training run, or to its serving endpoint (`inference_serving`)."""
    _position, run_id, gpu_id, ts, _gpu_type, price, interval, utilization, endpoint = row
    if endpoint:
        serving = ledger.setdefault("serving", {})
        holder = serving.get(endpoint)
        if holder is None:
            holder = serving[endpoint] = new_serving(endpoint)
        hours, usd = _accrue(holder, gpu_id, ts, price, interval, utilization, policy)
    else:
        holder = ledger["runs"].setdefault(run_id, new_run(run_id))
        hours, usd = _accrue(holder, gpu_id, ts, price, interval, utilization, policy)
        if holder["status"] == "unknown":
            holder["status"] = "running"
        if holder["started"] is None or ts < holder["started"]:
            holder["started"] = ts
        # The team's training spend per window, beside its token and serving spend (`/spend`'s categories).
        training = ledger.get("training")
        if training is None:
            training = ledger["training"] = new_cost_account()
        training["cost_usd"] += usd
        training["gpu_hours"] += hours
        add_cost(training, ts, usd, hours, policy.window_s, policy.windows_kept, policy.late_grace_s)
    if endpoint:
        add_cost(holder, ts, usd, hours, policy.window_s, policy.windows_kept, policy.late_grace_s)
    else:
        holder["high"] = max(holder["high"], ts)
    holder["last_sample_usd"] = usd  # what the serving spike detector and budgets count (streams/state/judging.py)
    return ts


def burn_rate_usd_per_hour(run: dict[str, Any], policy: WindowPolicy) -> float:
    """What the run's GPUs cost per hour now: those heard from within the sample cap of its newest sample."""
    recent = run["high"] - policy.gpu_max_interval_s
    return sum(price for last_ts, price in run["gpu_last"].values() if last_ts >= recent)


def spend_view(ledger: dict[str, Any], team: str, endpoint: str | None, window_s: int,
               with_history: bool = False) -> dict[str, Any] | None:
    """CONTRACT's spend object for a team (endpoint None) or one of its endpoints; None when unseen.

    Every dollar is in one category (`CATEGORIES`): each window and the total carry their
    `categories`, and their `cost_usd` is the categories' sum. A team's view also lists its endpoints
    with their totals, largest first, so a user need not know their names to ask for one.
    `with_history` adds `history`: the calls' cost (`api_tokens`) per window for the last hours and per
    hour for the last week (streams/state/windows.py `history`), starts as RFC 3339."""
    parts = spend_parts(ledger, endpoint)
    if parts is None:
        return None
    view = {"team": team, "endpoint": endpoint, "windows": category_windows(parts, window_s),
            "total": category_total(parts, window_s)}
    serving = ledger.get("serving", {}).get(endpoint) if endpoint is not None else None
    tokens = parts.calls["total"][1] + parts.calls["total"][2] if parts.calls is not None else 0
    if serving is not None and tokens:
        # The true price of serving: what its GPUs cost per million tokens it served (detectors/serving_price.py).
        view["serving_usd_per_million_tokens"] = round(serving["cost_usd"] / tokens * 1e6, 6)
    if endpoint is None:
        names = set(ledger["accounts"]) | set(ledger.get("serving", {}))
        endpoints = [{"endpoint": name, "total": category_total(spend_parts(ledger, name), window_s)}  # type: ignore[arg-type]
                     for name in names if name != TEAM_ACCOUNT]
        view["endpoints"] = sorted(endpoints, key=lambda e: (-e["total"]["cost_usd"], e["endpoint"]))
        by_tier = ledger.get("tiers", {}).get("by_tier")
        if by_tier:  # counted where calls are judged against the tier policy (detectors/tiers.py)
            view["tiers"] = sorted(({"tier": tier, "requests": int(calls), "cost_usd": round(usd, 6)}
                                    for tier, (calls, usd) in by_tier.items()),
                                   key=lambda t: (-t["cost_usd"], t["tier"]))
    if with_history:
        series = history(parts.calls, window_s)
        view["history"] = {"category": "api_tokens", **{
            name: {**one, "start": rfc3339(one["start"]) if one["start"] is not None else None}
            for name, one in series.items()}}
    return view


def team_cost_usd(ledger: dict[str, Any]) -> float | None:
    """The team's dollars, every category, as its total W shows them; None when nothing was counted."""
    parts = spend_parts(ledger, None)
    return None if parts is None else total_cost(parts)


def team_total(ledger: dict[str, Any], window_s: int) -> dict[str, Any] | None:
    """The team's total W, every category in it (`GET /spend`'s list, the page); None when nothing was counted."""
    parts = spend_parts(ledger, None)
    return None if parts is None else category_total(parts, window_s)


def spend_parts(ledger: dict[str, Any], endpoint: str | None) -> SpendParts | None:
    """The accounts behind a key's spend: its calls' account, and the cost windows of each GPU category."""
    account = ledger["accounts"].get(TEAM_ACCOUNT if endpoint is None else endpoint)
    serving = ledger.get("serving", {})
    if endpoint is None:
        gpus = {INFERENCE_SERVING: list(serving.values()),
                TRAINING: [ledger["training"]] if "training" in ledger else []}
    else:
        gpus = {INFERENCE_SERVING: [serving[endpoint]] if endpoint in serving else [], TRAINING: []}
    if account is None and not any(gpus.values()):
        return None
    return SpendParts(account, gpus)


def run_view(run: dict[str, Any], team: str, policy: WindowPolicy) -> dict[str, Any]:
    """A run as `/runs/{run_id}` shows it."""
    return {
        "run_id": run["run_id"], "team": team, "status": run["status"],
        "estimated_cost_usd": run["estimated_cost_usd"], "ceiling_usd": run["ceiling_usd"],
        "expected_hours": run["expected_hours"], "gpus_planned": run["gpus"], "gpu_type": run["gpu_type"],
        "gpus_active": sum(1 for last_ts, _ in run["gpu_last"].values()
                           if last_ts >= run["high"] - policy.gpu_max_interval_s),
        "gpu_hours": round(run["gpu_hours"], 6), "idle_gpu_hours": round(run["idle_gpu_hours"], 6),
        "cost_usd": round(run["cost_usd"], 6), "burn_rate_usd_per_hour": round(burn_rate_usd_per_hour(run, policy), 6),
        "started": rfc3339(run["started"]) if run["started"] else None,
        "ended": rfc3339(run["ended"]) if run["ended"] else None,
    }


def _apply_outcome(ledger: Ledger, row: OutcomeRow) -> float:
    """Outcomes counted per endpoint and outcome since first seen (cost per outcome is judged in
    streams/state/judging.py, per period)."""
    _position, endpoint, ts, outcome, count, _hashed = row
    totals = ledger.setdefault("outcomes", {})
    key = f"{endpoint}{OUTCOME_SEP}{outcome}"
    totals[key] = totals.get(key, 0) + count
    return ts


#: Between an endpoint and an outcome's name in a key (a control character: names never hold one).
OUTCOME_SEP = "\x1f"


#: How a row of each kind other than usage changes the ledger: (ledger, row, policy) -> the row's event time.
APPLY: dict[str, Callable[[Ledger, Any, WindowPolicy], float]] = {
    GPU: lambda ledger, row, policy: _apply_gpu(ledger, row, policy),
    RUNS: lambda ledger, row, policy: _apply_run(ledger, row),
    OUTCOMES: lambda ledger, row, policy: _apply_outcome(ledger, row),
}
