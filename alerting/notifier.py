"""The one method every sink has, and the one error it raises (Alertmanager's notifier shape).

A sink's `notify(alert)` returns when the receiver has taken the alert, or raises
`DeliveryError` saying whether trying again can help. Retry lives in one place
(`alerting.retry`), never inside a sink.
"""

from __future__ import annotations

from typing import Any, Protocol

Alert = dict[str, Any]


class DeliveryError(Exception):
    """A failed delivery: `retryable` says whether a retry can help; `retry_after` is the receiver's wish."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Notifier(Protocol):
    name: str

    async def notify(self, alert: Alert) -> None: ...


def error_for_status(receiver: str, status: int, retry_after: str | None, detail: str = "") -> DeliveryError:
    """How HTTP answers map to retries: 429, 408 and 5xx are worth another try, other 4xx are not.

    `detail` must never carry a secret (webhook URLs and tokens are secrets).
    """
    retryable = status in (408, 429) or status >= 500
    wait = None
    if retry_after:
        try:
            wait = max(0.0, float(retry_after))
        except ValueError:
            wait = None
    return DeliveryError(f"{receiver} answered {status}{': ' + detail[:200] if detail else ''}",
                         retryable=retryable, retry_after=wait)
