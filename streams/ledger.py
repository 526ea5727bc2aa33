"""A team's ledger: usage accounts per endpoint and for the team, and its training runs.

The ledger is what the `ledgers` Faust table holds per team. Every change arrives in
a *delta* (streams/delta_codec.py) as *parts*, each the rows one source partition
contributed in one micro-batch, applied one part at a time. Each row carries its
source offset, and the ledger remembers, per source partition, the highest offset it
has applied (`applied`). A delta re-delivered after a crash (the
offsets were not yet committed) is therefore skipped row by row: state is idempotent
under Kafka's at-least-once delivery, and the offsets travel in the same changelog
record as the figures they produced.

Usage row:  [offset, endpoint, ts, prompt_tokens, completion_tokens, cost_usd, unpriced, id_hash]
GPU row:    [offset, run_id, gpu_id, ts, gpu_type, price_per_gpu_hour, interval_s, utilization]
Run row:    [offset, run_id, status, ts, estimated_cost_usd, ceiling_usd, gpus, gpu_type, expected_hours]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from streams.dedup import EventIdIndex
from streams.windows import Account, add_usage, new_account

if TYPE_CHECKING:
    from streams.settings import Settings

Ledger = dict[str, Any]
RowHook = Callable[[Sequence[Any]], None]  # called with each row as it is counted (the detectors)
TEAM_ACCOUNT = ""  # the endpoints' key under which the team as a whole is counted


@dataclass(frozen=True)
class WindowPolicy:
    window_s: int
    windows_kept: int
    late_grace_s: int
    gpu_max_interval_s: float = 300.0

    @classmethod
    def from_settings(cls, settings: "Settings") -> "WindowPolicy":
        return cls(settings.window_seconds, settings.windows_kept, settings.late_grace_seconds,
                   settings.gpu_max_interval_s)


@dataclass
class Applied:
    """What one delta did: for metrics and for the id chunk the ledger agent writes."""

    counted: int = 0
    duplicates: int = 0
    replayed: int = 0
    late: int = 0
    new_ids: list[tuple[int, float]] = field(default_factory=list)


def new_ledger() -> Ledger:
    return {"applied": {}, "accounts": {}, "runs": {}}


def _fresh_rows(ledger: Ledger, source: str, rows: Sequence[Sequence[Any]], applied: Applied) -> list[Sequence[Any]]:
    """Rows past this ledger's applied offset for `source`; advances that offset."""
    done = ledger["applied"].get(source, -1)
    fresh = [row for row in rows if row[0] > done]
    applied.replayed += len(rows) - len(fresh)
    if fresh:
        ledger["applied"][source] = max(done, fresh[-1][0])
    return fresh


def account_for(ledger: Ledger, endpoint: str) -> Account:
    accounts = ledger["accounts"]
    account = accounts.get(endpoint)
    if account is None:
        account = accounts[endpoint] = new_account()
    return account


def apply_usage(
    ledger: Ledger,
    team: str,
    source: str,
    rows: Sequence[Sequence[Any]],
    policy: WindowPolicy,
    ids: EventIdIndex,
    on_row: RowHook | None = None,
) -> Applied:
    """Count a usage delta into the endpoint accounts and the team account."""
    applied = Applied()
    accounts = ledger["accounts"]
    team_account = account_for(ledger, TEAM_ACCOUNT)
    window_s, kept, grace = policy.window_s, policy.windows_kept, policy.late_grace_s
    seen, new_ids = ids.of_team(team), applied.new_ids
    counted = duplicates = late = 0
    for row in _fresh_rows(ledger, source, rows, applied):
        _offset, endpoint, ts, prompt, completion, cost, unpriced, hashed = row
        if hashed:
            if hashed in seen:
                duplicates += 1
                continue
            seen[hashed] = ts
            new_ids.append((hashed, ts))
        account = accounts.get(endpoint) or account_for(ledger, endpoint)
        if not add_usage(account, ts, prompt, completion, cost, unpriced, window_s, kept, grace):
            late += 1
        add_usage(team_account, ts, prompt, completion, cost, unpriced, window_s, kept, grace)
        counted += 1
        if on_row is not None:
            on_row(row)
    ids.trim(team)
    applied.counted, applied.duplicates, applied.late = counted, duplicates, late
    return applied


def new_run(run_id: str) -> dict[str, Any]:
    return {
        "run_id": run_id, "status": "unknown", "started": None, "ended": None, "high": 0.0,
        "estimated_cost_usd": None, "ceiling_usd": None, "gpus": None, "gpu_type": None,
        "expected_hours": None, "gpu_hours": 0.0, "cost_usd": 0.0, "idle_gpu_hours": 0.0,
        "gpu_last": {},  # gpu_id -> [last sample ts, USD per hour]
    }


def apply_runs(ledger: Ledger, source: str, rows: Sequence[Sequence[Any]], on_row: RowHook | None = None) -> Applied:
    """Record lifecycle events: the estimate and limits on `started`, the end on the others."""
    applied = Applied()
    for row in _fresh_rows(ledger, source, rows, applied):
        _offset, run_id, status, ts, estimate, ceiling, gpus, gpu_type, hours = row
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
        applied.counted += 1
        if on_row is not None:
            on_row(row)
    return applied


def apply_gpu(ledger: Ledger, source: str, rows: Sequence[Sequence[Any]], policy: WindowPolicy,
              on_row: RowHook | None = None) -> Applied:
    """Accrue GPU-hours and cost per run: each sample pays for the time since that GPU's last one."""
    applied = Applied()
    for row in _fresh_rows(ledger, source, rows, applied):
        _offset, run_id, gpu_id, ts, _gpu_type, price, interval, utilization = row
        run = ledger["runs"].setdefault(run_id, new_run(run_id))
        last = run["gpu_last"].get(gpu_id)
        if interval is None:
            interval = 0.0 if last is None else min(max(ts - last[0], 0.0), policy.gpu_max_interval_s)
        hours = interval / 3600.0
        run["gpu_hours"] += hours
        run["cost_usd"] += hours * price
        if utilization is not None and utilization < 5.0:
            run["idle_gpu_hours"] += hours
        if last is None or ts >= last[0]:
            run["gpu_last"][gpu_id] = [ts, price]
        if run["status"] == "unknown":
            run["status"] = "running"
        if run["started"] is None or ts < run["started"]:
            run["started"] = ts
        run["high"] = max(run["high"], ts)
        applied.counted += 1
        if on_row is not None:
            on_row(row)
    return applied


def burn_rate_usd_per_hour(run: dict[str, Any], policy: WindowPolicy) -> float:
    """What the run's GPUs cost per hour now: those heard from within the sample cap of its newest sample."""
    recent = run["high"] - policy.gpu_max_interval_s
    return sum(price for last_ts, price in run["gpu_last"].values() if last_ts >= recent)


def run_view(run: dict[str, Any], team: str, policy: WindowPolicy) -> dict[str, Any]:
    """A run as `/runs/{run_id}` shows it."""
    from streams.events import to_rfc3339

    return {
        "run_id": run["run_id"], "team": team, "status": run["status"],
        "estimated_cost_usd": run["estimated_cost_usd"], "ceiling_usd": run["ceiling_usd"],
        "expected_hours": run["expected_hours"], "gpus_planned": run["gpus"], "gpu_type": run["gpu_type"],
        "gpus_active": sum(1 for last_ts, _ in run["gpu_last"].values() if last_ts >= run["high"] - policy.gpu_max_interval_s),
        "gpu_hours": round(run["gpu_hours"], 6), "idle_gpu_hours": round(run["idle_gpu_hours"], 6),
        "cost_usd": round(run["cost_usd"], 6), "burn_rate_usd_per_hour": round(burn_rate_usd_per_hour(run, policy), 6),
        "started": to_rfc3339(run["started"]) if run["started"] else None,
        "ended": to_rfc3339(run["ended"]) if run["ended"] else None,
    }
