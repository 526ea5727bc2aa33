"""Poison at the input boundary (issue "Poison"), one named test per defect; each failed before its fix."""

from __future__ import annotations

import io
import time

import orjson
import pytest

from streams.errors import RejectedEvent
from streams.input.commands import parse_command
from streams.input.events import INTERNAL_ERROR
from streams.input.intake import RawMessage, take_in
from streams.settings import Settings
from streams.tools.replay import replay

NOW = time.time()
TOPICS = {"usage": "usage", "gpu": "gpu", "runs": "runs"}


def usage(**fields: object) -> dict:
    return {"ts": NOW - 60, "team": "search", "model": "gpt-4o", "prompt_tokens": 10, "completion_tokens": 2,
            **fields}


def intake(*events: dict) -> object:
    return take_in([RawMessage("usage", 0, n, orjson.dumps(e)) for n, e in enumerate(events)], TOPICS, NOW, 300.0,
                   {"default": 2.0})


def test_an_estimated_cost_over_the_cap_is_out_of_range_like_a_stated_one() -> None:
    """Before: 2**53 prompt tokens of gpt-4o were counted at about $2.25e10 and tripped every budget."""
    taken = intake(usage(prompt_tokens=2**53), usage(event_id="fine"))
    assert taken.accepted == 1
    [dead] = taken.dead_letters
    assert dead.rejection.reason == "out_of_range" and "SPENDWATCH_MAX_EVENT_COST_USD" in dead.rejection.detail


def test_replay_refuses_the_same_computed_cost_and_counts_the_rest() -> None:
    """The worker and replay refuse the same events: the cap is applied where rows are built, in both."""
    lines = b"\n".join(orjson.dumps(e) for e in (usage(prompt_tokens=2**53), usage(event_id="fine")))
    summary = replay({"usage": io.BytesIO(lines)}, io.BytesIO(), Settings(), now=NOW)
    assert summary.events["usage"] == 1 and summary.rejected == {"out_of_range": 1}


def test_an_event_id_longer_than_any_name_is_out_of_range_on_both_decode_paths() -> None:
    """Before: one long id made a LiteLLM batch too large to send, and every retry answered 500."""
    plain = intake(usage(event_id="x" * 257))
    rfc3339 = intake(usage(event_id="x" * 257, ts="2026-12-07T00:00:00Z"))
    assert [d.rejection.reason for d in plain.dead_letters + rfc3339.dead_letters] == ["out_of_range"] * 2
    assert intake(usage(event_id="x" * 256)).accepted == 1


def test_an_element_our_code_did_not_foresee_is_an_internal_error_naming_only_its_type(monkeypatch) -> None:
    """A stand-in for a bug of ours (monkeypatched: a real one is what the fuzz suite looks for)."""
    import streams.input.kinds as kinds

    def broken(at: int, event: object, context: object) -> object:
        raise ZeroDivisionError("secret value 1234")

    usage_kind = kinds.KINDS["usage"]
    monkeypatch.setitem(kinds.KINDS, "usage", type(usage_kind)(**{**usage_kind.__dict__, "to_row": broken}))
    taken = intake(usage(), usage())
    assert [(d.rejection.reason, d.rejection.detail) for d in taken.dead_letters] == \
        [(INTERNAL_ERROR, "ZeroDivisionError")] * 2


@pytest.mark.parametrize("command, why", [
    ({"action_id": "a", "action": "format_disk", "team": "t", "dry_run": True, "ts": "x"}, "action"),
    ({"action_id": "a", "action": "block_team", "team": "t", "ts": "x"}, "dry_run"),
    ({"action_id": "a", "action": ["block_team"], "team": "t", "dry_run": True, "ts": "x"}, "action"),
    ({"action_id": "a", "action": "stop_run", "team": "t", "dry_run": False, "ts": "x"}, "run_id"),
    ({"action_id": "a", "action": "block_team", "team": "t\n", "dry_run": False, "ts": "x"}, "team"),
])
def test_a_malformed_command_is_a_bad_command_not_a_crash(command: dict, why: str) -> None:
    """Before: an unknown action or a missing dry_run raised in the execute agent, which is crash-only."""
    with pytest.raises(RejectedEvent) as refused:
        parse_command(orjson.dumps(command))
    assert refused.value.reason == "bad_command" and why in refused.value.detail
