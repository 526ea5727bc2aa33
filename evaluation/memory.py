"""Memory per key: build N (team, endpoint) keys' state through the worker's own code and report it.

The ledgers are kept packed, as the worker's `ledgers` table keeps them.

Run as `python -m evaluation.memory N`; prints JSON: RSS, RSS per key over the process
before the keys existed, the JSON size of a key's state (its windows, history and detector),
and of its history alone (`history_bytes_per_key`, the team account's share included).

Each key is in steady state: a call an hour for a week and more (every hour of the history
full), then a call a minute for the minute history and every kept window.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import orjson

from streams.input.kinds import USAGE
from streams.settings import Settings
from streams.state.dedup import EventIdIndex
from streams.state.judging import RuleBook, apply_and_judge
from streams.state.ledger import TEAM_ACCOUNT, WindowPolicy, apply_in_order, new_ledger
from streams.state.store import packed
from streams.state.windows import HOUR_S, HOURS_KEPT, MINUTES_KEPT

ENDPOINTS_PER_TEAM = 10


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    keys = int(sys.argv[1])
    settings = Settings(_env_file=None)
    policy = WindowPolicy.from_settings(settings)
    rules, ids = RuleBook(settings), EventIdIndex(settings.dedup_horizon_seconds)
    gc.collect()
    before = rss_bytes()
    ledgers = {}
    windows = MINUTES_KEPT + settings.windows_kept + 5  # every window slot and minute of the history in use
    hours = HOURS_KEPT + 2  # then every hour of the history
    teams = keys // ENDPOINTS_PER_TEAM
    start = 1_767_571_200.0
    calls = [(start + hour * HOUR_S, 0.006 * HOUR_S / settings.window_seconds) for hour in range(hours)]
    minutes_from = start + hours * HOUR_S
    calls += [(minutes_from + window * settings.window_seconds, 0.006) for window in range(windows)]
    for team_index in range(teams):
        team = f"team-{team_index}"
        ledger = new_ledger()
        rows = []
        for ts, cost in calls:  # an hour's call costs what a minute's calls cost in an hour
            for endpoint in range(ENDPOINTS_PER_TEAM):
                rows.append([len(rows), f"endpoint-{endpoint}", ts + endpoint, 1200, 300, cost, 0, 0,
                             "gpt-4o-mini", "", "", "", ""])
        # The week into the accounts alone (judging it would walk every empty minute between the hourly calls),
        # then the last hours judged too, so the detectors hold what they hold after steady minutes.
        week = hours * ENDPOINTS_PER_TEAM
        apply_in_order(ledger, team, [(USAGE, row) for row in rows[:week]], policy, ids)
        apply_and_judge(ledger, team, [(USAGE, row) for row in rows[week:]], rules, policy, ids)
        ledgers[team] = packed(ledger)  # as the worker's ledgers table keeps it
    gc.collect()
    after = rss_bytes()
    state = len(ledgers["team-0"]) / ENDPOINTS_PER_TEAM  # windows, the team account's share, detectors
    accounts = orjson.loads(ledgers["team-0"])["accounts"]
    past = sum(len(orjson.dumps({name: account[name] for name in ("minutes", "hours") if name in account}))
               for account in accounts.values()) / ENDPOINTS_PER_TEAM  # the team account's share included
    full = all(len(accounts[TEAM_ACCOUNT].get(name, ())) == kept + 1
               for name, kept in (("minutes", MINUTES_KEPT), ("hours", HOURS_KEPT)))
    print(orjson.dumps({"keys": keys, "rss_mb": after / 2**20, "rss_bytes_per_key": (after - before) / keys,
                        "state_bytes_per_key": state, "history_bytes_per_key": past,
                        "history_full": full}).decode())


if __name__ == "__main__":
    main()
