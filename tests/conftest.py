"""Shared fixtures: one embedded broker per test session, worker processes, event factories."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from streams.tools.broker import EmbeddedBroker, free_port
from tests.standins import StandIn

ROOT = Path(__file__).resolve().parent.parent
#: Fixtures that start the embedded broker or worker processes: only tests marked e2e may use them.
E2E_FIXTURES = {"broker", "make_worker"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make unit` (-m "not e2e") must never start Tansu: a test that would, unmarked, is an error.

    End-to-end tests run first, those marked `long` first of all: under `pytest -n 5` a long test
    started last would leave the other processes idle while it runs (the order within each part is kept)."""
    for item in items:
        uses = E2E_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses and item.get_closest_marker("e2e") is None:
            raise pytest.UsageError(f"{item.nodeid} uses {sorted(uses)} but is not marked e2e")
    items.sort(key=lambda item: (item.get_closest_marker("e2e") is None, item.get_closest_marker("long") is None))


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@dataclass
class Topics:
    """Fresh topic names for one test: Tansu never deletes, so tests never share topics."""

    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")

    @property
    def env(self) -> dict[str, str]:
        return {
            "SPENDWATCH_APP_ID": f"{self.prefix}-spendwatch",
            "SPENDWATCH_USAGE_TOPIC": f"{self.prefix}.token-usage",
            "SPENDWATCH_GPU_TOPIC": f"{self.prefix}.gpu-metrics",
            "SPENDWATCH_RUNS_TOPIC": f"{self.prefix}.training-runs",
            "SPENDWATCH_OUTCOMES_TOPIC": f"{self.prefix}.outcomes",
            "SPENDWATCH_ALERTS_TOPIC": f"{self.prefix}.alerts",
            "SPENDWATCH_DEAD_LETTER_TOPIC": f"{self.prefix}.dead-letter",
        }

    def __getattr__(self, name: str) -> str:
        key = f"SPENDWATCH_{name.upper()}_TOPIC"
        if key in self.env:
            return self.env[key]
        raise AttributeError(name)


@dataclass
class WorkerProcess:
    """`spendwatch worker` as a real child process, with its own HTTP port and data dir."""

    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)  # sent with each `get`: a bearer token, say

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WorkerProcess:
        # SPENDWATCH_TEST_LOGLEVEL=info keeps Faust's own lines in the worker logs (under pytest's tmp dir).
        log = open(self.log_path, "ab")  # noqa: SIM115 - the worker writes to it for as long as it runs
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "--loglevel", os.environ.get("SPENDWATCH_TEST_LOGLEVEL", "warning"),
             "worker"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"worker did not answer /healthz:\n{self.log_path.read_text()[-3000:]}")

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, headers=self.headers, timeout=10)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def standin() -> Iterator[StandIn]:
    """Slack and PagerDuty stand-ins on 127.0.0.1 (tests/standins.py)."""
    server = StandIn().start()
    yield server
    server.stop()


@pytest.fixture
def topics() -> Topics:
    return Topics()


@pytest.fixture
def make_worker(broker: EmbeddedBroker, topics: Topics, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers for this test's topics; every one is stopped at the end."""
    started: list[WorkerProcess] = []
    broker.create_topics((topics.env[k] for k in topics.env if k.endswith("_TOPIC")), partitions=4)

    def start(**settings: str) -> WorkerProcess:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPENDWATCH_")}
        env.update(topics.env)
        env.update(
            SPENDWATCH_KAFKA_BROKERS=broker.url,
            SPENDWATCH_HTTP_PORT=str(port),
            SPENDWATCH_DATA_DIR=str(tmp_path / f"data-{port}"),
            SPENDWATCH_PARTITIONS="4",
            PYTHONUNBUFFERED="1",
        )
        env.update(settings)
        worker = WorkerProcess(env=env, port=port, log_path=tmp_path / f"worker-{port}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(check: Callable[[], Any], timeout: float = 120.0, every: float = 0.5, what: str = "condition") -> Any:
    """Poll until `check()` returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}"[:2000])


def make_usage(**fields: Any) -> dict[str, Any]:
    """A valid token-usage event; override any field."""
    event: dict[str, Any] = {
        "ts": time.time() - 60, "team": "search", "model": "gpt-4o", "endpoint": "chat-api",
        "prompt_tokens": 1000, "completion_tokens": 200,
    }
    event.update(fields)
    return event
