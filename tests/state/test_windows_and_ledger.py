"""Windows, the team ledger's idempotence under replay, de-duplication and GPU accrual."""

from __future__ import annotations

import random

import orjson
import pytest

from streams.input.kinds import GPU, RUNS, USAGE
from streams.input.rows import id_hash
from streams.state.dedup import EventIdIndex
from streams.state.ledger import TEAM_ACCOUNT, WindowPolicy, apply_in_order, new_ledger, run_view, take_fresh
from streams.state.windows import add_calls, add_usage, new_account

POLICY = WindowPolicy(window_s=60, windows_kept=3, late_grace_s=120, gpu_max_interval_s=300)


def add(account, ts, cost=1.0):
    return add_usage([account], ts=ts, prompt=10, completion=1, cost=cost, unpriced=0,
                     window_s=60, windows_kept=3, late_grace_s=120)


def test_windows_are_kept_in_order_and_bounded():
    account = new_account()
    for ts in (0, 61, 130, 190, 250):
        assert add(account, ts)
    assert [row[0] for row in account["windows"]] == [120, 180, 240]
    assert account["total"][0] == 5


def test_late_event_lands_in_its_own_window_within_grace_and_in_the_total_after():
    account = new_account()
    add(account, 300)
    assert add(account, 200)  # 100 s late: within grace, its own window
    assert [row[0] for row in account["windows"]] == [180, 300]
    assert not add(account, 100)  # 200 s late: total only
    assert account["total"][0] == 3 and sum(row[1] for row in account["windows"]) == 2


def test_calls_counted_as_columns_equal_calls_counted_one_by_one_however_they_are_split():
    """Bit for bit: the same floats added in the same order, the same windows made and dropped, the same late calls."""
    rng = random.Random(11)
    keep = dict(window_s=60, windows_kept=3, late_grace_s=120)
    for case in range(200):
        on_edges = case % 4 > 1
        clock = float(rng.randrange(0, 600, 60)) if on_edges else rng.uniform(0, 600)
        calls = []
        for _ in range(rng.randrange(1, 60)):
            step = rng.choice([0.0, rng.uniform(0, 40), -rng.uniform(0, 300)])  # repeats, steps, late ones
            # Or whole steps that land calls right on a window's edge and right on the grace limit.
            clock += rng.choice([0, 7, 60, -60, -120, -180]) if on_edges else step
            calls.append((clock, rng.randrange(5000), rng.randrange(900), rng.random() * 3, rng.randrange(2)))
        pieces, at = [], 0
        while at < len(calls):  # steps of random length; each in time order as the ledger applies a step,
            end = at + rng.randrange(1, 20)  # a later one going back in time (rows behind the watermark)
            pieces.append(sorted(calls[at:end]) if case % 2 else calls[at:end])  # or out of order within
            at = end
        one_by_one, as_columns = new_account(), new_account()
        late_one_by_one = sum(not add_usage([one_by_one], *call, **keep) for piece in pieces for call in piece)
        late_as_columns = sum(add_calls(as_columns, *zip(*piece, strict=True), **keep) for piece in pieces)
        assert orjson.dumps(as_columns) == orjson.dumps(one_by_one), case
        assert late_as_columns == late_one_by_one, case


def usage_row(offset, endpoint="chat", ts=100.0, cost=0.5, event_id=None):
    return [offset, endpoint, ts, 10, 2, cost, 0, id_hash(event_id) if event_id else 0, "gpt-4o", "", "", "", ""]


def apply_usage(ledger, ids, rows):
    return apply_in_order(ledger, "t", [(USAGE, row) for row in rows], POLICY, ids)


def apply_gpu(ledger, rows):
    return apply_in_order(ledger, "t", [(GPU, row) for row in rows], POLICY, EventIdIndex(3600))


def apply_runs(ledger, rows):
    return apply_in_order(ledger, "t", [(RUNS, row) for row in rows], POLICY, EventIdIndex(3600))


def test_a_redelivered_delta_is_skipped_row_by_row():
    ledger = new_ledger()
    fresh, skipped = take_fresh(ledger, "usage:0", [usage_row(1), usage_row(2)])
    assert (len(fresh), skipped) == (2, 0)
    fresh, skipped = take_fresh(ledger, "usage:0", [usage_row(2), usage_row(3)])
    assert ([row[0] for row in fresh], skipped) == ([3], 1)
    fresh, _ = take_fresh(ledger, "usage:1", [usage_row(1)])  # another source partition has positions of its own
    assert len(fresh) == 1 and ledger["received"] == {"usage:0": 3, "usage:1": 1}


def test_rows_count_into_the_endpoint_and_the_team_and_out_of_order_ones_are_counted():
    ledger, ids = new_ledger(), EventIdIndex(3600)
    applied = apply_usage(ledger, ids, [usage_row(1, ts=100.0), usage_row(2, ts=160.0), usage_row(3, ts=150.0)])
    assert (applied.counted[USAGE], applied.out_of_order) == (3, 1)
    assert ledger["accounts"][TEAM_ACCOUNT]["total"][0] == 3 and ledger["accounts"]["chat"]["total"][0] == 3
    assert ledger["newest"] == 160.0


def test_repeated_event_ids_count_once_and_the_ledger_is_plain_json():
    ledger, ids = new_ledger(), EventIdIndex(3600)
    applied = apply_usage(ledger, ids, [usage_row(1, event_id="a"), usage_row(2, event_id="a")])
    assert (applied.counted[USAGE], applied.duplicates, len(applied.new_ids)) == (1, 1, 1)
    applied = apply_usage(ledger, ids, [usage_row(9, event_id="a")])
    assert applied.duplicates == 1
    assert orjson.loads(orjson.dumps(ledger)) == ledger


def test_event_id_index_forgets_past_the_horizon_and_caps_memory():
    ids = EventIdIndex(horizon_s=100, max_ids_per_team=3)
    for n, ts in enumerate((0.0, 50.0, 150.0)):
        ids.remember("t", n + 1, ts)
    ids.prune("t", newest_ts=140.0)  # cutoff 40: only the id at 0 goes
    assert (ids.seen("t", 1), ids.seen("t", 2), ids.seen("t", 3)) == (False, True, True)
    for n in range(10, 20):
        ids.remember("t", n, 200.0)
    assert len(ids) == 3


def test_an_id_repeated_past_the_horizon_counts_again_in_replay_and_live_alike():
    ledger, ids = new_ledger(), EventIdIndex(horizon_s=3600)
    applied = apply_usage(ledger, ids, [usage_row(1, ts=0.0, event_id="a"), usage_row(2, ts=7200.0),
                                        usage_row(3, ts=7300.0, event_id="a")])
    assert (applied.counted[USAGE], applied.duplicates) == (3, 0)


def test_the_id_index_forgets_exactly_the_ids_behind_the_horizon_step_after_step():
    # Thousands of steps of a sliding horizon, the case that was quadratic when the oldest ids
    # were found from the front of the dict: what is kept is exactly the ids inside the horizon.
    ids, horizon = EventIdIndex(horizon_s=50.0), 50.0
    for step in range(2_000):
        for n in range(step * 5, step * 5 + 5):
            ids.remember("t", n + 1, n * 0.1)
        newest = (step * 5 + 4) * 0.1
        ids.prune("t", newest)
        team = ids.of_team("t")
        assert team.order[team.head:] == list(team.times)
        assert list(team.times) == [n + 1 for n in range(step * 5 + 5) if n * 0.1 >= newest - horizon]
    assert len(ids) == 501


def test_an_id_remembered_again_keeps_its_place_and_takes_its_new_time():
    ids = EventIdIndex(horizon_s=100, max_ids_per_team=3)
    ids.remember("t", 1, 0.0)
    ids.remember("t", 2, 10.0)
    ids.remember("t", 1, 150.0)  # a repeat past the horizon: its new time, its old place
    ids.prune("t", newest_ts=150.0)  # cutoff 50: id 1 is now at 150 and blocks the front; kept longer is harmless
    assert ids.seen("t", 1) and ids.seen("t", 2)
    for n in (3, 4):
        ids.remember("t", n, 160.0)
    assert [ids.seen("t", n) for n in (1, 2, 3, 4)] == [False, True, True, True]  # the cap drops the oldest place


def test_gpu_samples_accrue_hours_and_cost_per_run():
    ledger = new_ledger()
    apply_runs(ledger, [[0, "r1", "started", 0.0, 100.0, 500.0, 2, "H100", 10.0]])
    rows = [[i, "r1", gpu, 60.0 * i, "H100", 4.0, None, 95.0, ""] for i, gpu in enumerate(["0", "1"] * 3)]
    # Samples at 0,60,120,180,240,300 alternating GPUs: each GPU pays for the gap since its last sample.
    apply_gpu(ledger, rows)
    run = ledger["runs"]["r1"]
    assert run["gpu_hours"] == pytest.approx(4 * 120 / 3600)
    assert run["cost_usd"] == pytest.approx(4 * 120 / 3600 * 4.0)
    view = run_view(run, "t", POLICY)
    assert view["gpus_active"] == 2 and view["burn_rate_usd_per_hour"] == 8.0
    assert view["estimated_cost_usd"] == 100.0 and view["status"] == "running"
    apply_runs(ledger, [[1, "r1", "finished", 400.0, None, None, None, None, None]])
    assert ledger["runs"]["r1"]["status"] == "finished"


def test_interval_s_overrides_the_gap_and_gaps_are_capped():
    ledger = new_ledger()
    apply_gpu(ledger, [[0, "r", "0", 0.0, None, 3.6, None, None, ""],
                       [1, "r", "0", 10_000.0, None, 3.6, None, None, ""],
                       [2, "r", "0", 10_010.0, None, 3.6, 30.0, 1.0, ""]])
    run = ledger["runs"]["r"]
    assert run["gpu_hours"] == pytest.approx((300 + 30) / 3600)
    assert run["idle_gpu_hours"] == pytest.approx(30 / 3600)


def test_a_ledger_reads_the_same_whether_its_rows_come_in_one_step_or_many():
    """Accounts, their order in the record and every figure: what replay writes in one go, the worker in steps."""
    rng = random.Random(3)
    rows = sorted((usage_row(i, endpoint=rng.choice(["chat", "embed", "batch"]), ts=100.0 + rng.uniform(0, 900),
                             cost=rng.random(), event_id=f"e{rng.randrange(400)}") for i in range(300)),
                  key=lambda row: row[2])
    whole, in_steps = new_ledger(), new_ledger()
    apply_usage(whole, EventIdIndex(3600), rows)
    ids, at = EventIdIndex(3600), 0
    while at < len(rows):
        end = at + (rng.randrange(1, 40) if at else 1)  # the first step with one endpoint, the next with more
        apply_usage(in_steps, ids, rows[at:end])
        at = end
    assert list(in_steps["accounts"]) == list(whole["accounts"])
    assert orjson.dumps(in_steps) == orjson.dumps(whole)
