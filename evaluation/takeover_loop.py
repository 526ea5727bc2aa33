"""The takeover test, again and again, beside a CPU hog: `make takeover-loop` (not part of `make test`).

A takeover that loses input does so only now and then, when a rebalance lands between a
fetch and its delivery; one green run proves little. This runs the test N times in a row
(default 20) while another process keeps a core busy, and exits non-zero on the first
failure, keeping that run's worker logs under var/takeover-loop/.

Run: `python -m evaluation.takeover_loop [--runs 20] [--no-hog] [--test NODEID ...]`
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

TESTS = [
    "tests/e2e/test_e2e_scaleout.py::test_one_of_two_killed_mid_stream_the_other_takes_over",
    "tests/e2e/test_e2e_exact.py::test_two_workers_one_killed_mid_catch_up_and_restarted_end_as_replay",
]


def hog(stop_at: float) -> None:
    """Keep one core busy until `stop_at` (the machine a takeover has to survive is a loaded one)."""
    n = 0
    while time.time() < stop_at:
        n = (n * 31 + 7) % 1_000_003


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-hog", action="store_true", help="run without the CPU hog")
    parser.add_argument("--test", action="append", help="pytest node ids (default: the two takeover tests)")
    args = parser.parse_args()
    tests = args.test or TESTS
    logs = Path("var/takeover-loop")
    logs.mkdir(parents=True, exist_ok=True)
    hogger = None
    if not args.no_hog:
        hogger = multiprocessing.Process(target=hog, args=(time.time() + 24 * 3600,), daemon=True)
        hogger.start()
    passed = 0
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            basetemp = logs / f"run-{run}"
            result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                     f"--basetemp={basetemp}", *tests], capture_output=True, text=True)
            seconds = time.monotonic() - started
            tail = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
            print(f"run {run}/{args.runs}: {'PASSED' if result.returncode == 0 else 'FAILED'} in {seconds:.0f}s  "
                  f"{tail}", flush=True)
            if result.returncode != 0:
                print(result.stdout[-6000:], result.stderr[-2000:], sep="\n")
                (basetemp / "pytest-output.txt").write_text(result.stdout + result.stderr)
                print(f"worker logs and the whole pytest output kept under {basetemp}")
                break
            passed += 1
            subprocess.run(["rm", "-rf", str(basetemp)])
    finally:
        if hogger is not None:
            hogger.terminate()
    print(f"{passed} of {args.runs} runs passed{' beside a CPU hog' if hogger else ''}")
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
