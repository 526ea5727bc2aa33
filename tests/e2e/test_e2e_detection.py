"""End to end: the live worker raises the same alerts as `spendwatch replay` for the same events."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import wait_for
from tests.kafka_helpers import publish, read_all
from tests.spiky_traffic import WINDOW_S
from tests.tools.test_replay import replay, write_workload

pytestmark = pytest.mark.e2e


def identity(alert):
    return (alert["alert_id"], alert["kind"], alert["status"], alert["ts"], alert["dedup_key"],
            alert["observed"], alert["baseline"])


def test_live_worker_and_replay_raise_the_same_alerts(broker, topics, make_worker, tmp_path):
    files, usage, runs, samples = write_workload(tmp_path)
    expected, _ = replay(tmp_path, "replayed", **files)
    assert len(expected) == 3

    worker = make_worker(SPENDWATCH_WINDOW_SECONDS=str(WINDOW_S))
    # Same order as the replay sees: the run is announced before its samples arrive.
    publish(broker.bootstrap, topics.runs, [(0, orjson.dumps(e)) for e in runs])
    wait_for(lambda: worker.get("/runs/ft-1").status_code == 200, what="the run to be known")
    publish(broker.bootstrap, topics.gpu, [(0, orjson.dumps(e)) for e in samples])
    publish(broker.bootstrap, topics.usage, [(0, orjson.dumps(usage[i:i + 50])) for i in range(0, len(usage), 50)])

    records = read_all(broker.bootstrap, topics.alerts, expected=len(expected), timeout_s=120)
    live = [orjson.loads(r.value) for r in records]
    assert sorted(map(identity, live)) == sorted(map(identity, expected))
    shown = wait_for(lambda: worker.get("/alerts").json()["alerts"], what="/alerts")
    assert sorted(a["alert_id"] for a in shown) == sorted(a["alert_id"] for a in expected)
    run = worker.get("/runs/ft-1").json()
    assert run["status"] == "running" and run["gpus_active"] == 8 and run["estimated_cost_usd"] == 16.0
