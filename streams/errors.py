"""One root exception, with subclasses named for what went wrong (faststream's style)."""

from __future__ import annotations


class SpendwatchError(Exception):
    """Root of every error spendwatch raises on purpose."""


class SettingsError(SpendwatchError):
    """A setting is missing or malformed; the message names the variable, never its secret value."""


class BrokerError(SpendwatchError):
    """The embedded broker could not be started or used."""


class RejectedEvent(SpendwatchError):
    """An input cannot be accounted for; `reason` is a short stable code, `detail` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
