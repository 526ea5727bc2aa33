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
its reason, and one whose judging raised what we did not foresee with `internal_error` and the
exception's type; it never fails the rest of its batch. A dead letter holds only what the mapping
read (`read_fields`) and, in `spendwatch-sha256`, the digest of the whole record: never the prompt
or the completion LiteLLM puts in every record. The work is bounded per request: dead letters go
out together and are acknowledged together (a 10 MB body of numbers is not millions of round
trips). Every request is counted by result in `spendwatch_ingest_requests_total`, and a refusal
or a dead letter is logged at most once a minute per reason. The bearer token is compared in
constant time; a body over `SPENDWATCH_INGEST_MAX_BYTES` is 413 before it is read whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Iterable
from typing import Any, cast

import orjson
from aiohttp import web as aioweb
from faust.web import Request, Response, View

from streams.errors import RejectedEvent
from streams.input.events import INTERNAL_ERROR, InputLimits, parse_usage, unforeseen
from streams.input.litellm import read_fields, split_batch, usage_event
from streams.worker.log_limit import PerReason
from streams.worker.pipeline import RAW_BYTES, Pipeline

log = logging.getLogger("spendwatch.ingest")

PATH = "/ingest/litellm"
SOURCE = "ingest/litellm"
#: Events a usage message carries: far under the message limit at a few hundred bytes each.
EVENTS_PER_MESSAGE = 500
#: Messages sent before their acknowledgements are awaited together: bounds what one request holds.
SENDS_AT_ONCE = 1000
#: Records judged between two turns of the event loop (ingest and /healthz go on meanwhile).
JUDGED_AT_ONCE = 500
#: Most records one request may carry (413 above): LiteLLM's records are over 1 KB each, so a body
#: within SPENDWATCH_INGEST_MAX_BYTES holds fewer; 10 MB of bare numbers would be millions of dead letters.
MAX_RECORDS = 10_000
#: A rejected record: its place in the batch, the record, and why.
Rejected = tuple[int, Any, RejectedEvent]


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


def judge(records: Iterable[Any], endpoint_key: str, now: float, future_tolerance_s: float,
          limits: InputLimits, start: int = 0, team_key: str = "team",
          default_team: str | None = None) -> tuple[list[dict[str, Any]], list[Rejected]]:
    """The records (the first at index `start`) as usage events, and those that are not, with their rejection."""
    events: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for index, record in enumerate(records, start=start):
        try:
            event = usage_event(record, endpoint_key, team_key, default_team)
            parse_usage(event, now, future_tolerance_s, limits)
        except RejectedEvent as exc:
            rejected.append((index, record, exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one record we did not foresee is a dead letter, not a 500
            rejected.append((index, record, RejectedEvent(INTERNAL_ERROR, unforeseen(exc))))
            continue
        events.append(event)
    return events, rejected


async def acknowledged(sends: Iterable[Awaitable[Awaitable[Any]]]) -> None:
    """Send each message, then wait for the broker's acknowledgements together, `SENDS_AT_ONCE` at a time."""
    waiting: list[Awaitable[Any]] = []
    for send in sends:
        waiting.append(await send)
        if len(waiting) >= SENDS_AT_ONCE:
            await asyncio.gather(*waiting)
            waiting = []
    await asyncio.gather(*waiting)


def attach(pipeline: Pipeline) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    token = settings.ingest_token
    expected = f"Bearer {token.get_secret_value()}".encode() if token is not None else None
    usage_topic = app.topic(settings.usage_topic, **RAW_BYTES)
    limits = InputLimits.from_settings(settings)
    endpoint_key, team_key, default_team = (settings.litellm_endpoint_key, settings.litellm_team_key,
                                            settings.litellm_default_team)
    dead_lines, refusal_lines = PerReason(), PerReason()

    def dead_letter(value: bytes, reason: str, detail: str, whole: bytes, index: int | None = None) -> Awaitable[Any]:
        """Send one dead letter (`whole`: what it stands for, by digest); the awaitable gives its acknowledgement's
        awaitable (as `Topic.send` does)."""
        headers = [("spendwatch-reason", reason.encode()), ("spendwatch-detail", detail.encode()[:500]),
                   ("spendwatch-source", SOURCE.encode()),
                   ("spendwatch-sha256", hashlib.sha256(whole).hexdigest().encode())]
        if index is not None:
            headers.append(("spendwatch-index", str(index).encode()))
        return pipeline.dead_letter.send(value=value[:settings.max_message_bytes - 4096], headers=headers)

    def counted(reasons: Counter[str], records: int) -> None:
        """Dead letters the broker has taken, in the metrics, and in a log line when one of their reasons is due."""
        for reason, count in reasons.items():
            metrics.dead_letters.labels(reason).inc(count)
        metrics.events.labels(SOURCE, "rejected").inc(reasons.total())
        due = {reason: held for reason, count in reasons.most_common()
               if (held := dead_lines.due(reason, count)) is not None}
        if due:
            log.warning("dead-lettered %d of %d LiteLLM records: %s (by reason since its last line, at most one "
                        "a minute)", reasons.total(), records, ", ".join(f"{r}={n}" for r, n in due.items()))

    def refused(view: View, result: str, status: int, error: str) -> Response:
        """A request refused whole: counted by result, and logged at most once a minute per result."""
        metrics.ingest_requests.labels(result).inc()
        held = refusal_lines.due(result)
        if held is not None:
            log.warning("refused %d LiteLLM request(s) since the last line: %s (%d): %s", held, result, status, error)
        return view.json({"error": error}, status=status)

    @app.page(PATH)
    class LiteLLMIngest(View):
        async def post(self, request: Request) -> Response:
            if expected is None:
                return refused(self, "disabled", 404, "set SPENDWATCH_INGEST_TOKEN to take LiteLLM's callback")
            if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected):
                return refused(self, "unauthorized", 401, "missing or wrong bearer token (SPENDWATCH_INGEST_TOKEN)")
            body = await read_capped(cast(aioweb.Request, request), settings.ingest_max_bytes)
            if body is None:
                return refused(self, "too_large", 413, f"body over {settings.ingest_max_bytes} bytes "
                                                       "(SPENDWATCH_INGEST_MAX_BYTES); send smaller batches")
            try:
                records = split_batch(body)
            except ValueError as exc:
                # Only its digest: a body cut short is still the conversation it carried.
                await acknowledged([dead_letter(b"", "not_json", str(exc)[:200], body)])
                counted(Counter(["not_json"]), 1)
                return refused(self, "not_json", 400, str(exc)[:200])
            if len(records) > MAX_RECORDS:
                return refused(self, "too_many", 413, f"{len(records)} records; at most {MAX_RECORDS} a request, "
                                                      "send smaller batches")
            now, events, rejected = time.time(), [], []
            for start in range(0, len(records), JUDGED_AT_ONCE):
                judged, refusals = judge(records[start:start + JUDGED_AT_ONCE], endpoint_key, now,
                                         settings.future_tolerance_seconds, limits, start, team_key, default_team)
                events += judged
                rejected += refusals
                await asyncio.sleep(0)
            await acknowledged(dead_letter(orjson.dumps(read_fields(record, endpoint_key, team_key)), exc.reason,
                                           exc.detail, orjson.dumps(record), index)
                               for index, record, exc in rejected)
            await acknowledged(usage_topic.send(value=orjson.dumps(events[start:start + EVENTS_PER_MESSAGE]))
                               for start in range(0, len(events), EVENTS_PER_MESSAGE))
            if rejected:
                counted(Counter(exc.reason for _, _, exc in rejected), len(records))
            metrics.ingest_requests.labels("accepted").inc()
            return self.json({"accepted": len(events), "rejected": len(rejected)})
