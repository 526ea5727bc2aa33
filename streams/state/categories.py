"""Spend by category (CONTRACT, third round): every counted dollar is `api_tokens`, `inference_serving` or
`training`, and a key's windows and total are the sum of its categories.

Calls are counted in the usage accounts (streams/state/windows.py). GPU dollars are counted in *cost
accounts*: a serving endpoint's (`ledger["serving"][endpoint]`) and the team's training
(`ledger["training"]`), each with a running total and its own recent windows:

    {"first": ts, "high": ts, "cost_usd": float, "gpu_hours": float, "windows": [[start, usd, gpu_hours], ...]}

A view merges them window by window. Each figure is rounded once, and `cost_usd` is the sum of the
rounded categories in `CATEGORIES` order, so the categories a reader adds up give exactly the total.

>>> cost = new_cost_account()
>>> cost["cost_usd"] += 2.0
>>> add_cost(cost, 125.0, 2.0, 0.5, window_s=60, windows_kept=3, late_grace_s=60)
>>> parts = SpendParts(None, {INFERENCE_SERVING: [cost], TRAINING: []})
>>> total = category_total(parts, 60)
>>> total["cost_usd"], total["categories"], total["requests"]
(2.0, {'api_tokens': 0.0, 'inference_serving': 2.0, 'training': 0.0}, 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerting.model import rfc3339
from streams.state.windows import COST, Account, _window_row, figures, window_start

API_TOKENS, INFERENCE_SERVING, TRAINING = "api_tokens", "inference_serving", "training"
CATEGORIES = (API_TOKENS, INFERENCE_SERVING, TRAINING)
DIGITS = 12  # as windows.figures rounds a window's cost


def new_cost_account() -> dict[str, Any]:
    return {"first": None, "high": 0.0, "cost_usd": 0.0, "gpu_hours": 0.0, "windows": []}


def add_cost(account: dict[str, Any], ts: float, usd: float, gpu_hours: float, window_s: int, windows_kept: int,
             late_grace_s: int) -> None:
    """Count GPU dollars into a cost account's windows (its running total is the caller's); a sample later
    than `late_grace_s` behind the account's clock counts in the total only, as a late call does."""
    if account["first"] is None or ts < account["first"]:
        account["first"] = ts
    high = account["high"]
    if ts > high:
        account["high"] = high = ts
    if ts < high - late_grace_s:
        return
    windows = account["windows"]
    start = window_start(ts, window_s)
    row = windows[-1] if windows and windows[-1][0] == start else _window_row(windows, start, windows_kept)
    if row is None:
        return
    if len(row) == 6:  # _window_row makes a usage row: a cost row holds [start, usd, gpu_hours]
        row[:] = [start, 0.0, 0.0]
    row[1] += usd
    row[2] += gpu_hours


@dataclass(frozen=True)
class SpendParts:
    """What a key's spend is made of: the calls' account (None: no calls) and each GPU category's cost accounts."""

    calls: Account | None
    gpus: dict[str, list[dict[str, Any]]]  # INFERENCE_SERVING / TRAINING -> cost accounts


def _summed(categories: dict[str, float]) -> float:
    return sum(categories[name] for name in CATEGORIES)


def category_windows(parts: SpendParts, window_s: int) -> list[dict[str, Any]]:
    """The recent windows, newest last: calls' figures, each category's dollars, and their sum."""
    rows: dict[int, dict[str, Any]] = {}
    kept = 0
    if parts.calls is not None:
        kept = len(parts.calls["windows"])
        for row in parts.calls["windows"]:
            rows[row[0]] = {"calls": row, API_TOKENS: row[1 + COST]}
    for category, accounts in parts.gpus.items():
        for account in accounts:
            kept = max(kept, len(account["windows"]))
            for start, usd, hours in account["windows"]:
                entry = rows.setdefault(start, {})
                entry[category] = entry.get(category, 0.0) + usd
                entry["gpu_hours"] = entry.get("gpu_hours", 0.0) + hours
    out = []
    for start in sorted(rows)[-kept:] if kept else []:
        entry = rows[start]
        calls = entry.get("calls") or [start, 0, 0, 0, 0.0, 0]
        w = figures(calls, window_s)
        categories = {name: round(entry.get(name, 0.0), DIGITS) for name in CATEGORIES}
        w["cost_usd"], w["categories"] = _summed(categories), categories
        if "gpu_hours" in entry:
            w["gpu_hours"] = round(entry["gpu_hours"], DIGITS)
        out.append(w)
    return out


def category_costs(parts: SpendParts) -> dict[str, float]:
    """Each category's dollars since first seen, rounded as shown; `total_cost` is their sum."""
    calls = parts.calls
    categories = {API_TOKENS: round(calls["total"][COST], DIGITS) if calls is not None else 0.0}
    for category in (INFERENCE_SERVING, TRAINING):
        accounts = parts.gpus.get(category)
        categories[category] = round(sum(a["cost_usd"] for a in accounts), DIGITS) if accounts else 0.0
    return categories


def total_cost(parts: SpendParts) -> float:
    """The key's dollars since first seen, as its total W shows them (the `/spend` listing sorts by it)."""
    return _summed(category_costs(parts))


def category_total(parts: SpendParts, window_s: int) -> dict[str, Any]:
    """The running total as a W object from first seen to the end of the newest window, with its categories."""
    calls = parts.calls
    w = figures(calls["total"] if calls is not None else [0, 0, 0, 0.0, 0])
    categories = category_costs(parts)
    firsts = [calls["first"]] if calls is not None and calls["first"] is not None else []
    highs = [calls["high"]] if calls is not None else []
    gpu_hours = 0.0
    for category in (INFERENCE_SERVING, TRAINING):
        for account in parts.gpus.get(category, []):
            gpu_hours += account["gpu_hours"]
            if account["first"] is not None:
                firsts.append(account["first"])
            highs.append(account["high"])
    w["cost_usd"], w["categories"] = _summed(categories), categories
    if any(parts.gpus.values()):
        w["gpu_hours"] = round(gpu_hours, DIGITS)
    first, high = min(firsts, default=0.0), max(highs, default=0.0)
    return {"start": rfc3339(window_start(first, window_s)), "end": rfc3339(window_start(high, window_s) + window_s),
            **w}
