"""Event-time tumbling windows and running totals for one key, as plain JSON-ready data.

A key's account is a dict (so it goes straight into a Faust table through the orjson
codec and survives restarts through the changelog):

    {"first": 1700000000.0,            # event time the key was first seen
     "high": 1700000123.0,             # highest event time seen (the key's clock)
     "total": [requests, prompt_tokens, completion_tokens, cost_usd, unpriced],
     "windows": [[start, requests, prompt_tokens, completion_tokens, cost_usd, unpriced], ...]}

Windows are kept oldest first, at most `windows_kept` of them. An event later than
`late_grace_s` behind the key's clock still counts in the total but no longer opens or
changes a window: its window has already been judged.

>>> account = new_account()
>>> keep = dict(window_s=60, windows_kept=3, late_grace_s=60)
>>> add_usage([account], ts=125.0, prompt=10, completion=2, cost=0.5, unpriced=0, **keep)
True
>>> add_usage([account], ts=130.0, prompt=5, completion=1, cost=0.25, unpriced=0, **keep)
True
>>> account["total"], account["windows"]
([2, 15, 3, 0.75, 0], [[120, 2, 15, 3, 0.75, 0]])
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from functools import reduce
from operator import add
from typing import Any

from alerting.model import rfc3339

Account = dict[str, Any]

# Positions inside a window row and a total.
REQUESTS, PROMPT, COMPLETION, COST, UNPRICED = range(5)


def new_account() -> Account:
    return {"first": None, "high": 0.0, "total": [0, 0, 0, 0.0, 0], "windows": []}


def window_start(ts: float, window_s: int) -> int:
    return int(ts // window_s) * window_s


def add_usage(
    accounts: Sequence[Account],
    ts: float,
    prompt: int,
    completion: int,
    cost: float,
    unpriced: int,
    window_s: int,
    windows_kept: int,
    late_grace_s: int,
) -> bool:
    """Count one call in each account (an endpoint's and its team's): False when it was too late for the
    first one's window (its total still counts it)."""
    # Runs for every event: both accounts in one call, written flat, no helper calls on the usual path.
    start = int(ts // window_s) * window_s
    main_account, in_window = accounts[0], True
    for account in accounts:
        total = account["total"]
        total[0] += 1
        total[1] += prompt
        total[2] += completion
        total[3] += cost
        total[4] += unpriced
        first = account["first"]
        if first is None or ts < first:
            account["first"] = ts
        high = account["high"]
        if ts > high:
            account["high"] = high = ts
        windows = account["windows"]
        if ts < high - late_grace_s:
            row = None  # its window has been judged
        elif windows and windows[-1][0] == start:
            row = windows[-1]  # the usual case: the newest window
        else:
            row = _window_row(windows, start, windows_kept)
        if row is None:
            if account is main_account:
                in_window = False
            continue
        row[1] += 1
        row[2] += prompt
        row[3] += completion
        row[4] += cost
        row[5] += unpriced
    return in_window


def add_calls(
    account: Account,
    ts: Sequence[float],
    prompt: Sequence[int],
    completion: Sequence[int],
    cost: Sequence[float],
    unpriced: Sequence[int],
    window_s: int,
    windows_kept: int,
    late_grace_s: int,
) -> int:
    """Count calls, given as columns, into an account exactly as `add_usage` would one by one; returns how
    many were too late for their window.

    In event-time order (rows as the ledger applies them in a step) they are counted a window at a time:
    a slice per window, found by bisection, summed in C. Costs are added one by one in order, as a call
    at a time adds them (float sums depend on the order, and live must equal replay however the calls
    were split into steps); token counts are integers, exact in any order. Out of order, one by one.
    """
    count = len(ts)
    if not count:
        return 0
    if list(ts) != sorted(ts):
        return sum(not add_usage((account,), *call, window_s, windows_kept, late_grace_s)
                   for call in zip(ts, prompt, completion, cost, unpriced, strict=True))
    total = account["total"]
    total[0] += count
    total[1] += sum(prompt)
    total[2] += sum(completion)
    total[3] = reduce(add, cost, total[3])
    total[4] += sum(unpriced)
    first, high = account["first"], account["high"]
    if first is None or ts[0] < first:
        account["first"] = ts[0]
    if ts[-1] > high:
        account["high"] = ts[-1]
    # One by one, a call is late when it is `late_grace_s` behind the clock as it then stands; in time
    # order that is the clock before these calls, as a later call only moves it to itself.
    at = bisect_left(ts, high - late_grace_s)
    late = at
    windows = account["windows"]
    while at < count:
        start = window_start(ts[at], window_s)
        # The same start as each call's own (`window_start` is monotonic): the window's calls end where it changes.
        end = bisect_right(ts, start, at, count, key=lambda t: window_start(t, window_s))
        row = windows[-1] if windows and windows[-1][0] == start else _window_row(windows, start, windows_kept)
        if row is None:
            late += end - at
        else:
            row[1] += end - at
            row[2] += sum(prompt[at:end])
            row[3] += sum(completion[at:end])
            row[4] = reduce(add, cost[at:end], row[4])
            row[5] += sum(unpriced[at:end])
        at = end
    return late


def _window_row(windows: list[list[Any]], start: int, windows_kept: int) -> list[Any] | None:
    """The row for `start`, created in order; None when it is older than every kept window."""
    at = len(windows)
    while at and windows[at - 1][0] > start:  # from the newest back: a late event is a window or two back
        at -= 1
    if at and windows[at - 1][0] == start:
        return windows[at - 1]
    if len(windows) >= windows_kept and at == 0:
        return None
    row: list[Any] = [start, 0, 0, 0, 0.0, 0]
    windows.insert(at, row)
    if len(windows) > windows_kept:
        del windows[: len(windows) - windows_kept]
    return row


def figures(row: list[Any], window_s: int | None = None) -> dict[str, Any]:
    """A window row or a total as CONTRACT's W object (a total has no start or end)."""
    values = row if window_s is None else row[1:]
    out: dict[str, Any] = {}
    if window_s is not None:
        out["start"] = rfc3339(row[0])
        out["end"] = rfc3339(row[0] + window_s)
    out.update(
        requests=values[REQUESTS],
        prompt_tokens=values[PROMPT],
        completion_tokens=values[COMPLETION],
        cost_usd=round(values[COST], 12),
        unpriced_requests=values[UNPRICED],
    )
    return out


def total_figures(account: Account, window_s: int) -> dict[str, Any]:
    """The running total as a W object spanning first-seen to the end of the newest window."""
    out = figures(account["total"])
    first = account["first"] or 0.0
    out = {"start": rfc3339(window_start(first, window_s)),
           "end": rfc3339(window_start(account["high"], window_s) + window_s), **out}
    return out
