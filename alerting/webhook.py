"""A generic webhook sink: the alert as JSON in a POST, for any other tool."""

from __future__ import annotations

import aiohttp
import orjson

from alerting.notifier import Alert, DeliveryError, error_for_status


class WebhookNotifier:
    name = "webhook"

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self._url = url  # may embed a token: never put it in an error or a log line
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def notify(self, alert: Alert) -> None:
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session, \
                    session.post(self._url, data=orjson.dumps(alert),
                                 headers={"Content-Type": "application/json"}) as response:
                if response.status < 300:
                    return
                raise error_for_status("webhook", response.status, response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"webhook unreachable: {type(exc).__name__}", retryable=True) from None
