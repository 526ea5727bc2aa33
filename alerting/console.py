"""The console sink: one line per alert on standard output (the default when nothing else is set)."""

from __future__ import annotations

import sys
from typing import TextIO

from alerting.notifier import Alert

ICONS = {"firing": "FIRING  ", "resolved": "RESOLVED"}


class ConsoleNotifier:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def notify(self, alert: Alert) -> None:
        stream = self.stream or sys.stdout
        repeat = f" (repeat {alert['repeat']})" if alert.get("repeat") else ""
        print(f"[spendwatch] {ICONS.get(alert['status'], alert['status'])} {alert['severity']:<8} "
              f"{alert['kind']}{repeat}: {alert['summary']}", file=stream, flush=True)
