"""End to end, issue "Adapters": usage straight from the tools teams already run.

LiteLLM's generic_api callback POSTs its records to a worker (`POST /ingest/litellm`) in each
of its three log formats; the totals at `/spend` are exact, a re-sent batch counts once, and bad
input is refused (401, 413, 400) or dead-lettered with its reason, never lost. CloudEvents in
structured and binary mode, published with a plain Kafka client, count the same way; and
`spendwatch scrape` reads a dcgm-exporter page from a real HTTP server into a run's burn.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson
import pytest

from tests.conftest import ROOT, wait_for
from tests.e2e.test_e2e_ingest import expected_totals, metric, totals_match
from tests.kafka_helpers import publish, read_all
from tests.litellm_payloads import standard_logging_payload

pytestmark = pytest.mark.e2e

TOKEN = "ingest-token-0123456789abcdef"


def post(worker, body: bytes, token: str | None = TOKEN) -> httpx.Response:
    # LiteLLM sends application/json whatever the log format.
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{worker.url}/ingest/litellm", content=body, timeout=30, headers=headers)


def as_native(record: dict) -> dict:
    """What the record is as a token-usage event, written out by hand from LiteLLM's spec."""
    endpoint = (record["metadata"].get("spend_logs_metadata") or {}).get("endpoint") or record["model_group"]
    return {"team": record["metadata"]["user_api_key_team_alias"], "endpoint": endpoint,
            "prompt_tokens": record["prompt_tokens"], "completion_tokens": record["completion_tokens"],
            "cost_usd": record["response_cost"] or 0.0, "model": record["model"]}


def test_litellm_batches_in_every_format_count_exactly_once_and_bad_input_is_never_lost(
        broker, topics, make_worker):
    worker = make_worker(SPENDWATCH_INGEST_TOKEN=TOKEN, SPENDWATCH_INGEST_MAX_BYTES="400000")
    records = [standard_logging_payload(n, failed=n % 10 == 9, endpoint="checkout-bot" if n % 4 == 0 else None)
               for n in range(66)]
    array, lines, singles = records[:30], records[30:60], records[60:]
    no_team = standard_logging_payload(999, team_alias=None, team_id=None)

    assert post(worker, orjson.dumps(array)).json() == {"accepted": 30, "rejected": 0}
    answer = post(worker, b"\n".join(orjson.dumps(r) for r in [*lines[:15], no_team, *lines[15:]]))
    assert answer.status_code == 200 and answer.json() == {"accepted": 30, "rejected": 1}
    for record in singles:
        assert post(worker, orjson.dumps(record)).status_code == 200
    assert post(worker, orjson.dumps(array)).status_code == 200  # LiteLLM sends the batch again

    assert post(worker, orjson.dumps(array), token="wrong").status_code == 401
    assert post(worker, orjson.dumps(array), token=None).status_code == 401
    oversize = orjson.dumps([dict(r, messages=[{"role": "user", "content": "x" * 20_000}]) for r in records])
    assert post(worker, oversize).status_code == 413
    assert post(worker, b"{this is not json").status_code == 400

    expected = expected_totals([as_native(r) for r in records])
    wait_for(lambda: totals_match(worker, expected), timeout=60, what="exact totals from LiteLLM's records")
    dead = read_all(broker.bootstrap, topics.dead_letter, expected=2)
    reasons = sorted((dict(m.headers)["spendwatch-reason"], dict(m.headers)["spendwatch-source"]) for m in dead)
    assert reasons == [(b"missing_field", b"ingest/litellm"), (b"not_json", b"ingest/litellm")]
    [team_less] = [m for m in dead if dict(m.headers)["spendwatch-reason"] == b"missing_field"]
    assert orjson.loads(team_less.value)["id"] == no_team["id"] and b"no team" in dict(team_less.headers)[
        "spendwatch-detail"]
    # The batch sent again changes no total: wait for it to be counted as what it is.
    wait_for(lambda: metric(worker, "spendwatch_events_total", result="duplicate") == 30, what="30 duplicates")
    assert metric(worker, "spendwatch_dead_letters_total", reason="missing_field") == 1


def test_cloudevents_in_both_modes_count_exactly(broker, topics, make_worker):
    worker = make_worker()
    now = time.time()
    events = [{"model": "gpt-4o", "endpoint": "chat", "prompt_tokens": 100 + n, "completion_tokens": n,
               "cost_usd": round(0.001 * n, 6)} for n in range(40)]

    def attributes(n: int) -> dict:
        return {"specversion": "1.0", "id": f"evt-{n}", "source": "//gateway/eu-1", "type": "com.example.ai.usage",
                "subject": "ce-team", "time": datetime.fromtimestamp(now - 60 + n, tz=UTC).isoformat()}

    structured = [dict(attributes(n), data=events[n]) for n in range(20)]
    publish(broker.bootstrap, topics.usage, [(0, orjson.dumps(structured[:5])), *[
        (1, orjson.dumps(e)) for e in structured[5:]]])
    for n in range(20, 40):  # binary mode: the data is the value, the attributes are ce_ headers
        headers = [(f"ce_{name}", str(value).encode()) for name, value in attributes(n).items()]
        publish(broker.bootstrap, topics.usage, [(2, orjson.dumps(events[n]))],
                headers=[*headers, ("content-type", b"application/json")])
    publish(broker.bootstrap, topics.usage, [(0, orjson.dumps(structured[:5]))])  # re-sent: same source and id

    expected = expected_totals([dict(e, team="ce-team") for e in events])
    wait_for(lambda: totals_match(worker, expected), timeout=60, what="exact totals from CloudEvents")


DCGM_PAGE = (ROOT / "tests" / "fixtures" / "dcgm_exporter_metrics.txt").read_bytes()


class Exporter(BaseHTTPRequestHandler):
    """dcgm-exporter's /metrics, as it serves it (text exposition format 0.0.4)."""

    scrapes = 0

    def do_GET(self) -> None:
        if self.path != "/metrics":
            self.send_error(404)
            return
        Exporter.scrapes += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(DCGM_PAGE)))
        self.end_headers()
        self.wfile.write(DCGM_PAGE)

    def log_message(self, *args) -> None:
        return None


def test_a_dcgm_exporter_scrape_feeds_a_training_runs_burn(broker, topics, make_worker):
    worker = make_worker()
    start = time.time() - 120
    publish(broker.bootstrap, topics.runs, [(0, orjson.dumps(
        {"ts": start, "team": "research", "run_id": "ft-llama-7b-0", "status": "started", "gpus": 2,
         "gpu_type": "H100", "estimated_cost_usd": 40.0, "expected_hours": 5.0}))])
    wait_for(lambda: worker.get("/runs/ft-llama-7b-0").status_code == 200, what="the run to be known")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Exporter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SPENDWATCH_")}, **topics.env}
        done = subprocess.run(
            [sys.executable, "-m", "streams.cli", "scrape", "--url", f"http://127.0.0.1:{server.server_port}/metrics",
             "--every", "1", "--times", "3", "--brokers", broker.bootstrap],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr[-2000:]
    assert "published 9 GPU samples" in done.stdout and Exporter.scrapes == 3  # 3 GPUs held by pods, 3 scrapes
    run = wait_for(lambda: (r := worker.get("/runs/ft-llama-7b-0").json())["gpu_hours"] > 0.0016 and r,
                   what="the scraped GPU-hours on the run")
    assert run["gpus_active"] == 2 and run["gpu_hours"] == pytest.approx(2 * 3 / 3600, abs=1e-6)  # shown to 6 places
    assert run["cost_usd"] == pytest.approx(2 * 3 / 3600 * 4.0, abs=1e-6)  # H100 at the default $4/h
    assert run["burn_rate_usd_per_hour"] > 0
    search = wait_for(lambda: worker.get("/runs/embed-batch-2").status_code == 200 and
                      worker.get("/runs/embed-batch-2").json(), what="the other pod's GPU, as its own run")
    assert search["team"] == "search"


def test_otel_genai_spans_in_both_encodings_count_exactly(broker, topics, make_worker):
    from tests.otel_spans import otlp_json, otlp_proto, record_spans

    spans_topic = f"{topics.prefix}.otlp_spans"
    broker.create_topics([spans_topic], partitions=4)
    worker = make_worker(SPENDWATCH_OTLP_TOPIC=spans_topic)
    now_ns = time.time_ns() - 60 * 10**9
    calls = [{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "openai",
              "gen_ai.usage.input_tokens": 500 + n, "gen_ai.usage.output_tokens": 50 + n} for n in range(30)]
    batches = [record_spans(calls[i:i + 10], at_ns=now_ns + i * 10**8) for i in range(0, 30, 10)]
    publish(broker.bootstrap, spans_topic, [(0, otlp_proto(batches[0])), (1, otlp_json(batches[1])),
                                            (2, otlp_proto(batches[2])), (3, otlp_json(batches[0]))])  # re-sent

    expected = expected_totals([{"team": "search", "endpoint": "chat-api", "model": "gpt-4o",
                                 "prompt_tokens": c["gen_ai.usage.input_tokens"],
                                 "completion_tokens": c["gen_ai.usage.output_tokens"]} for c in calls])
    wait_for(lambda: totals_match(worker, expected), timeout=60, what="exact totals from OTel spans")
    wait_for(lambda: metric(worker, "spendwatch_events_total", result="duplicate") == 10, what="10 duplicates")
    assert metric(worker, "spendwatch_events_total", topic=spans_topic, result="skipped") == 40  # the HTTP spans


def test_a_budget_on_gpt_4o_counts_openai_gpt_4o_from_litellm_otel_and_kafka_alike(broker, topics, make_worker):
    """Issue "LiteLLM as it really runs". Before: calls named `openai/gpt-4o` (LiteLLM's records, and any
    producer or span naming the model so) counted $0 against a budget on `gpt-4o`."""
    from streams.input.pricing import estimate_cost
    from tests.otel_spans import otlp_proto, record_spans

    spans_topic = f"{topics.prefix}.otlp_spans"
    broker.create_topics([spans_topic], partitions=4)
    budget = [{"budget": "gpt-4o-day", "team": "search", "period": "day", "amount_usd": 1000.0, "model": "gpt-4o"}]
    worker = make_worker(SPENDWATCH_INGEST_TOKEN=TOKEN, SPENDWATCH_OTLP_TOPIC=spans_topic,
                         SPENDWATCH_BUDGETS=orjson.dumps(budget).decode())
    now = time.time()
    start = max(now - now % 86400 + 1, now - 120)  # inside today (UTC), whatever the hour
    records = [dict(standard_logging_payload(n, ts=start + n), model="openai/gpt-4o", response_cost=1.0)
               for n in range(5)]
    assert post(worker, orjson.dumps(records)).json() == {"accepted": 5, "rejected": 0}
    native = [{"ts": start + n, "team": "search", "model": "openai/gpt-4o", "prompt_tokens": 10,
               "completion_tokens": 1, "cost_usd": 2.0, "event_id": f"native-{n}"} for n in range(3)]
    publish(broker.bootstrap, topics.usage, [(0, orjson.dumps(native))])
    span = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "openai/gpt-4o",
            "gen_ai.usage.input_tokens": 100_000, "gen_ai.usage.output_tokens": 0}
    publish(broker.bootstrap, spans_topic, [(0, otlp_proto(record_spans([span], at_ns=int(start * 1e9))))])

    priced = estimate_cost("gpt-4o", 100_000, 0, "openai")
    assert priced  # the span has no cost: the catalog prices it, under the catalog's own name
    expected = 5 * 1.0 + 3 * 2.0 + priced
    [view] = wait_for(lambda: [v for v in worker.get("/budgets").json()["budgets"]
                               if abs(v["spent_usd"] - expected) < 1e-6], timeout=60,
                      what=f"the gpt-4o budget to count all ${expected:.4f} of openai/gpt-4o calls")
    assert view["budget"] == "gpt-4o-day"
