"""Parsing and validation of the three input kinds (CONTRACT.md)."""

from __future__ import annotations

import orjson
import pytest

from streams.errors import RejectedEvent
from streams.input.events import decode_message, parse_gpu, parse_run, parse_ts, parse_usage

NOW = 1_700_000_000.0


def reason(payload: bytes, parse=parse_usage) -> str:
    accepted, rejected = decode_message(payload, parse, NOW)
    assert not accepted and len(rejected) == 1
    return rejected[0].reason


@pytest.mark.parametrize("value, seconds", [
    (1_699_999_000, 1_699_999_000.0),
    (1_699_999_000_500, 1_699_999_000.5),  # milliseconds
    ("2023-11-14T22:13:20Z", 1_700_000_000.0),
    ("2023-11-14T23:13:20+01:00", 1_700_000_000.0),
])
def test_timestamps_in_every_accepted_form(value, seconds):
    assert parse_ts(value, NOW, 300) == pytest.approx(seconds)


@pytest.mark.parametrize("value, code", [
    ("yesterday", "bad_timestamp"), ("2023-11-14T22:13:20", "bad_timestamp"), (True, "bad_timestamp"),
    (None, "bad_timestamp"), (-5, "bad_timestamp"), (NOW + 3600, "future_timestamp"),
])
def test_bad_timestamps_are_rejected(value, code):
    with pytest.raises(RejectedEvent) as info:
        parse_ts(value, NOW, 300)
    assert info.value.reason == code


def test_usage_defaults_and_alternative_token_names():
    event = parse_usage({"ts": NOW, "team": "t", "model": "m", "input_tokens": 3, "output_tokens": 4,
                         "event_id": 17, "extra": {"kept": "never rejected"}}, NOW)
    assert (event.endpoint, event.prompt_tokens, event.completion_tokens, event.event_id) == ("default", 3, 4, "17")
    assert event.cost_usd is None


def test_cost_alone_is_enough():
    event = parse_usage({"ts": NOW, "team": "t", "model": "m", "cost_usd": 0.25}, NOW)
    assert (event.cost_usd, event.prompt_tokens) == (0.25, 0)


@pytest.mark.parametrize("payload, code", [
    (b"nope", "not_json"),
    (b'"\xff"', "not_utf8"),
    (b"[1]", "not_object"),
    (b"3", "not_object"),
    (b'{"ts": 1700000000, "model": "m", "prompt_tokens": 1, "completion_tokens": 1}', "missing_field"),
    (b'{"ts": 1700000000, "team": "t", "model": "m", "prompt_tokens": 1}', "missing_field"),
    (b'{"ts": 1700000000, "team": 5, "model": "m", "cost_usd": 1}', "wrong_type"),
    (b'{"ts": 1700000000, "team": "t", "model": "m", "prompt_tokens": 1.5, "completion_tokens": 1}', "wrong_type"),
    (b'{"ts": 1700000000, "team": "t", "model": "m", "prompt_tokens": -1, "completion_tokens": 1}', "negative_tokens"),
    (b'{"ts": 1700000000, "team": "t", "model": "m", "cost_usd": -1}', "negative_value"),
    (b'{"ts": 1700000000, "team": "t", "model": "m", "cost_usd": 1, "event_id": [1]}', "wrong_type"),
])
def test_usage_rejections(payload, code):
    assert reason(payload) == code


def test_array_elements_are_judged_alone():
    accepted, rejected = decode_message(
        b'[{"ts": 1700000000, "team": "a", "model": "m", "cost_usd": 1}, 7, {"team": "b"}]', parse_usage, NOW)
    assert [e.team for e in accepted] == ["a"]
    assert [(r.reason, r.index, r.payload) for r in rejected] == [
        ("not_object", 1, b"7"), ("missing_field", 2, b'{"team":"b"}')]


def test_gpu_sample_and_run_event():
    gpu = parse_gpu({"ts": NOW, "team": "t", "run_id": "r", "gpu_id": 3, "gpu_type": "H100", "utilization": 97}, NOW)
    assert (gpu.gpu_id, gpu.gpu_type, gpu.utilization) == ("3", "H100", 97.0)
    run = parse_run({"ts": NOW, "team": "t", "run_id": "r", "status": "started", "estimated_cost_usd": 40000,
                     "gpus": 64, "expected_hours": 48}, NOW)
    assert (run.status, run.estimated_cost_usd, run.gpus) == ("started", 40000.0, 64)
    assert reason(b'{"ts": 1700000000, "team": "t", "run_id": "r", "status": "paused"}', parse_run) == "bad_status"
    assert reason(b'{"ts": 1700000000, "team": "t", "run_id": "r", "gpu_id": "0", "utilization": 140}',
                  parse_gpu) == "out_of_range"


@pytest.mark.parametrize("event, code", [
    ({"cost_usd": 1e308}, "out_of_range"),
    ({"cost_usd": 100_000.01}, "out_of_range"),
    ({"team": "t" * 257}, "out_of_range"),
    ({"endpoint": "e" * 257}, "out_of_range"),
    ({"model": "m" * 10_000}, "out_of_range"),
    ({"team": "a\nb"}, "bad_name"),
    ({"team": "\x00progress"}, "bad_name"),
    ({"prompt_tokens": 2**53 + 2}, "out_of_range"),
])
def test_usage_limits(event, code):
    base = {"ts": NOW - 5, "team": "t", "model": "m", "prompt_tokens": 3, "completion_tokens": 4}
    assert reason(orjson.dumps({**base, **event})) == code
    from streams.input.intake import decode_events
    from streams.input.kinds import USAGE

    accepted, rejected = decode_events(USAGE, orjson.dumps([{**base, **event}]), NOW, 300)  # the msgspec path too
    assert not accepted and rejected[0].reason == code


@pytest.mark.parametrize("event, code", [
    ({"ceiling_usd": 0}, "out_of_range"), ({"estimated_cost_usd": 0}, "out_of_range"),
    ({"ceiling_usd": -5}, "negative_value"), ({"estimated_cost_usd": 1e13}, "out_of_range"),
    ({"expected_hours": 0}, "out_of_range"), ({"gpus": 10**7}, "out_of_range"), ({"run_id": "r" * 300}, "out_of_range"),
])
def test_run_limits(event, code):
    base = {"ts": NOW - 5, "team": "t", "run_id": "r", "status": "started"}
    assert reason(orjson.dumps({**base, **event}), parse_run) == code


@pytest.mark.parametrize("event, code", [
    ({"price_per_gpu_hour_usd": 1e9}, "out_of_range"), ({"interval_s": 1e9}, "out_of_range"),
    ({"gpu_id": "g" * 300}, "out_of_range"), ({"gpu_type": "H\x00"}, "bad_name"),
])
def test_gpu_limits(event, code):
    base = {"ts": NOW - 5, "team": "t", "run_id": "r", "gpu_id": "0"}
    assert reason(orjson.dumps({**base, **event}), parse_gpu) == code


def test_the_msgspec_fast_path_counts_every_event_as_the_full_checks_do() -> None:
    """decode_events tries msgspec first; whatever it accepts must come out as parse_usage makes it."""
    import random

    from streams.input.intake import decode_events
    from streams.input.kinds import USAGE

    rng = random.Random(7)
    now = 1_700_000_000.0
    variants = [
        {"ts": now - 5, "team": "a", "model": "gpt-4o", "prompt_tokens": 10, "completion_tokens": 2},
        {"ts": int(now), "team": "a", "model": "m", "input_tokens": 10, "output_tokens": 0, "provider": ""},
        {"ts": now, "team": "a", "model": "m", "prompt_tokens": None, "input_tokens": 4, "completion_tokens": 1},
        {"ts": now, "team": "a", "model": "m", "prompt_tokens": 1, "completion_tokens": 1, "cost_usd": 3},
        {"ts": now, "team": "a", "model": "m", "prompt_tokens": 1, "completion_tokens": 1, "endpoint": "chat",
         "event_id": "x-1", "provider": "openai", "extra": [1, 2]},
        {"ts": now, "team": "a", "model": "m", "prompt_tokens": 1.0, "completion_tokens": 1},  # full path: 1.0 is 1
        {"ts": now * 1000, "team": "a", "model": "m", "prompt_tokens": 1, "completion_tokens": 1},  # milliseconds
        {"ts": "2023-11-14T22:13:20Z", "team": "a", "model": "m", "prompt_tokens": 1, "completion_tokens": 1},
        {"ts": now, "team": "a", "model": "m", "prompt_tokens": 1, "completion_tokens": 1, "endpoint": None},
        {"ts": now, "team": "a", "model": "m", "prompt_tokens": 1, "completion_tokens": 1, "event_id": 12},
        {"ts": now, "team": "a", "model": "m", "cost_usd": 0.5},
        {"ts": now + 301, "team": "a", "model": "m", "prompt_tokens": 1, "completion_tokens": 1},  # future
        {"ts": now, "team": "", "model": "m", "prompt_tokens": 1, "completion_tokens": 1},
        {"ts": now, "team": "a", "model": "m", "prompt_tokens": -1, "completion_tokens": 1},
        {"ts": True, "team": "a", "model": "m", "prompt_tokens": 1, "completion_tokens": 1},
        # Control characters, which JSON spells as escapes (DEL it may carry raw): the fast path must not skip them.
        {"ts": now, "team": "a\x07", "model": "m", "prompt_tokens": 1, "completion_tokens": 1},
        {"ts": now, "team": "a", "model": "m\x7f", "prompt_tokens": 1, "completion_tokens": 1},
        {"ts": now, "team": "a", "model": "m", "prompt_tokens": 1, "completion_tokens": 1, "user": "u\n"},
        {"ts": now, "team": "\u00e9\"q\"", "model": "m", "prompt_tokens": 1, "completion_tokens": 1},  # escaped, fine
    ]
    from streams.input.events import decode_plain_usage

    assert len(decode_plain_usage(orjson.dumps(variants[:5]), now, 300.0) or []) == 5  # the fast path takes these
    fields = ("ts", "team", "model", "endpoint", "prompt_tokens", "completion_tokens", "cost_usd", "event_id",
              "provider")
    for _ in range(200):
        batch = rng.sample(variants, rng.randint(1, 4))
        payload = orjson.dumps(batch if rng.random() < 0.8 else batch[0])
        if rng.random() < 0.05:
            payload = payload.replace(b'"a"', b'"\xff\xfe"', 1)  # not UTF-8
        fast, fast_rejected = decode_events(USAGE, payload, now, 300.0)
        full, full_rejected = decode_message(payload, parse_usage, now, 300.0)
        assert [[getattr(e, f) for f in fields] for e in fast] == [[getattr(e, f) for f in fields] for e in full]
        assert [(r.reason, r.index) for r in fast_rejected] == [(r.reason, r.index) for r in full_rejected]
