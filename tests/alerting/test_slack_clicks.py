"""Slack clicks, pure (issue "Poison"): what a click turns into, once, and what it may never do.

The live path (signature, the silences topic, the message rewrite) is in
tests/e2e/test_e2e_silences.py; here each decision alone, as any worker would make it.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import orjson
import pytest

from alerting.silences import SilenceBook, rfc3339_to_ts
from alerting.slack import ACKNOWLEDGE, SILENCE, incident_buttons
from alerting.slack_clicks import (
    REFUSED,
    SILENCE_S,
    STALE_S,
    AcceptedClicks,
    note,
    parse_click,
    refused,
    silence_for_click,
)
from streams.input.events import MAX_NAME_CHARS

STAMP = int(rfc3339_to_ts("2026-12-01T10:00:00Z"))


def incident(**changes: Any) -> dict[str, Any]:
    return {"dedup_key": "k" * 32, "team": "search", "endpoint": "chat", "kind": "flash_spike", "severity": "error",
            "alert_id": "a1", **changes}


def payload(action: str = SILENCE, user: str = "ana", **changes: Any) -> dict[str, Any]:
    buttons = incident_buttons(incident(**changes))
    [button] = [e for e in buttons["elements"] if e["action_id"] == action]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Flash spike"}}, buttons,
              {"type": "context", "elements": [{"type": "mrkdwn", "text": "sw"}]}]
    return {"type": "block_actions", "user": {"id": "U1", "username": user}, "channel": {"id": "C1"},
            "message": {"ts": "1700000000.000100", "blocks": blocks},
            "actions": [{"action_id": action, "value": button["value"], "type": "button"}]}


def form(body: Any) -> bytes:
    return urllib.parse.urlencode({"payload": orjson.dumps(body).decode()}).encode()


def click(**changes: Any):
    return parse_click(form(payload(**changes)))


def test_a_repeated_silence_click_on_an_incident_extends_its_silence():
    book = SilenceBook()
    first, new = silence_for_click(click(), STAMP, STAMP + 1, book)
    assert new and first.ends_at == STAMP + SILENCE_S
    book.put(first)
    later, new = silence_for_click(click(user="ben"), STAMP + 600, STAMP + 601, book)
    assert new and later.id == first.id and later.ends_at == STAMP + 600 + SILENCE_S
    assert later.created_by == "ana" and "extended by ben" in later.comment
    book.put(later)
    assert len(book) == 1
    # Another incident of the same key gets a silence of its own.
    other, _ = silence_for_click(click(dedup_key="other"), STAMP + 700, STAMP + 701, book)
    assert other.id != first.id


def test_a_replayed_click_writes_nothing_and_any_worker_makes_the_same_silence():
    book = SilenceBook()
    silence, _ = silence_for_click(click(), STAMP, STAMP + 2, book)
    book.put(silence)
    assert silence_for_click(click(), STAMP, STAMP + 200, book) == (silence, False)  # replayed 200 s later
    # A worker that has not read the first one yet writes the identical record, so the topic is unchanged.
    assert silence_for_click(click(), STAMP, STAMP + 3, SilenceBook()) == (silence, True)
    # An older click replayed after a newer one never moves the end back.
    newer, _ = silence_for_click(click(), STAMP + 60, STAMP + 61, book)
    book.put(newer)
    assert silence_for_click(click(), STAMP, STAMP + 120, book) == (newer, False)
    assert note(click(), STAMP, silence) == note(click(), STAMP, silence)


def test_a_worker_takes_a_signed_request_once_for_as_long_as_slack_would_accept_it():
    accepted = AcceptedClicks(most=2)
    assert accepted.first_time("v0=aa", STAMP, STAMP)
    assert not accepted.first_time("v0=aa", STAMP, STAMP + STALE_S)  # the replay, at the verifier's limit
    assert accepted.first_time("v0=bb", STAMP, STAMP + 1)
    assert accepted.first_time("v0=cc", STAMP, STAMP + 2)  # over `most`: the oldest is let go
    assert accepted.first_time("v0=aa", STAMP + STALE_S + 5, STAMP + STALE_S + 5)


def test_a_click_after_the_silence_ended_makes_a_new_one_never_reviving_the_old_id():
    book = SilenceBook()
    old, _ = silence_for_click(click(), STAMP, STAMP, book)
    book.put(old)
    ended = old.ends_at + 60
    fresh, new = silence_for_click(click(), int(ended), ended, book)
    assert new and fresh.id != old.id and fresh.active(ended)


def test_a_click_for_a_long_name_silences_it_and_a_bad_value_is_refused_with_a_reason():
    longest = "t" * MAX_NAME_CHARS
    silence, _ = silence_for_click(click(team=longest, endpoint=longest), STAMP, STAMP, SilenceBook())
    assert silence.match["team"] == frozenset({longest})
    for bad, says in [({"team": ""}, "match.team"), ({"team": longest + "t"}, "match.team"),
                      ({"endpoint": 5}, "match.endpoint"), ({"user": "u" * 300}, "created_by")]:
        with pytest.raises(ValueError, match=says):
            silence_for_click(click(**bad), STAMP, STAMP, SilenceBook())


def good_payload() -> dict[str, Any]:
    return payload()


@pytest.mark.parametrize("bad", [
    b"", b"payload", b"other=1", form([]), form("x"), form({"type": "block_actions"}),
    form({**good_payload(), "actions": ["silence_4h"]}), form({**good_payload(), "actions": []}),
    form({**good_payload(), "actions": [{"action_id": ["x"]}]}),
    form({**good_payload(), "actions": [{"action_id": SILENCE, "value": 5}]}),
    form({**good_payload(), "actions": [{"action_id": SILENCE, "value": "[1]"}]}),
    form({**good_payload(), "actions": [{"action_id": SILENCE, "value": "{"}]}),
    form({**good_payload(), "user": "ana"}), form({**good_payload(), "channel": ["C1"]}),
    form({**good_payload(), "message": "hi"}), form({**good_payload(), "message": {"blocks": {"a": 1}}}),
    form({**good_payload(), "message": {"blocks": ["x"]}}),
    form({**good_payload(), "message": {"blocks": [{"type": "actions", "elements": "x"}]}}),
    b"\xff\xfe", b"payload=%FF",
])
def test_a_malformed_click_is_a_value_error_never_another_exception(bad):
    with pytest.raises(ValueError):
        parse_click(bad)


def test_an_unforeseen_error_while_judging_a_click_is_a_value_error_naming_only_its_type(monkeypatch):
    # A stand-in for a surprise in the parser (monkeypatch, unavoidable): no payload is known to
    # raise one now (several above did before), so the decoder is made to raise what nothing catches.
    def boom(*args: Any) -> Any:
        raise RecursionError("text quoting the payload")

    monkeypatch.setattr("alerting.slack_clicks.orjson.loads", boom)
    with pytest.raises(ValueError, match=r"^internal_error: RecursionError$"):
        parse_click(form(good_payload()))


def test_a_refused_click_says_why_on_the_message_and_keeps_the_buttons():
    blocks = refused(click(), "2 silences are held")
    again = refused(parse_click(form({**good_payload(), "message": {"ts": "1", "blocks": blocks}})), "still full")
    texts = [e.get("text") for b in again if b["type"] == "context" for e in b["elements"]]
    assert [t for t in texts if t.startswith(REFUSED)] == [f"{REFUSED}: still full"]  # one note, the latest
    assert [e["action_id"] for b in again if b["type"] == "actions" for e in b["elements"]] == [ACKNOWLEDGE, SILENCE]


def test_a_click_on_view_is_told_apart_and_asks_nothing():
    from urllib.parse import urlencode

    from alerting.slack_clicks import is_view_click

    view = {"type": "block_actions", "actions": [{"action_id": "view_incident", "type": "button",
                                                  "url": "https://spendwatch.example.com/?incident=abc"}]}
    assert is_view_click(urlencode({"payload": orjson.dumps(view).decode()}).encode())
    assert not is_view_click(b"payload=%7B%7D") and not is_view_click(b"\xff")
