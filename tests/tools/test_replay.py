"""`spendwatch replay`: the detectors over JSONL files, deterministic, with a summary."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from tests.conftest import ROOT
from tests.spiky_traffic import LOOPING_USER, WINDOW_S, recent_start, runaway_run, spiky_usage

pytestmark = pytest.mark.e2e  # runs `spendwatch replay` as a process, as a user would


def write_jsonl(path, events, per_line=1):
    with open(path, "wb") as f:
        for i in range(0, len(events), per_line):
            chunk = events[i:i + per_line]
            f.write(orjson.dumps(chunk if per_line > 1 else chunk[0]) + b"\n")
        f.write(b"this line is not json\n")


def write_workload(tmp_path):
    """The spiky workload as three JSONL files; returns (files by kind, usage, runs, samples)."""
    start = recent_start(12)
    usage = spiky_usage(start)
    runs, samples = runaway_run(start)
    write_jsonl(tmp_path / "usage.jsonl", usage, per_line=50)
    write_jsonl(tmp_path / "gpu.jsonl", samples)
    write_jsonl(tmp_path / "runs.jsonl", runs)
    files = dict(usage=tmp_path / "usage.jsonl", gpu=tmp_path / "gpu.jsonl", runs=tmp_path / "runs.jsonl")
    return files, usage, runs, samples


def replay(tmp_path, name, **files):
    env = {"SPENDWATCH_WINDOW_SECONDS": str(WINDOW_S), "PATH": "/usr/bin:/bin"}
    out = tmp_path / f"{name}.jsonl"
    args = [sys.executable, "-m", "streams.cli", "replay", "--output", str(out)]
    for kind, path in files.items():
        args += [f"--{kind}", str(path)]
    result = subprocess.run(args, capture_output=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    return [orjson.loads(line) for line in out.read_bytes().splitlines()], result.stderr.decode()


def test_replay_raises_a_spike_and_a_runaway_and_is_deterministic(tmp_path):
    files, _, _, _ = write_workload(tmp_path)
    alerts, summary = replay(tmp_path, "first", **files)
    again, _ = replay(tmp_path, "second", **files)
    assert alerts == again
    kinds = [(a["kind"], a["status"], a.get("endpoint") or a.get("run_id")) for a in alerts]
    assert sorted(kinds) == [("flash_spike", "firing", "chat-api"), ("flash_spike", "resolved", "chat-api"),
                             ("runaway_training", "firing", "ft-1")]
    spike = next(a for a in alerts if a["kind"] == "flash_spike" and a["status"] == "firing")
    assert spike["ratio"] >= 10 and spike["team"] == "search"
    assert spike["cause"] == "traffic" and spike["contributors"][0]["dimension"] == "user"
    assert spike["contributors"][0]["value"] == LOOPING_USER and spike["contributors"][0]["share"] >= 0.9
    resolved = next(a for a in alerts if a["kind"] == "flash_spike" and a["status"] == "resolved")
    assert resolved["dedup_key"] == spike["dedup_key"] and resolved["alert_id"] != spike["alert_id"]
    for alert in alerts:
        assert set(alert) >= {"alert_id", "dedup_key", "kind", "status", "severity", "ts", "team", "endpoint",
                              "run_id", "observed", "baseline", "ratio", "unit", "summary"}
    assert "rejected: not_json 3" in summary and "alerts: flash_spike/firing 1" in summary


def test_replay_needs_an_input(tmp_path):
    result = subprocess.run([sys.executable, "-m", "streams.cli", "replay"], capture_output=True, cwd=ROOT)
    assert result.returncode == 2 and b"needs at least one of" in result.stderr
