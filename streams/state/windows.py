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

History worth a chart (issue 37): a window's cost, as it leaves the kept windows, moves into two
coarser series held in the same account (so they travel in the ledger's changelog record):

    "minutes": [start, cost, cost, ...]   # one value per window, the last `MINUTES_KEPT` windows
    "hours":   [start, cost, cost, ...]   # one value per hour, the last `HOURS_KEPT` hours

A start and a flat list, each closed value rounded to `DIGITS` significant digits (an int when
whole: an idle window is `0`), so a full history is about 1.3 KB of JSON. The newest hour stays
exact until the next one opens (rounding a running sum would lose the small windows after a big
one). Both are made only from windows that leave, so `add_usage` and `add_calls` fill them alike,
and a call too late for its window (total only) is too late for the history too. `history` joins
them with the windows still kept, for a view.

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

#: Windows kept in the history past the kept windows (with 15 kept one-minute windows: the last hour).
MINUTES_KEPT = 45
#: Hours kept in the history (a week).
HOURS_KEPT = 168
HOUR_S = 3600
#: Significant digits of a closed history value: 0.5% at worst, finer than a chart draws.
DIGITS = 3


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
            row = _window_row(windows, start, windows_kept, account, window_s)
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
        row = windows[-1] if windows and windows[-1][0] == start else \
            _window_row(windows, start, windows_kept, account, window_s)
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


def _window_row(windows: list[list[Any]], start: int, windows_kept: int, account: Account | None = None,
                window_s: int = 60) -> list[Any] | None:
    """The row for `start`, created in order; None when it is older than every kept window. Rows that leave
    go to `account`'s history (a usage account's; a GPU cost account keeps none)."""
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
        gone = len(windows) - windows_kept
        if account is not None:
            for old in windows[:gone]:  # oldest first: they leave in time order, once full never older
                retire(account, old[0], old[1 + COST], window_s)
        del windows[:gone]
    return row


def compact(value: float) -> float:
    """`value` to `DIGITS` significant digits, as an int when whole (`0`, not `0.0`: two bytes fewer).

    >>> compact(0.0061234), compact(123.456), compact(0.0), compact(12345.6)
    (0.00612, 123, 0, 12300)
    """
    rounded = float(f"{value:.{DIGITS}g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded


def retire(account: Account, start: int, cost: float, window_s: int) -> None:
    """Move a leaving window's cost into the account's history: its own minute value, and its hour's sum.

    >>> account = new_account()
    >>> for start, cost in ((3300, 0.5), (3360, 0.25), (3480, 1.0), (3600, 2.0)):
    ...     retire(account, start, cost, 60)
    >>> account["minutes"], account["hours"]
    ([3300, 0.5, 0.25, 0, 1, 0, 2], [0, 1.75, 2.0])
    """
    minutes = account.get("minutes")
    at = 0 if minutes is None else (start - minutes[0]) // window_s + 1  # its index in the list, start first
    if minutes is None or at >= len(minutes) + MINUTES_KEPT:  # the first, or after a gap longer than the list
        account["minutes"] = [start, compact(cost)]
    elif at >= len(minutes):
        minutes.extend([0] * (at - len(minutes)))
        minutes.append(compact(cost))
        if len(minutes) > MINUTES_KEPT + 1:
            drop = len(minutes) - MINUTES_KEPT - 1
            del minutes[1:1 + drop]
            minutes[0] += drop * window_s
    elif at >= 1:  # not expected (windows leave in order), but a changed window size must not break a key
        minutes[at] = compact(minutes[at] + cost)
    hour = int(start // HOUR_S) * HOUR_S
    hours = account.get("hours")
    at = 0 if hours is None else (hour - hours[0]) // HOUR_S + 1
    if hours is None or at >= len(hours) + HOURS_KEPT:
        account["hours"] = [hour, cost]
    elif at == len(hours) - 1:
        hours[-1] += cost  # the open hour: exact until the next one opens
    elif at >= len(hours):
        hours[-1] = compact(hours[-1])
        hours.extend([0] * (at - len(hours)))
        hours.append(cost)
        if len(hours) > HOURS_KEPT + 1:
            drop = len(hours) - HOURS_KEPT - 1
            del hours[1:1 + drop]
            hours[0] += drop * HOUR_S
    elif at >= 1:
        hours[at] = compact(hours[at] + cost)


def history(account: Account | None, window_s: int) -> dict[str, Any]:
    """A key's cost history for a view: per window for the last hours (the history's windows, then the kept
    ones) and per hour for the last week (the kept windows added to their hours), each value to `DIGITS`
    digits, a window or hour nobody spent in as 0. Starts are Unix seconds (None: nothing yet).

    >>> account = new_account()
    >>> for ts in (0, 60, 1200, 1260, 3600):
    ...     _ = add_usage([account], ts, 1, 1, 0.5, 0, window_s=60, windows_kept=2, late_grace_s=60)
    >>> history(account, 60)["minutes"]["cost_usd"][-3:], history(account, 60)["hours"]
    ([0, 0, 0.5], {'start': 0, 'step_s': 3600, 'cost_usd': [2, 0.5]})
    """
    account = account or new_account()
    by_minute: dict[int, float] = {}
    stored = account.get("minutes")
    if stored:
        by_minute = {stored[0] + i * window_s: value for i, value in enumerate(stored[1:])}
    windows = account["windows"]
    for row in windows:
        by_minute[row[0]] = by_minute.get(row[0], 0) + row[1 + COST]
    by_hour: dict[int, float] = {}
    stored = account.get("hours")
    if stored:
        by_hour = {stored[0] + i * HOUR_S: value for i, value in enumerate(stored[1:])}
    for row in windows:
        hour = int(row[0] // HOUR_S) * HOUR_S
        by_hour[hour] = by_hour.get(hour, 0) + row[1 + COST]
    return {"minutes": _series(by_minute, window_s, MINUTES_KEPT + len(windows)),
            "hours": _series(by_hour, HOUR_S, HOURS_KEPT)}


def _series(values: dict[int, float], step_s: int, most: int) -> dict[str, Any]:
    """The last `most` steps up to the newest value, dense, gaps as 0."""
    if not values:
        return {"start": None, "step_s": step_s, "cost_usd": []}
    last = max(values)
    first = max(min(values), last - (most - 1) * step_s)
    return {"start": first, "step_s": step_s,
            "cost_usd": [compact(values.get(start, 0)) for start in range(first, last + step_s, step_s)]}


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
