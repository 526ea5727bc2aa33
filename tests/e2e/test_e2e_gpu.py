"""End to end, issue "GPU": `spendwatch scrape` reads a dcgm-exporter page served over HTTP whose GPUs serve an
endpoint (a vLLM container) and train a model; `/spend` shows both categories, adding up to each team's total,
and the serving GPUs that do no work raise one `gpu_idle` on the Slack stand-in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from tests.conftest import ROOT, wait_for
from tests.kafka_helpers import publish
from tests.standins import StandIn

pytestmark = pytest.mark.e2e

SERVING_GPU = "GPU-c7d1e3f5-2a4b-4c6d-8e0f-1a3b5c7d9e02"
# GPU 2 becomes a vLLM replica of search's chat-vllm Deployment, doing almost no work (2% engine active).
PAGE = re.sub(r'(DCGM_FI_PROF_GR_ENGINE_ACTIVE\{gpu="2"[^}]*\}) [0-9.]+', r"\1 0.02",
              (ROOT / "tests" / "fixtures" / "dcgm_exporter_metrics.txt").read_text()
              .replace('container="embedder"', 'container="vllm"')
              .replace('pod="embed-batch-2"', 'pod="chat-vllm-7d9f8c6b5-x2x9q"')).encode()


class Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args) -> None:
        return None


def test_a_scrape_of_serving_and_training_gpus_shows_both_categories_and_raises_gpu_idle(
        broker, topics, make_worker, standin: StandIn):
    worker = make_worker(SPENDWATCH_SLACK_WEBHOOK_URL=f"{standin.url}/services/T0/B0/secret")
    now = time.time()
    # The same replica's last 45 minutes, as earlier scrapes published them: idle all along.
    history = [{"ts": now - 45 * 60 + n * 30, "team": "search", "endpoint": "chat-vllm", "gpu_id": SERVING_GPU,
                "gpu_type": "H100", "utilization": 2.0, "interval_s": 30} for n in range(88)]
    calls = [{"ts": now - 40 * 60 + n * 20, "team": "search", "endpoint": "chat-vllm", "model": "llama-3.1-8b",
              "prompt_tokens": 300, "completion_tokens": 50, "cost_usd": 0.0001} for n in range(100)]
    publish(broker.bootstrap, topics.gpu, [(0, orjson.dumps(history))])
    publish(broker.bootstrap, topics.usage, [(0, orjson.dumps(calls))])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Exporter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SPENDWATCH_")}, **topics.env}
        done = subprocess.run(
            [sys.executable, "-m", "streams.cli", "scrape", "--url", f"http://127.0.0.1:{server.server_port}/metrics",
             "--every", "1", "--times", "2", "--brokers", broker.bootstrap],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr[-2000:]
    assert "published 6 GPU samples" in done.stdout

    def categories(team: str) -> dict[str, float] | None:
        response = worker.get("/spend", team=team)
        return response.json()["total"]["categories"] if response.status_code == 200 else None

    # 88 samples of 30 s at $4/h ($2.93), then the scrapes'.
    search = wait_for(lambda: (c := categories("search")) and c["inference_serving"] > 2.9 and c,
                      what="search's serving GPUs, history and scrapes")
    assert search["api_tokens"] == pytest.approx(100 * 0.0001) and search["training"] == 0.0
    research = wait_for(lambda: (c := categories("research")) and c["training"] > 0 and c,
                        what="research's training GPUs from the scrape")
    assert research["inference_serving"] == 0.0 and research["api_tokens"] == 0.0
    for team in ("search", "research"):
        total = worker.get("/spend", team=team).json()["total"]
        assert total["cost_usd"] == sum(total["categories"].values())
    chat = worker.get("/spend", team="search", endpoint="chat-vllm").json()
    assert chat["serving_usd_per_million_tokens"] > 0

    idle = wait_for(lambda: [m for m in standin.of("slack") if "Idle GPUs" in m.get("text", "")],
                    what="gpu_idle on Slack")
    assert len(idle) == 1 and "chat-vllm" in idle[0]["text"]
    alerts = worker.get("/alerts").json()["alerts"]
    (alert,) = [a for a in alerts if a["kind"] == "gpu_idle"]
    assert alert["team"] == "search" and alert["endpoint"] == "chat-vllm" and alert["gpus"] == 1
    assert alert["idle_usd_per_hour"] == 4.0
    assert standin.violations == []
