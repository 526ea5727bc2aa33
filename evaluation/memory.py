"""Memory per key: build N (team, endpoint) keys' state through the worker's own code and report it.

The ledgers are kept packed, as the worker's `ledgers` table keeps them.

Run as `python -m evaluation.memory N`; prints JSON: RSS, RSS per key over the process
before the keys existed, and the JSON size of a key's state (its windows and detector).
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
from streams.state.ledger import WindowPolicy, new_ledger

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
    windows = settings.windows_kept + 5  # a key in steady state: every window slot in use
    teams = keys // ENDPOINTS_PER_TEAM
    start = 1_767_571_200.0
    for team_index in range(teams):
        team = f"team-{team_index}"
        ledger = new_ledger()
        rows = []
        for window in range(windows):
            for endpoint in range(ENDPOINTS_PER_TEAM):
                ts = start + window * settings.window_seconds + endpoint
                rows.append([len(rows), f"endpoint-{endpoint}", ts, 1200, 300, 0.006, 0, 0,
                             "gpt-4o-mini", "", "", "", ""])
        apply_and_judge(ledger, team, [(USAGE, row) for row in rows], rules, policy, ids)
        ledgers[team] = orjson.dumps(ledger)  # as the worker's ledgers table keeps it
    gc.collect()
    after = rss_bytes()
    state = len(ledgers["team-0"]) / ENDPOINTS_PER_TEAM  # windows, the team account's share, detectors
    print(orjson.dumps({"keys": keys, "rss_mb": after / 2**20, "rss_bytes_per_key": (after - before) / keys,
                        "state_bytes_per_key": state}).decode())


if __name__ == "__main__":
    main()
