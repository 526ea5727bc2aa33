"""The invariant: the live worker's totals, windows and alerts equal `spendwatch replay`'s, whatever Kafka does.

Ten hours of usage, GPU samples and training runs (tests/backlog.py: 123k events, 13 keys)
wait in four partitions per input topic before any worker starts, so every worker meets them
as a backlog, reads partitions unevenly, and must still judge them in event-time order. The
reference is replay's own code run over the same events in this process.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from streams.settings import Settings
from streams.state.ledger import TEAM_ACCOUNT, spend_view
from tests.backlog import Backlog, expected, generate
from tests.conftest import wait_for
from tests.e2e.test_e2e_ingest import metric
from tests.kafka_helpers import publish, read_all

pytestmark = pytest.mark.e2e

SETTINGS = Settings(_env_file=None)


def publish_backlog(broker: Any, topics: Any, backlog: Backlog, seed: int) -> None:
    messages = backlog.messages(seed)
    publish(broker.bootstrap, topics.runs, messages["runs"])
    publish(broker.bootstrap, topics.gpu, messages["gpu"])
    publish(broker.bootstrap, topics.usage, messages["usage"])


def spend_views(ledgers: dict[str, Any]) -> dict[tuple[str, str | None], dict[str, Any]]:
    """What `/spend` must show for every key (replay's ledgers through the view `/spend` uses): the total, with
    its categories, and the recent windows."""
    window_s = SETTINGS.window_seconds
    views = {}
    for team, ledger in ledgers.items():
        for endpoint in ledger["accounts"]:
            key = (team, None if endpoint == TEAM_ACCOUNT else endpoint)
            view = spend_view(ledger, team, key[1], window_s)
            views[key] = {"total": view["total"], "windows": view["windows"]}
    return views


def differences(worker: Any, views: dict[tuple[str, str | None], dict[str, Any]]) -> list[str]:
    """What `/spend` shows that replay does not, key by key (empty when they agree)."""
    out = []
    for (team, endpoint), want in views.items():
        params = {"team": team} if endpoint is None else {"team": team, "endpoint": endpoint}
        response = worker.get("/spend", **params)
        if response.status_code != 200:
            out.append(f"{team}/{endpoint}: HTTP {response.status_code}")
            continue
        got = response.json()
        if got["total"] != want["total"]:
            out.append(f"{team}/{endpoint}: total {got['total']} != replay {want['total']}")
        elif got["windows"] != want["windows"]:
            wrong = [(g, w) for g, w in zip(got["windows"], want["windows"], strict=False) if g != w]
            out.append(f"{team}/{endpoint}: {len(wrong)} windows differ, e.g. {wrong[:1]} "
                       f"({len(got['windows'])} vs {len(want['windows'])} windows)")
    return out


def matches_replay(worker: Any, views: dict[tuple[str, str | None], dict[str, Any]]) -> bool:
    return not differences(worker, views)


def identity(alert: dict[str, Any]) -> tuple[Any, ...]:
    return (alert["alert_id"], alert["kind"], alert["status"], alert["ts"], alert["observed"], alert["baseline"])


def live_alerts(broker: Any, topics: Any, at_least: int) -> set[tuple[Any, ...]]:
    """Every alert on the alerts topic (a step redone after a crash may publish one twice: same id)."""
    import orjson

    return {identity(orjson.loads(r.value)) for r in read_all(broker.bootstrap, topics.alerts, expected=at_least)}


def assert_same_as_replay(broker: Any, topics: Any, worker: Any, ledgers: dict[str, Any],
                          alerts: list[dict[str, Any]]) -> None:
    views = spend_views(ledgers)
    try:
        wait_for(lambda: matches_replay(worker, views), timeout=300, every=2.0,
                 what=f"totals and windows of {len(views)} keys equal to replay's")
    except AssertionError:
        heading = (f"not as replay after 300 s (out of order: "
                   f"{metric(worker, 'spendwatch_out_of_order_events_total')}, late: "
                   f"{metric(worker, 'spendwatch_late_events_total')}):")
        raise AssertionError("\n".join([heading, *differences(worker, views)])) from None
    run = worker.get("/runs/ft-backlog").json()
    assert run["cost_usd"] == round(ledgers["research"]["runs"]["ft-backlog"]["cost_usd"], 6)
    want = {identity(a) for a in alerts}
    got = live_alerts(broker, topics, at_least=len(want))
    assert got == want, f"live only: {sorted(got - want)}; replay only: {sorted(want - got)}"


@pytest.fixture(scope="module")
def backlog() -> tuple[Backlog, dict[str, Any], list[dict[str, Any]]]:
    events = generate(seed=3)
    ledgers, alerts = expected(events, SETTINGS)
    assert sum(a["status"] == "firing" for a in alerts) == 5  # four flash spikes and the runaway run
    return events, ledgers, alerts


def test_a_backlog_over_four_partitions_is_judged_as_replay_judges_it(broker, topics, make_worker, backlog):
    events, ledgers, alerts = backlog
    publish_backlog(broker, topics, events, seed=1)
    worker = make_worker()
    assert_same_as_replay(broker, topics, worker, ledgers, alerts)
    assert metric(worker, "spendwatch_out_of_order_events_total") == 0
    assert metric(worker, "spendwatch_late_events_total") == 0


def test_two_workers_one_killed_mid_catch_up_and_restarted_end_as_replay(broker, topics, make_worker, backlog):
    events, ledgers, alerts = backlog
    publish_backlog(broker, topics, events, seed=2)
    first, second = make_worker(SPENDWATCH_BATCH_SIZE="200"), make_worker(SPENDWATCH_BATCH_SIZE="200")
    wait_for(lambda: metric(second, "spendwatch_ingest_batches_total") >= 5, every=0.1,
             what="the second worker to be catching up")
    second.kill()
    time.sleep(2)
    again = make_worker()
    assert_same_as_replay(broker, topics, first, ledgers, alerts)
    assert matches_replay(again, spend_views(ledgers))  # either worker answers for every key
