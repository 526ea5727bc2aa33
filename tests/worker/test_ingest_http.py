"""Issue "Poison": `POST /ingest/litellm` does bounded work for a body of junk, and one record we
did not foresee is a dead letter, never a 500 for its whole batch.

The worker's view is served on 127.0.0.1 (tests/worker/served.py); Kafka is the stand-in producer
there, which acknowledges each message a moment after it is sent, as a broker does.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from streams.worker import ingest_http
from tests.litellm_payloads import standard_logging_payload
from tests.worker.served import Served, serve

TOKEN = "ingest-token-0123456789abcdef"


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[Served]:
    served = await serve(tmp_path, ingest_token=TOKEN)
    yield served
    await served.server.close()


async def post(worker: Served, records: list) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.post(
            f"{worker.url}/ingest/litellm", data=orjson.dumps(records),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}) as response:
        return response.status, await response.json()


def dead_letters(worker: Served) -> list[dict[str, bytes]]:
    return [dict(message.headers) for message in worker.producer.to(worker.pipeline.settings.dead_letter_topic)]


async def test_a_body_of_rejected_records_is_dead_lettered_without_a_round_trip_each_and_logged_once(
        worker, caplog):
    """Before: each rejected record waited for its own acknowledgement and wrote its own WARNING line."""
    good = [standard_logging_payload(n) for n in range(3)]
    body = [*range(300), *good, *[standard_logging_payload(1000 + n, team_alias=None, team_id=None)
                                  for n in range(20)]]
    with caplog.at_level(logging.INFO, logger="spendwatch.ingest"):
        status, answer = await post(worker, body)
    assert status == 200 and answer == {"accepted": 3, "rejected": 320}
    dead = dead_letters(worker)
    assert len(dead) == 320
    assert [int(headers["spendwatch-index"]) for headers in dead] == [*range(300), *range(303, 323)]
    assert {headers["spendwatch-reason"] for headers in dead} == {b"not_object", b"missing_field"}
    assert worker.producer.most_unacknowledged >= 300  # sent together, acknowledged together
    [line] = [r for r in caplog.records if r.name == "spendwatch.ingest" and r.levelno >= logging.WARNING]
    assert "not_object=300" in line.getMessage() and "missing_field=20" in line.getMessage()
    usage = worker.producer.to(worker.pipeline.settings.usage_topic)
    assert [e["event_id"] for message in usage for e in orjson.loads(message.value)] == \
        [f"litellm-{r['id']}" for r in good]


async def test_a_record_with_an_over_long_id_is_out_of_range_and_the_rest_count(worker):
    """Before: one long id made the usage message too large to send, and every retry answered 500."""
    long_id = dict(standard_logging_payload(1), id="x" * 300)
    status, answer = await post(worker, [standard_logging_payload(0), long_id, standard_logging_payload(2)])
    assert status == 200 and answer == {"accepted": 2, "rejected": 1}
    [dead] = dead_letters(worker)
    assert dead["spendwatch-reason"] == b"out_of_range" and dead["spendwatch-index"] == b"1"
    assert b"event_id" in dead["spendwatch-detail"]


async def test_an_unforeseen_error_in_one_record_is_an_internal_error_dead_letter_naming_only_its_type(
        worker, monkeypatch):
    """Before: the exception escaped the view and the whole batch answered 500, every retry alike."""
    mapped = ingest_http.usage_event

    def usage_event(record, endpoint_key, *mapping):
        # Stand-in for a parser bug: once a real one is fixed no input raises, but the guard must stay.
        if isinstance(record, dict) and record.get("id") == "poison":
            raise KeyError("sk-live-secret-from-the-record")
        return mapped(record, endpoint_key, *mapping)

    monkeypatch.setattr(ingest_http, "usage_event", usage_event)
    poison = dict(standard_logging_payload(1), id="poison")
    status, answer = await post(worker, [standard_logging_payload(0), poison, standard_logging_payload(2)])
    assert status == 200 and answer == {"accepted": 2, "rejected": 1}
    [dead] = dead_letters(worker)
    assert dead["spendwatch-reason"] == b"internal_error" and dead["spendwatch-detail"] == b"KeyError"
    assert b"sk-live" not in b"".join(dead.values())
    assert worker.pipeline.metrics.dead_letters.labels("internal_error")._value.get() == 1


async def test_odd_shapes_in_real_records_never_fail_their_batch(worker):
    odd = [dict(standard_logging_payload(n), **change) for n, change in enumerate([
        {"request_tags": 5}, {"metadata": {"user_api_key_team_alias": "t", "spend_logs_metadata": 7}},
        {"model": {"a": 1}}, {"endTime": "tomorrow"}, {"prompt_tokens": 1e300}, {"error_information": []},
    ], start=10)]
    status, answer = await post(worker, [standard_logging_payload(0), *odd, standard_logging_payload(1)])
    assert status == 200 and answer["accepted"] >= 2 and answer["accepted"] + answer["rejected"] == len(odd) + 2
    assert len(dead_letters(worker)) == answer["rejected"]


async def test_a_body_of_more_records_than_litellm_sends_is_refused_before_any_is_judged(worker):
    """Before: 10 MB of bare numbers was judged and dead-lettered one by one, millions of messages."""
    status, answer = await post(worker, [0] * (ingest_http.MAX_RECORDS + 1))
    assert status == 413 and "smaller batches" in answer["error"]
    assert worker.producer.sent == []


MARKER = "MARKER-7c1e-the-conversation"


def metric(worker: Served, family, **labels) -> float:
    return worker.pipeline.metrics.registry.get_sample_value(family, labels) or 0.0


async def test_no_dead_letter_or_log_line_carries_a_prompt_or_a_completion(worker, caplog):
    """Before: a rejected record was dead-lettered whole, the conversation in it, and each logged at WARNING."""
    def secret(n: int, **change) -> dict:
        record = dict(standard_logging_payload(n), **change)
        record["messages"] = [{"role": "user", "content": f"{MARKER} prompt"}]
        record["response"] = {"choices": [{"message": {"role": "assistant", "content": f"{MARKER} reply"}}]}
        return record

    rejected = [secret(1, metadata={}), secret(2, endTime="tomorrow", startTime=None), secret(3, prompt_tokens=-1),
                secret(4, model=None), [MARKER]]
    with caplog.at_level(logging.DEBUG):
        status, answer = await post(worker, rejected)
        async with aiohttp.ClientSession() as session, session.post(  # not JSON: only its digest is kept
                f"{worker.url}/ingest/litellm", data=orjson.dumps(rejected)[:-40],
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}) as response:
            assert response.status == 400
    assert status == 200 and answer == {"accepted": 0, "rejected": 5}
    letters = worker.producer.to(worker.pipeline.settings.dead_letter_topic)
    assert len(letters) == 6
    for letter in letters:
        assert MARKER.encode() not in letter.value + b"".join(value for _, value in letter.headers)
        assert len(dict(letter.headers)["spendwatch-sha256"]) == 64
    assert orjson.loads(letters[0].value)["id"] == rejected[0]["id"]  # what the mapping read is kept
    assert all(MARKER not in record.getMessage() for record in caplog.records)


async def test_dead_letter_warnings_are_logged_at_most_once_a_minute_per_reason(worker, caplog):
    team_less = [standard_logging_payload(n, team_alias=None, team_id=None) for n in range(3)]
    with caplog.at_level(logging.WARNING, logger="spendwatch.ingest"):
        for _ in range(5):
            assert (await post(worker, team_less))[1] == {"accepted": 0, "rejected": 3}
    lines = [r.getMessage() for r in caplog.records if r.name == "spendwatch.ingest"]
    assert len(lines) == 1 and "missing_field=3" in lines[0]
    assert metric(worker, "spendwatch_dead_letters_total", reason="missing_field") == 15


async def test_refused_requests_are_counted_by_result_and_logged_at_most_once_a_minute(worker, caplog):
    """Before: LiteLLM logged 401 at every flush, and we logged and counted nothing."""
    with caplog.at_level(logging.WARNING, logger="spendwatch.ingest"):
        async with aiohttp.ClientSession() as session:
            for _ in range(4):
                async with session.post(f"{worker.url}/ingest/litellm", data=b"[]", headers={
                        "Authorization": "Bearer sk-guessed-123", "Content-Type": "application/json"}) as response:
                    assert response.status == 401
        await post(worker, [0] * (ingest_http.MAX_RECORDS + 1))
        assert (await post(worker, [standard_logging_payload(0)]))[0] == 200
    assert metric(worker, "spendwatch_ingest_requests_total", result="unauthorized") == 4
    assert metric(worker, "spendwatch_ingest_requests_total", result="too_many") == 1
    assert metric(worker, "spendwatch_ingest_requests_total", result="accepted") == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "spendwatch.ingest"]
    assert len([line for line in lines if "unauthorized" in line]) == 1
    assert len([line for line in lines if "too_many" in line]) == 1
    assert "sk-guessed" not in " ".join(lines)  # a token sent is never logged


async def test_a_call_whose_key_has_no_team_is_counted_under_the_default_team(tmp_path):
    served = await serve(tmp_path, ingest_token=TOKEN, litellm_default_team="shared")
    try:
        tagged = standard_logging_payload(1, team_alias=None, team_id=None)
        tagged["request_tags"] = ["team:checkout"]
        status, answer = await post(served, [standard_logging_payload(0, team_alias=None, team_id=None), tagged])
        assert status == 200 and answer == {"accepted": 2, "rejected": 0}
        usage = served.producer.to(served.pipeline.settings.usage_topic)
        assert [e["team"] for message in usage for e in orjson.loads(message.value)] == ["shared", "checkout"]
    finally:
        await served.server.close()
