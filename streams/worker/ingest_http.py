"""`POST /ingest/litellm`: LiteLLM's `generic_api` callback, straight into the usage topic.

On LiteLLM's side (its proxy config):

    callback_settings:
      spendwatch:
        callback_type: generic_api
        endpoint: http://<worker>:6066/ingest/litellm
        headers: {Authorization: "Bearer <SPENDWATCH_INGEST_TOKEN>"}

Each record is mapped (streams/input/litellm.py) and judged as a native event would be; the
events are published to `SPENDWATCH_USAGE_TOPIC`, where the `ingest` agent counts them like
any other (again validated, priced, de-duplicated by LiteLLM's id). The answer is 200 only
once the broker has every event and every dead letter, so an answer of anything else loses
nothing by being sent again. A record that cannot be mapped or judged is dead-lettered with
its reason; it never fails the rest of its batch. The bearer token is compared in constant
time; a body over `SPENDWATCH_INGEST_MAX_BYTES` is 413 before it is read whole.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any, cast

import orjson
from aiohttp import web as aioweb
from faust.web import Request, Response, View

from streams.errors import RejectedEvent
from streams.input.events import InputLimits, parse_usage
from streams.input.litellm import split_batch, usage_event
from streams.worker.pipeline import RAW_BYTES, Pipeline

log = logging.getLogger("spendwatch.ingest")

PATH = "/ingest/litellm"
SOURCE = "ingest/litellm"
#: Events a usage message carries: far under the message limit at a few hundred bytes each.
EVENTS_PER_MESSAGE = 500


async def read_capped(request: aioweb.Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes (read no further)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(65_536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def attach(pipeline: Pipeline) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    token = settings.ingest_token
    expected = f"Bearer {token.get_secret_value()}".encode() if token is not None else None
    usage_topic = app.topic(settings.usage_topic, **RAW_BYTES)
    limits = InputLimits.from_settings(settings)

    async def dead_letter(value: bytes, reason: str, detail: str, index: int | None = None) -> None:
        headers = [("spendwatch-reason", reason.encode()), ("spendwatch-detail", detail.encode()[:500]),
                   ("spendwatch-source", SOURCE.encode())]
        if index is not None:
            headers.append(("spendwatch-index", str(index).encode()))
        await (await pipeline.dead_letter.send(value=value[:settings.max_message_bytes - 4096], headers=headers))
        metrics.dead_letters.labels(reason).inc()
        metrics.events.labels(SOURCE, "rejected").inc()
        log.warning("dead-lettered a LiteLLM record: %s (%s)", reason, detail)

    @app.page(PATH)
    class LiteLLMIngest(View):
        async def post(self, request: Request) -> Response:
            if expected is None:
                return self.json({"error": "set SPENDWATCH_INGEST_TOKEN to take LiteLLM's callback"}, status=404)
            if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected):
                return self.json({"error": "missing or wrong bearer token"}, status=401)
            body = await read_capped(cast(aioweb.Request, request), settings.ingest_max_bytes)
            if body is None:
                return self.json({"error": f"body over {settings.ingest_max_bytes} bytes "
                                           "(SPENDWATCH_INGEST_MAX_BYTES); send smaller batches"}, status=413)
            try:
                records = split_batch(body)
            except ValueError as exc:
                await dead_letter(body, "not_json", str(exc)[:200])
                return self.json({"error": str(exc)[:200]}, status=400)
            now = time.time()
            events: list[dict[str, Any]] = []
            for index, record in enumerate(records):
                try:
                    event = usage_event(record, settings.litellm_endpoint_key)
                    parse_usage(event, now, settings.future_tolerance_seconds, limits)
                except RejectedEvent as exc:
                    await dead_letter(orjson.dumps(record), exc.reason, exc.detail, index)
                    continue
                events.append(event)
            for start in range(0, len(events), EVENTS_PER_MESSAGE):
                chunk = orjson.dumps(events[start:start + EVENTS_PER_MESSAGE])
                await (await usage_topic.send(value=chunk))
            return self.json({"accepted": len(events), "rejected": len(records) - len(events)})
