"""Retry with exponential backoff up to a deadline, in one place (Alertmanager's retry stage).

A permanent error stops at once; a retryable one waits (the receiver's Retry-After when it
gives one, else 1 s, 2 s, 4 s ... up to `max_backoff_s`) and tries again until the deadline.
The clock and the sleep are injected so tests run in no time.

>>> import asyncio
>>> class Flaky:
...     name = "flaky"
...     calls = 0
...     async def notify(self, alert):
...         self.calls += 1
...         if self.calls < 3:
...             raise DeliveryError("503", retryable=True)
>>> async def no_sleep(seconds): pass
>>> outcome = asyncio.run(deliver(Flaky(), {}, deadline_s=60, sleep=no_sleep))
>>> outcome.delivered, outcome.attempts
(True, 3)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from alerting.notifier import Alert, DeliveryError, Notifier

log = logging.getLogger("spendwatch.alerting")


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    error: str | None = None  # why it was refused or given up on
    abandoned: bool = False  # the worker is stopping: neither delivered nor refused, left for the next one

    @property
    def result(self) -> str:
        return "delivered" if self.delivered else "failed"


async def deliver(
    notifier: Notifier,
    alert: Alert,
    *,
    deadline_s: float,
    initial_backoff_s: float = 1.0,
    max_backoff_s: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_retry: Callable[[DeliveryError], None] | None = None,
    stopping: Callable[[], bool] | None = None,
) -> Outcome:
    """Hand one alert to one notifier, retrying what can be retried until `deadline_s` has passed.

    `stopping()` true (the worker is shutting down) ends the retries with an *abandoned*
    outcome: neither delivered nor refused, for the caller to leave to the next worker.
    """
    give_up_at = clock() + deadline_s
    backoff = initial_backoff_s
    attempts = 0
    while True:
        attempts += 1
        try:
            await notifier.notify(alert)
            return Outcome(True, attempts)
        except DeliveryError as exc:
            if exc.retryable and stopping is not None and stopping():
                return Outcome(False, attempts, f"stopped while retrying: {exc}", abandoned=True)
            if not exc.retryable:
                log.error("%s refused alert %s for good: %s", notifier.name, alert.get("alert_id"), exc)
                return Outcome(False, attempts, str(exc))
            wait = exc.retry_after if exc.retry_after is not None else backoff
            if clock() + wait > give_up_at:
                log.error("%s: gave up on alert %s after %d attempts: %s", notifier.name,
                          alert.get("alert_id"), attempts, exc)
                return Outcome(False, attempts, f"gave up after {attempts} attempts: {exc}")
            log.warning("%s: attempt %d for alert %s failed (%s); retrying in %.1fs", notifier.name, attempts,
                        alert.get("alert_id"), exc, wait)
            if on_retry is not None:
                on_retry(exc)
            await sleep(wait)
            if stopping is not None and stopping():
                return Outcome(False, attempts, f"stopped while retrying: {exc}", abandoned=True)
            backoff = min(backoff * 2, max_backoff_s)
        except Exception as exc:  # any: a bug in a sink must never stall the alerts behind it
            log.exception("%s failed on alert %s; refusing it for good", notifier.name, alert.get("alert_id"))
            return Outcome(False, attempts, f"{notifier.name} failed: {type(exc).__name__}: {exc}"[:300])
