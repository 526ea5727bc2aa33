"""End to end, issue "LiteLLM as it really runs": nothing lost while the worker restarts.

A client sends LiteLLM-format batches one after another as LiteLLM's generic_api logger does with
the README's settings (`max_retries`, `retry_delay` doubling each time; a connection error, a
timeout or a 5xx is retried, anything else dropped). The worker is SIGKILLed half-way and a new
one started on the same port and data: every call is counted exactly once (a batch the first
worker put in Kafka but never answered is sent again, and counted once by its ids).
"""

from __future__ import annotations

import threading
import time

import httpx
import orjson
import pytest

from tests.conftest import WorkerProcess, wait_for
from tests.e2e.test_e2e_ingest import expected_totals, totals_match
from tests.litellm_payloads import standard_logging_payload

pytestmark = pytest.mark.e2e

TOKEN = "ingest-token-0123456789abcdef"
MAX_RETRIES, RETRY_DELAY_S = 7, 1.0  # 1 + 2 + ... + 64 s: two minutes to come back, on a loaded machine too


def as_native(record: dict) -> dict:
    return {"team": record["metadata"]["user_api_key_team_alias"], "endpoint": record["model_group"],
            "prompt_tokens": record["prompt_tokens"], "completion_tokens": record["completion_tokens"],
            "cost_usd": record["response_cost"] or 0.0, "model": record["model"]}


class RetryingSender(threading.Thread):
    """LiteLLM's generic_api logger flushing batches in turn, with `max_retries` and `retry_delay`."""

    def __init__(self, url: str, batches: list[list[dict]]) -> None:
        super().__init__(daemon=True)
        self.url, self.batches = url, batches
        self.sent = 0
        self.dropped: list[str] = []
        self.retried = 0

    def post(self, body: bytes) -> None:
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = httpx.post(f"{self.url}/ingest/litellm", content=body, timeout=10, headers={
                    "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
                if response.status_code < 500:
                    if response.status_code != 200:
                        self.dropped.append(f"HTTP {response.status_code}")
                    return
            except httpx.TransportError:
                pass
            if attempt == MAX_RETRIES:
                self.dropped.append("retries spent")
                return
            self.retried += 1
            time.sleep(RETRY_DELAY_S * 2 ** attempt)

    def run(self) -> None:
        for batch in self.batches:
            self.post(orjson.dumps(batch))
            self.sent += 1
            time.sleep(0.05)


def test_litellm_batches_sent_across_a_worker_restart_are_each_counted_once(broker, topics, make_worker, tmp_path):
    first = make_worker(SPENDWATCH_INGEST_TOKEN=TOKEN)
    records = [standard_logging_payload(n, failed=n % 10 == 9) for n in range(400)]
    batches = [records[i:i + 10] for i in range(0, len(records), 10)]
    sender = RetryingSender(first.url, batches)
    sender.start()
    wait_for(lambda: sender.sent >= 10, timeout=60, every=0.05, what="ten batches sent")
    first.kill()  # mid-stream: a batch may be in Kafka with its answer never sent
    second = WorkerProcess(env=dict(first.env), port=first.port, log_path=tmp_path / "worker-restarted.log")
    try:
        second.start()
        sender.join(timeout=300)
        assert not sender.is_alive() and sender.dropped == [] and sender.retried >= 1
        expected = expected_totals([as_native(r) for r in records])
        wait_for(lambda: totals_match(second, expected), timeout=90, what="every call counted exactly once")
    finally:
        second.stop()
