"""Crash-only agents and a health check that tells the truth.

Faust restarts an agent that raised, and `take_events` acknowledges the batch it was on while
it unwinds, so the batch's offsets get committed: the worker looks alive and has skipped input.
Here an unexpected exception in an agent ends the process at once with exit code 70, before
any commit can run: nothing it had not finished is committed, and a restarted worker (Docker's
`restart`, Kubernetes, `make run` again) reads it again. Our state is idempotent over re-reads
(streams/state/ledger.py), so crashing is always safe, and it is the only way that never skips.

`Liveness` records when each agent started and finished its current step; `/healthz` fails when
a step has run longer than `stuck_after_s`, or when an input has lag and its agent has not
finished a step for that long, so an orchestrator restarts a wedged worker.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

from streams.worker.faust_patches import named

log = logging.getLogger("spendwatch.liveness")

#: The exit code of a worker that stopped itself on an unexpected error (EX_SOFTWARE).
CRASH_EXIT_CODE = 70

AgentFun = Callable[[Any], Awaitable[None]]


def crash_only(name: str, fun: AgentFun) -> AgentFun:
    """Wrap an agent body so that an unexpected exception ends the process without a commit."""

    async def agent(stream: Any) -> None:
        try:
            await fun(stream)
        except Exception:  # noqa: BLE001 (any of them, logged by exit_now: see the module docstring)
            exit_now(f"agent {name} failed")

    return named(name, agent)


def exit_now(what: str) -> NoReturn:
    """End the process with `CRASH_EXIT_CODE`, the exception being handled logged."""
    log.critical("%s; exiting with code %d so that a restart reads its input again", what, CRASH_EXIT_CODE,
                 exc_info=True)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(CRASH_EXIT_CODE)  # no finally blocks, no commit on the way out


@dataclass
class Liveness:
    """When each agent's current step began (None: idle) and when its last step ended."""

    stuck_after_s: float = 120.0
    clock: Callable[[], float] = time.monotonic
    busy_since: dict[str, float | None] = field(default_factory=dict)
    last_step: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.started = self.clock()

    @contextmanager
    def step(self, agent: str) -> Iterator[None]:
        self.busy_since[agent] = self.clock()
        try:
            yield
        finally:
            self.busy_since[agent] = None
            self.last_step[agent] = self.clock()

    def problems(self, lagging: set[str]) -> list[str]:
        """Why the worker is unhealthy; `lagging` names the agents whose input has lag."""
        now = self.clock()
        out = []
        for agent, since in self.busy_since.items():
            if since is not None and now - since > self.stuck_after_s:
                out.append(f"agent {agent} has been on one step for {now - since:.0f}s")
        for agent in sorted(lagging):
            last = self.last_step.get(agent, self.started)
            if self.busy_since.get(agent) is None and now - last > self.stuck_after_s:
                out.append(f"agent {agent} has input waiting and no step finished for over {self.stuck_after_s:.0f}s")
        return out
