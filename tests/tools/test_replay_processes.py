"""`spendwatch replay --processes N`: teams shared among forked processes raise the same alerts as one process."""

from __future__ import annotations

import io

import orjson
import pytest

from streams.settings import Settings
from streams.tools import replay as replay_module
from tests.spiky_traffic import WINDOW_S, many_teams_usage, recent_start, runaway_run


def replayed(processes: int, usage: list[dict], runs: list[dict], samples: list[dict]) -> tuple[bytes, bytes, int]:
    inputs = {"usage": io.BytesIO(b"\n".join(orjson.dumps(usage[i:i + 25]) for i in range(0, len(usage), 25))),
              "gpu": io.BytesIO(b"\n".join(orjson.dumps(sample) for sample in samples)),
              "runs": io.BytesIO(b"\n".join(orjson.dumps(run) for run in runs))}
    output, actions = io.BytesIO(), io.BytesIO()
    settings = Settings(_env_file=None, window_seconds=WINDOW_S,
                        actions={"*": {"executor": ["kubernetes"]}})
    summary = replay_module.replay(inputs, output, settings, now=recent_start(0) + 600, actions=actions,
                                   processes=processes)
    return output.getvalue(), actions.getvalue(), summary.duplicates


def test_any_number_of_processes_raises_the_same_alerts_and_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_module, "PARALLEL_MIN_ROWS", 0)  # this workload is small: fork anyway
    start = recent_start(14)
    usage = many_teams_usage(start, teams=5)
    usage += usage[:40]  # repeated event_ids, counted once whichever process has their team
    runs, samples = runaway_run(start)
    alone = replayed(1, usage, runs, samples)
    alerts = [orjson.loads(line) for line in alone[0].splitlines()]
    assert {alert["team"] for alert in alerts if alert["kind"] == "flash_spike"} == {f"team-{n}" for n in range(5)}
    assert any(alert["kind"] == "runaway_training" for alert in alerts)
    assert alone[1] and alone[2] == 40  # commands raised, repeats found
    for processes in (2, 3, 8):
        assert replayed(processes, usage, runs, samples) == alone
