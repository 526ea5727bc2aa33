"""Silences: "yes, we know, this launch is planned" without a restart (Alertmanager's silences).

A silence matches alerts as a route does (team, endpoint, kind, severity: each named field
must hold one of its values) until `ends_at`. A silenced alert is still raised, recorded
and shown, marked `silenced`; only its delivery is held back. Pure: the worker keeps the
silences on a compacted topic (streams/worker/silences.py) and passes the clock in.

>>> book = SilenceBook()
>>> s = parse_silence({"match": {"team": "search"}, "ends_at": "2026-12-01T12:00:00Z", "comment": "launch",
...                    "created_by": "ana"}, now=rfc3339_to_ts("2026-12-01T10:00:00Z"), silence_id="s1")
>>> book.put(s)
>>> book.silencing({"team": "search", "kind": "flash_spike"}, now=rfc3339_to_ts("2026-12-01T11:00:00Z")).id
's1'
>>> book.silencing({"team": "search"}, now=rfc3339_to_ts("2026-12-01T12:00:00Z")) is None  # over at ends_at
True
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerting.model import MATCHABLE, matches, rfc3339

#: NAME_MAX is streams.input.events.MAX_NAME_CHARS: every name an event may carry can be silenced. Alerting sits
#: below streams and cannot import it; tests/alerting/test_silences.py holds the two together.
COMMENT_MAX, NAME_MAX, VALUES_MAX = 1000, 256, 100
#: The longest a silence may last: a forgotten one must not hide a team's alerts for ever.
LONGEST_S = 90 * 86400


def rfc3339_to_ts(text: str) -> float:
    """An RFC 3339 time with its offset ("Z" or "+02:00") as a Unix time; no offset is an error."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("needs a time zone offset, e.g. 2026-12-01T18:00:00Z")
    return moment.timestamp()


@dataclass(frozen=True)
class Silence:
    id: str
    match: Mapping[str, frozenset[str]]
    ends_at: float
    comment: str
    created_by: str
    created_at: float

    def active(self, now: float) -> bool:
        return self.created_at <= now < self.ends_at

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "match": {name: sorted(values) for name, values in self.match.items()},
            "ends_at": rfc3339(self.ends_at), "comment": self.comment, "created_by": self.created_by,
            "created_at": rfc3339(self.created_at)}
        if now is not None:
            body["state"] = "active" if self.active(now) else "expired"
        return body


class TooManySilences(Exception):
    """The book is full: a new silence would pass `SPENDWATCH_MAX_SILENCES` (HTTP 409)."""


def parse_silence(body: Any, now: float, silence_id: str | None = None) -> Silence:
    """A new silence from a `POST /silences` body; ValueError says what is wrong, and nothing else escapes.

    A body that makes this code raise something it did not foresee is refused like any bad body
    (`internal_error`, with the exception's type, never its text, which may quote the body).
    """
    try:
        return _parse_silence(body, now, silence_id)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - any surprise is this body's fault: a 400, never a 500
        raise ValueError(f"internal_error: {type(exc).__name__}") from None


def _parse_silence(body: Any, now: float, silence_id: str | None) -> Silence:
    if not isinstance(body, dict):
        raise ValueError("a silence is a JSON object")
    unknown = set(body) - {"match", "ends_at", "comment", "created_by"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    match = body.get("match")
    if not isinstance(match, dict) or not match:
        raise ValueError(f"match: an object naming at least one of {', '.join(MATCHABLE)}")
    parsed: dict[str, frozenset[str]] = {}
    for name, values in match.items():
        if name not in MATCHABLE:
            raise ValueError(f"match.{name}: not one of {', '.join(MATCHABLE)}")
        listed = [values] if isinstance(values, str) else values
        if not isinstance(listed, list) or not listed or len(listed) > VALUES_MAX or \
                not all(isinstance(v, str) and 0 < len(v) <= NAME_MAX for v in listed):
            raise ValueError(f"match.{name}: a name or a list of 1 to {VALUES_MAX} names")
        parsed[name] = frozenset(listed)
    if not isinstance(body.get("ends_at"), str):
        raise ValueError("ends_at: an RFC 3339 time, e.g. 2026-12-01T18:00:00Z")
    try:
        ends_at = rfc3339_to_ts(body["ends_at"])
    except ValueError as exc:
        raise ValueError(f"ends_at: {exc}") from None
    if ends_at <= now:
        raise ValueError("ends_at is in the past")
    if ends_at - now > LONGEST_S:
        raise ValueError(f"ends_at: a silence lasts at most {LONGEST_S // 86400} days")
    texts = {}
    for name, limit in (("comment", COMMENT_MAX), ("created_by", NAME_MAX)):
        text = body.get(name)
        if not isinstance(text, str) or not text.strip() or len(text) > limit:
            raise ValueError(f"{name}: required, at most {limit} characters")
        texts[name] = text
    return Silence(id=silence_id or uuid.uuid4().hex, match=parsed, ends_at=ends_at,
                   comment=texts["comment"], created_by=texts["created_by"], created_at=now)


def silence_from_record(record: Mapping[str, Any]) -> Silence:
    """A silence as `Silence.to_json` wrote it to the topic."""
    return Silence(id=record["id"], match={name: frozenset(values) for name, values in record["match"].items()},
                   ends_at=rfc3339_to_ts(record["ends_at"]), comment=record["comment"],
                   created_by=record["created_by"], created_at=rfc3339_to_ts(record["created_at"]))


class SilenceBook:
    """Every silence this worker knows, by id."""

    def __init__(self) -> None:
        self._by_id: dict[str, Silence] = {}

    def put(self, silence: Silence) -> None:
        self._by_id[silence.id] = silence

    def __len__(self) -> int:
        return len(self._by_id)

    def make_room_for(self, silence: Silence, most: int) -> None:
        """TooManySilences when adding `silence` would hold more than `most` (replacing one by its id is free).

        Expired silences count until they are removed, as Alertmanager's --silences.max-silences
        counts them: the cap bounds what every worker holds and what the topic keeps.
        """
        if silence.id not in self._by_id and len(self._by_id) >= most:
            raise TooManySilences(f"{len(self._by_id)} silences are held, the most SPENDWATCH_MAX_SILENCES "
                                  f"allows ({most}); delete one, or wait for expired ones to be removed")

    def expired(self, before: float) -> list[Silence]:
        """The silences that ended at or before `before`: due for removal."""
        return [silence for silence in self._by_id.values() if silence.ends_at <= before]

    def remove(self, silence_id: str) -> Silence | None:
        return self._by_id.pop(silence_id, None)

    def get(self, silence_id: str) -> Silence | None:
        return self._by_id.get(silence_id)

    def __iter__(self) -> Iterator[Silence]:
        return iter(sorted(self._by_id.values(), key=lambda s: (s.created_at, s.id)))

    def silencing(self, alert: Mapping[str, Any], now: float) -> Silence | None:
        """The silence that holds this alert back now, if any."""
        for silence in self:
            if silence.active(now) and matches(silence.match, alert):
                return silence
        return None
