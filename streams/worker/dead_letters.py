"""The dead-letter topic: each rejected input, untouched (cut at the message limit, with a digest), with why
and where it came from, counted by reason. The ingest and execute agents both write it this way."""

from __future__ import annotations

import hashlib
import logging

from streams.input.intake import DeadLetter
from streams.worker.pipeline import Pipeline

log = logging.getLogger("spendwatch.agents")

#: Room left in a dead letter for its headers.
HEADER_ROOM = 4096


async def send_dead_letter(pipeline: Pipeline, dead: DeadLetter) -> None:
    """The rejected bytes, untouched (cut at the message limit, with a digest), and why and where from."""
    message, rejection = dead
    payload = rejection.payload
    headers = [
        ("spendwatch-reason", rejection.reason.encode()),
        ("spendwatch-detail", rejection.detail.encode()[:500]),
        ("spendwatch-source", f"{message.topic}:{message.partition}:{message.offset}".encode()),
    ]
    if rejection.index is not None:
        headers.append(("spendwatch-index", str(rejection.index).encode()))
    room = pipeline.settings.max_message_bytes - HEADER_ROOM
    if len(payload) > room:
        headers += [("spendwatch-truncated", str(len(payload)).encode()),
                    ("spendwatch-sha256", hashlib.sha256(payload).hexdigest().encode())]
        payload = payload[:room]
    await pipeline.dead_letter.send(value=payload, headers=headers)
    pipeline.metrics.dead_letters.labels(rejection.reason).inc()
    pipeline.metrics.events.labels(message.topic, "rejected").inc()
    log.warning("dead-lettered %s:%s:%s: %s (%s)", message.topic, message.partition, message.offset,
                rejection.reason, rejection.detail)
