"""CloudEvents 1.0 on the usage topic: structured (one envelope, or a batch array) and binary mode."""

from __future__ import annotations

import base64

import orjson

from streams.input.intake import RawMessage, take_in

NOW = 1_764_590_460.0
TOPICS = {"ai.token-usage": "usage"}


def envelope(n: int, **data_changes) -> dict:
    data = {"model": "gpt-4o", "endpoint": "chat", "prompt_tokens": 100 + n, "completion_tokens": 10, "cost_usd": 0.01}
    data.update(data_changes)
    return {"specversion": "1.0", "id": f"evt-{n}", "source": "//gateway/eu-1", "type": "com.example.ai.usage",
            "subject": "search", "time": "2025-12-01T11:59:00Z", "datacontenttype": "application/json", "data": data}


def intake(*messages: RawMessage):
    return take_in(messages, TOPICS, NOW, 300.0, {"default": 2.5})


def message(value: bytes, offset: int = 0, headers=None) -> RawMessage:
    return RawMessage("ai.token-usage", 0, offset, value, headers)


def rows(result) -> list:
    return [row for part in result.deltas.values() for row in part]


def test_structured_envelopes_alone_and_in_a_batch_are_usage_events():
    result = intake(message(orjson.dumps(envelope(1))), message(orjson.dumps([envelope(2), envelope(3)]), 1))
    assert result.dead_letters == [] and result.accepted == 3
    assert list(result.deltas) == [("search", "ai.token-usage:0")]
    assert sorted(row[3] for row in rows(result)) == [101, 102, 103]  # prompt tokens


def test_binary_mode_takes_its_attributes_from_ce_headers():
    headers = {"ce_specversion": b"1.0", "ce_id": b"evt-9", "ce_source": b"//gateway/eu-1",
               "ce_type": b"com.example.ai.usage", "ce_subject": b"ads", "ce_time": b"2025-12-01T11:59:30Z",
               "content-type": b"application/json"}
    data = {"model": "gpt-4o", "prompt_tokens": 7, "completion_tokens": 3, "cost_usd": 0.002}
    result = intake(message(orjson.dumps(data), headers=headers))
    assert result.dead_letters == [] and list(result.deltas) == [("ads", "ai.token-usage:0")]


def test_what_the_data_says_wins_and_base64_data_is_read():
    explicit = envelope(4, team="ads", ts=NOW - 5, event_id="mine")
    coded = dict(envelope(5), data=None)
    coded.pop("data")
    coded["data_base64"] = base64.b64encode(orjson.dumps(envelope(5)["data"])).decode()
    result = intake(message(orjson.dumps(explicit)), message(orjson.dumps(coded), 1))
    assert result.dead_letters == [] and sorted(team for team, _ in result.deltas) == ["ads", "search"]


def test_a_bad_envelope_is_dead_lettered_with_its_reason_and_its_bytes():
    wrong_version = dict(envelope(6), specversion="0.3")
    no_source = {k: v for k, v in envelope(7).items() if k != "source"}
    xml = dict(envelope(8), datacontenttype="application/xml")
    result = intake(message(orjson.dumps([wrong_version, no_source, xml, envelope(9)])))
    assert result.accepted == 1
    assert [(d.rejection.reason, d.rejection.index) for d in result.dead_letters] == \
        [("bad_cloudevent", 0), ("bad_cloudevent", 1), ("bad_cloudevent", 2)]
    assert orjson.loads(result.dead_letters[0].rejection.payload) == wrong_version
    binary = intake(message(b"not json", headers={"ce_specversion": b"1.0", "ce_id": b"1", "ce_source": b"s",
                                                  "ce_type": b"t"}))
    assert [d.rejection.reason for d in binary.dead_letters] == ["not_json"]
