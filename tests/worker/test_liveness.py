"""Crash-only agents and the health check's view of a stuck one."""

from __future__ import annotations

import subprocess
import sys

from streams.worker.liveness import CRASH_EXIT_CODE, Liveness


def test_a_step_that_runs_too_long_or_input_left_waiting_makes_the_worker_unhealthy():
    now = [0.0]
    liveness = Liveness(stuck_after_s=120, clock=lambda: now[0])
    with liveness.step("ledger"):
        now[0] = 100.0
        assert liveness.problems(set()) == []
        now[0] = 130.0
        assert liveness.problems(set()) == ["agent ledger has been on one step for 130s"]
    assert liveness.problems({"ledger"}) == []  # it just finished a step
    now[0] = 200.0
    assert liveness.problems(set()) == []  # idle with nothing to do is healthy
    now[0] = 260.0
    assert liveness.problems({"ledger"}) == ["agent ledger has input waiting and no step finished for over 120s"]
    assert liveness.problems({"ingest"}) == ["agent ingest has input waiting and no step finished for over 120s"]


def test_an_agent_that_raises_ends_the_process_with_code_70_before_anything_else_runs():
    script = """
import asyncio, sys
from streams.worker.liveness import crash_only
async def body(stream):
    raise ValueError("a bug")
async def main():
    try:
        await crash_only("ingest", body)(None)
    finally:
        print("finally ran", flush=True)  # must not: no cleanup, no commit on the way out
asyncio.run(main())
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == CRASH_EXIT_CODE
    assert "agent ingest failed" in result.stderr and "ValueError: a bug" in result.stderr
    assert "finally ran" not in result.stdout
