"""Two versions of spendwatch side by side in one run: `python -m evaluation.compare REV [--rounds 3]`.

A claim that a change costs nothing needs both versions measured on the same machine in the
same minutes (this machine's speed moves up to 2x within a minute, docs/benchmarks.md). REV
is checked out in a temporary git worktree; then, per round, one fresh broker holds the same
events and each version's worker counts them (100 events a message, then 1), and each version
replays them. The versions take turns going first. Printed: medians, and the median of each
round's own ratio (this tree against REV).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
from pathlib import Path

import orjson

from evaluation.bench import (
    BATCHED_EVENTS,
    ROOT,
    SINGLE_EVENTS,
    events,
    publish,
    replay_rate_alone,
    spendwatch_rate,
)
from streams.tools.broker import EmbeddedBroker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="the version to compare with, e.g. a commit before a change")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    batched_events = events(BATCHED_EVENTS, seed=1)
    batched = [orjson.dumps(batched_events[i:i + 100]) for i in range(0, BATCHED_EVENTS, 100)]
    single = [orjson.dumps(e) for e in events(SINGLE_EVENTS, seed=2)]
    with tempfile.TemporaryDirectory(prefix="spendwatch-compare-") as scratch:
        replay_input = Path(scratch) / "replay-input.jsonl"
        replay_input.write_bytes(b"\n".join(batched))
        before = Path(scratch) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.rev], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            trees = {args.rev: before, "this tree": ROOT}
            figures: dict[tuple[str, str], list[float]] = {}
            for round_number in range(1, args.rounds + 1):
                order = list(trees.items()) if round_number % 2 else list(reversed(trees.items()))
                with EmbeddedBroker() as broker:
                    broker.create_topics(["compare.batched", "compare.single"], partitions=4)
                    asyncio.run(publish(broker.bootstrap, "compare.batched", batched))
                    asyncio.run(publish(broker.bootstrap, "compare.single", single))
                    for name, tree in order:
                        late: list[float] = []
                        measured = {
                            "worker, events/s (100 per message)":
                                spendwatch_rate(broker, "compare.batched", BATCHED_EVENTS, late, tree),
                            "worker, events/s (1 per message)":
                                spendwatch_rate(broker, "compare.single", SINGLE_EVENTS, late, tree),
                            "replay, events/s": replay_rate_alone(replay_input, 1, tree),
                        }
                        for what, value in measured.items():
                            figures.setdefault((what, name), []).append(value)
                        print(f"round {round_number}, {name}: "
                              + ", ".join(f"{what} {value:,.0f}" for what, value in measured.items()), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=False)
    print(f"\n| what | {args.rev} | this tree | this tree / {args.rev}, median of the rounds' ratios |")
    print("| --- | --- | --- | --- |")
    for what in dict.fromkeys(what for what, _ in figures):
        old, new = figures[(what, args.rev)], figures[(what, "this tree")]
        ratios = [n / o for n, o in zip(new, old, strict=True)]
        print(f"| {what} | {statistics.median(old):,.0f} | {statistics.median(new):,.0f} | "
              f"{statistics.median(ratios):.2f} (rounds: {min(ratios):.2f} to {max(ratios):.2f}) |")


if __name__ == "__main__":
    main()
