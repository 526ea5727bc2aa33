"""Issue 37 "History worth a chart": per-window cost for the last hours and per-hour cost for the last week,
kept in each account (streams/state/windows.py), filled as windows leave, shown by `spend_view`."""

from __future__ import annotations

import random
from collections import defaultdict

import orjson

from streams.state.ledger import TEAM_ACCOUNT, account_for, new_ledger, spend_view
from streams.state.windows import (
    HOUR_S,
    HOURS_KEPT,
    MINUTES_KEPT,
    add_calls,
    add_usage,
    compact,
    history,
    new_account,
)

KEEP = dict(window_s=60, windows_kept=15, late_grace_s=120)


def calls_in_order(rng: random.Random, count: int, start: float = 1_767_571_200.0) -> list[tuple]:
    """Calls in time order with quiet stretches (minutes to a day), so windows, minutes and hours all have gaps."""
    calls, clock = [], start
    for _ in range(count):
        clock += rng.choice([0.0, rng.uniform(0, 50), rng.uniform(60, 600), rng.uniform(3600, 30_000)])
        calls.append((clock, rng.randrange(5000), rng.randrange(900), rng.random() * 3, rng.randrange(2)))
    return calls


def recomputed(calls: list[tuple], window_s: int) -> tuple[dict[int, float], dict[int, float]]:
    """Cost per window, summed call by call in order, and per hour, summed window by window: from the calls alone."""
    per_window: dict[int, float] = defaultdict(float)
    for ts, _prompt, _completion, cost, _unpriced in calls:
        per_window[int(ts // window_s) * window_s] += cost
    per_hour: dict[int, float] = defaultdict(float)
    for start in sorted(per_window):
        per_hour[start // HOUR_S * HOUR_S] += per_window[start]
    return per_window, per_hour


def expected_series(values: dict[int, float], step_s: int, most: int) -> list[float]:
    last = max(values)
    first = max(min(values), last - (most - 1) * step_s)
    return [compact(values.get(start, 0.0)) for start in range(first, last + step_s, step_s)]


def test_the_history_equals_a_recomputation_from_the_calls():
    for seed in range(20):
        rng = random.Random(seed)
        calls = calls_in_order(rng, 3000)
        account = new_account()
        for call in calls:
            assert add_usage([account], *call, **KEEP)
        per_window, per_hour = recomputed(calls, 60)
        shown = history(account, 60)
        kept = len(account["windows"])
        # Per window: the stored minutes, then the kept windows, gaps as 0, as far back as the history reaches.
        first, last = shown["minutes"]["start"], max(per_window)
        assert last - (MINUTES_KEPT + kept - 1) * 60 <= first <= last, seed
        assert shown["minutes"]["cost_usd"] == [compact(per_window.get(start, 0.0))
                                                for start in range(first, last + 60, 60)], seed
        assert shown["hours"]["cost_usd"] == expected_series(per_hour, HOUR_S, HOURS_KEPT), seed
        assert len(shown["hours"]["cost_usd"]) <= HOURS_KEPT
        assert len(account["hours"]) <= HOURS_KEPT + 1 and len(account["minutes"]) <= MINUTES_KEPT + 1


def test_the_history_is_the_same_counted_one_by_one_or_as_columns_however_split():
    rng = random.Random(5)
    for case in range(40):
        calls = calls_in_order(rng, rng.randrange(50, 1500))
        if case % 2:  # late calls, some within grace (their window), some past it (the total only)
            calls = [(ts - rng.choice([0, 0, 0, 90, 400, 5000]), *rest) for ts, *rest in calls]
        pieces, at = [], 0
        while at < len(calls):  # steps as the ledger applies them: in time order, or out of order within
            end = at + rng.randrange(1, 200)
            pieces.append(sorted(calls[at:end]) if case % 3 else calls[at:end])
            at = end
        one_by_one, as_columns = new_account(), new_account()
        late = sum(not add_usage([one_by_one], *call, **KEEP) for piece in pieces for call in piece)
        late_columns = sum(add_calls(as_columns, *zip(*piece, strict=True), **KEEP) for piece in pieces)
        assert orjson.dumps(as_columns) == orjson.dumps(one_by_one), case
        assert late_columns == late, case
        assert "minutes" in as_columns and "hours" in as_columns


def test_a_call_later_than_the_history_reaches_changes_only_the_total():
    account = new_account()
    for minute in range(400):
        add_usage([account], 1_767_571_200.0 + minute * 60, 10, 1, 0.25, 0, **KEEP)
    before = orjson.loads(orjson.dumps(account))
    assert not add_usage([account], 1_767_571_200.0 + 30, 10, 1, 100.0, 0, **KEEP)  # 6 hours late
    assert add_calls(account, [1_767_571_200.0 + 90], [10], [1], [100.0], [0], **KEEP) == 1
    assert account["total"][3] == before["total"][3] + 200.0 and account["total"][0] == before["total"][0] + 2
    for name in ("windows", "minutes", "hours", "high", "first"):
        assert account[name] == before[name], name


def test_a_full_history_is_within_its_budget_per_key():
    """A week of hours and every minute, costs of every magnitude: at most 8 bytes a value, 2.4 KB in all."""
    rng = random.Random(1)
    account = new_account()
    start = 1_767_571_200.0
    for hour in range(HOURS_KEPT + 2):
        add_usage([account], start + hour * HOUR_S, 1, 1, 10 ** rng.uniform(-3, 3), 0, **KEEP)
    for minute in range(MINUTES_KEPT + 20):
        add_usage([account], start + (HOURS_KEPT + 2) * HOUR_S + minute * 60, 1, 1, 10 ** rng.uniform(-4, 1), 0,
                  **KEEP)
    assert len(account["minutes"]) == MINUTES_KEPT + 1 and len(account["hours"]) == HOURS_KEPT + 1
    size = len(orjson.dumps({"minutes": account["minutes"], "hours": account["hours"]}))
    assert size <= 8 * (MINUTES_KEPT + HOURS_KEPT) + 64, size


def test_the_history_travels_in_the_ledger_record_and_the_spend_view_shows_it_on_request():
    ledger = new_ledger()
    for minute in range(200):
        accounts = [account_for(ledger, "chat"), account_for(ledger, TEAM_ACCOUNT)]
        add_usage(accounts, 1_767_571_200.0 + minute * 60, 10, 1, 0.5, 0, **KEEP)
    restored = orjson.loads(orjson.dumps(ledger))  # as the changelog brings it back
    assert restored["accounts"]["chat"]["minutes"] == ledger["accounts"]["chat"]["minutes"]
    plain = spend_view(restored, "t", "chat", 60)
    assert plain is not None and "history" not in plain
    view = spend_view(restored, "t", "chat", 60, with_history=True)
    assert view is not None and {k: v for k, v in view.items() if k != "history"} == plain
    past = view["history"]
    assert past["category"] == "api_tokens"
    assert past["minutes"]["step_s"] == 60 and past["minutes"]["cost_usd"] == [0.5] * (MINUTES_KEPT + 15)
    assert past["hours"]["start"] == "2026-01-05T00:00:00Z" and past["hours"]["cost_usd"] == [30, 30, 30, 10]
    team = spend_view(restored, "t", None, 60, with_history=True)
    assert team is not None and team["history"]["hours"] == past["hours"]
