"""Silences, pure: what a POST may say, what a silence holds back, and when it lets go."""

from __future__ import annotations

import pytest

from alerting.incidents import record, unsilenced
from alerting.silences import SilenceBook, TooManySilences, parse_silence, rfc3339_to_ts, silence_from_record
from streams.input.events import MAX_NAME_CHARS

NOW = rfc3339_to_ts("2026-12-01T10:00:00Z")


def body(**changes):
    fields = {"match": {"team": "search", "endpoint": ["chat-api", "rerank"]}, "ends_at": "2026-12-01T14:00:00+02:00",
              "comment": "launch of the new search", "created_by": "ana@example.com"}
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def alert(team="search", endpoint="chat-api", kind="flash_spike"):
    return {"alert_id": "a1", "dedup_key": "k1", "status": "firing", "team": team, "endpoint": endpoint,
            "kind": kind, "severity": "error"}


def test_a_silence_holds_back_what_it_matches_until_it_ends():
    book = SilenceBook()
    silence = parse_silence(body(), now=NOW)
    book.put(silence)
    assert silence.ends_at == NOW + 2 * 3600  # 14:00 at +02:00 is 12:00Z
    assert book.silencing(alert(), NOW + 60) is silence
    assert book.silencing(alert(endpoint="rerank"), NOW + 60) is silence
    assert book.silencing(alert(endpoint="embed"), NOW + 60) is None
    assert book.silencing(alert(team="ads"), NOW + 60) is None
    assert book.silencing(alert(), NOW + 2 * 3600) is None
    assert book.silencing(alert(), NOW - 1) is None  # not before it was made


def test_the_record_on_the_topic_reads_back_the_same():
    silence = parse_silence(body(), now=NOW)
    again = silence_from_record(silence.to_json())
    assert again == silence
    assert silence.to_json(NOW)["state"] == "active" and silence.to_json(NOW + 7200)["state"] == "expired"


@pytest.mark.parametrize(("changes", "says"), [
    ({"match": {}}, "match: an object naming at least one"),
    ({"match": {"tem": "search"}}, "match.tem: not one of"),
    ({"match": {"team": []}}, "match.team: a name or a list"),
    ({"ends_at": "2026-12-01T09:00:00Z"}, "ends_at is in the past"),
    ({"ends_at": "2026-12-01T12:00:00"}, "needs a time zone offset"),
    ({"ends_at": "tomorrow"}, "ends_at: "),
    ({"ends_at": "2027-12-01T12:00:00Z"}, "at most 90 days"),
    ({"comment": None}, "comment: required"),
    ({"created_by": "  "}, "created_by: required"),
    ({"extra": 1}, "unknown fields ['extra']"),
])
def test_a_bad_silence_is_refused_with_the_reason(changes, says):
    with pytest.raises(ValueError, match=None) as info:
        parse_silence(body(**changes), now=NOW)
    assert says in str(info.value)


def test_an_incident_silenced_when_it_fired_is_let_through_once_when_its_silence_ends():
    incidents: dict = {}
    record(incidents, dict(alert(), silenced=True), now=NOW)
    assert unsilenced(incidents, lambda a: False) == []  # still silenced
    [released] = unsilenced(incidents, lambda a: True)
    assert released["silenced"] is False and released["dedup_key"] == "k1" and released["alert_id"] != "a1"
    record(incidents, released, now=NOW + 5)  # read back from the topic: the incident is announced
    assert unsilenced(incidents, lambda a: True) == []


# Issue "Poison": silences that stay small and take every name an event may carry.


def test_past_max_silences_a_new_silence_is_refused_and_one_replacing_a_held_id_is_not():
    book = SilenceBook()
    for n in range(3):
        silence = parse_silence(body(), now=NOW, silence_id=f"s{n}")
        book.make_room_for(silence, most=3)
        book.put(silence)
    with pytest.raises(TooManySilences, match="SPENDWATCH_MAX_SILENCES"):
        book.make_room_for(parse_silence(body(), now=NOW, silence_id="s3"), most=3)
    book.make_room_for(parse_silence(body(ends_at="2026-12-01T20:00:00Z"), now=NOW, silence_id="s1"), most=3)
    book.remove("s0")
    book.make_room_for(parse_silence(body(), now=NOW, silence_id="s3"), most=3)


def test_an_ended_silence_is_due_for_removal_once_its_retention_has_passed():
    book = SilenceBook()
    book.put(parse_silence(body(ends_at="2026-12-01T11:00:00Z"), now=NOW, silence_id="short"))
    book.put(parse_silence(body(ends_at="2026-12-01T18:00:00Z"), now=NOW, silence_id="long"))
    retention = 600
    assert book.expired(rfc3339_to_ts("2026-12-01T11:05:00Z") - retention) == []  # ended, still listed
    assert [s.id for s in book.expired(rfc3339_to_ts("2026-12-01T11:10:00Z") - retention)] == ["short"]


def test_a_silence_takes_every_name_an_event_may_carry():
    longest = "t" * MAX_NAME_CHARS
    silence = parse_silence(body(match={"team": longest, "endpoint": longest}, created_by=longest), now=NOW)
    assert silence.match["team"] == frozenset({longest}) and silence_from_record(silence.to_json()) == silence
    with pytest.raises(ValueError, match=r"match\.team"):
        parse_silence(body(match={"team": longest + "t"}), now=NOW)


@pytest.mark.parametrize("bad", [
    [], "x", None, {"match": "search"}, {"match": {"team": [1]}}, {"match": {"team": "a"}, "ends_at": 5},
    body(ends_at="0001-01-01T00:00:00+23:59"), body(ends_at="9999-12-31T23:59:59-23:59"), body(comment=["x"]),
    body(match={"team": {"a": 1}}), body(match={"team": ["a", None]}),
])
def test_a_silence_body_is_refused_with_a_value_error_and_nothing_else(bad):
    with pytest.raises(ValueError):
        parse_silence(bad, now=NOW)


def test_an_unforeseen_error_while_judging_a_silence_body_is_a_value_error_naming_only_its_type():
    class Hostile(dict):  # a body whose own methods raise: what the parser could not foresee
        def get(self, *args):
            raise RecursionError("secret text from the body")

    with pytest.raises(ValueError, match=r"^internal_error: RecursionError$"):
        parse_silence(Hostile(body()), now=NOW)
