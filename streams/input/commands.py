"""Commands on the actions topic (CONTRACT.md, `spendwatch.actions`), checked before anything acts on them.

Anyone who can write to the topic can put a command there, so the `execute` agent takes nothing
on trust: a message that is not a well-formed command is rejected with `bad_command` and
dead-lettered, and the agent goes on (streams/worker/actions.py).

>>> parse_command(b'{"action_id": "a1", "action": "block_team", "team": "ads", "reason": "spent",'
...               b' "alert_id": "x", "dry_run": false, "ts": "2026-12-01T10:00:00Z"}')["action"]
'block_team'
>>> parse_command(b'{"action_id": "a1", "action": "format_disk", "team": "ads", "dry_run": true, "ts": "t"}')
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
streams.errors.RejectedEvent: bad_command: action must be one of block_team, restrict_models, stop_run, ...
"""

from __future__ import annotations

from typing import Any

import orjson

from streams.errors import RejectedEvent
from streams.input.events import _CONTROL, MAX_NAME_CHARS

#: The actions an executor can carry out (alerting/actions.py describes each).
ACTIONS = frozenset({"block_team", "unblock_team", "stop_run", "throttle_endpoint", "restrict_models"})
#: The most models a restrict_models command may list.
MAX_MODELS = 1000
#: Free text a command carries (its reason): longer is cut, never refused.
MAX_REASON_CHARS = 2000

Command = dict[str, Any]


def _name(command: Command, field: str, required: bool = True) -> None:
    value = command.get(field)
    if value is None and not required:
        return
    if not isinstance(value, str) or not value:
        raise RejectedEvent("bad_command", f"{field} must be a non-empty string")
    if len(value) > MAX_NAME_CHARS or not _CONTROL.isdisjoint(value):
        raise RejectedEvent("bad_command", f"{field} must be at most {MAX_NAME_CHARS} characters, with no control "
                                           "characters")


def parse_command(value: bytes | None) -> Command:
    """The command in one message; raises `RejectedEvent("bad_command", ...)` saying what is wrong."""
    try:
        command = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        raise RejectedEvent("bad_command", "not JSON") from None
    if not isinstance(command, dict):
        raise RejectedEvent("bad_command", "a command is a JSON object")
    if not isinstance(command.get("action"), str) or command["action"] not in ACTIONS:
        raise RejectedEvent("bad_command", f"action must be one of {', '.join(sorted(ACTIONS))}")
    for field in ("action_id", "team", "ts"):
        _name(command, field)
    for field in ("endpoint", "run_id", "alert_id"):
        _name(command, field, required=False)
    if not isinstance(command.get("dry_run"), bool):
        raise RejectedEvent("bad_command", "dry_run must be true or false")
    if command["action"] == "stop_run":
        _name(command, "run_id")
    if command["action"] == "throttle_endpoint":
        _name(command, "endpoint")
    if command["action"] == "restrict_models":
        models = command.get("models")
        if not isinstance(models, list) or len(models) > MAX_MODELS:
            raise RejectedEvent("bad_command", f"models must be a list of at most {MAX_MODELS} model names")
        for at in range(len(models)):
            _name({"models": models[at]}, "models")
    reason = command.get("reason", "")
    command["reason"] = (reason if isinstance(reason, str) else "")[:MAX_REASON_CHARS]
    return command
