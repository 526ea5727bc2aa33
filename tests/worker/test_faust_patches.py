"""The producer buffer's flush, without a broker: Faust's returns with writes queued, ours does not."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.transport.producer import ProducerBuffer

from streams.worker.faust_patches import SpendwatchProducerBuffer

SLOW_SEND_S = 0.25  # one send under load: longer than the 0.1 s Faust's flush waits for


async def flush_with_slow_sends(buffer_class: type[ProducerBuffer], writes: int) -> tuple[int, int]:
    """(writes sent when flush returned, writes queued or in flight then)."""
    sent: list[Any] = []

    async def slow_publish(fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(SLOW_SEND_S)
        sent.append(fut)

    buffer = buffer_class()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))
    for n in range(writes):
        buffer.put(SimpleNamespace(n=n, message=SimpleNamespace(channel=SimpleNamespace(publish_message=slow_publish))))

    async def handle_pending() -> None:  # Faust's `_handle_pending` loop, which the service would run
        while True:
            fut = await buffer.pending.get()
            await buffer._send_pending(fut)
            buffer.message_sent.set()

    sender = asyncio.create_task(handle_pending())
    buffer._started.set()  # mode.Service: "running", as when the producer runs
    try:
        await buffer.flush()
        return len(sent), writes - len(sent)
    finally:
        sender.cancel()


def test_fausts_flush_returns_with_writes_still_queued_when_sends_are_slow():
    _, left = asyncio.run(flush_with_slow_sends(ProducerBuffer, 4))
    assert left > 0, "Faust's flush waited for every write (the reason for our buffer is gone: retire it)"


def test_our_flush_returns_only_when_every_write_was_handed_on():
    sent, left = asyncio.run(flush_with_slow_sends(SpendwatchProducerBuffer, 4))
    assert (sent, left) == (4, 0)
