"""Issue "Poison": names that hold newlines or terminal escapes never reach a text log raw.

LiteLLM records, silences (comment, created_by), Slack clicks, commands on the actions topic and
HTTP query parameters carry producers' strings into log calls. The worker's formatters (the
ones `logging_config` gives mode's dictConfig) make every record one line of inert text.
"""

from __future__ import annotations

import io
import logging
import logging.config

import orjson
import pytest

from streams.worker.logs import logging_config

FORGED = "ads\n2026-01-01 00:00:00,000 ERROR spendwatch.alerting all secrets leaked\r\x1b[2J\x1b]0;pwned\x07"


def log_through(log_format: str, message: str, *args: object, exc: BaseException | None = None) -> str:
    """One record through a real StreamHandler whose formatter is built from the worker's dictConfig."""
    config = logging_config(log_format, "info")
    formatter = logging.config.DictConfigurator(config).configure_formatter(config["formatters"]["spendwatch"])
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"spendwatch.test-logs.{log_format}")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    try:
        if exc is None:
            logger.warning(message, *args)
        else:
            try:
                raise exc
            except BaseException:
                logger.exception(message, *args)
    finally:
        logger.handlers = []
    return out.getvalue()


CONTROLS = [chr(c) for c in range(0x20) if chr(c) != "\n"] + ["\x7f", "\x85", "\x9b", "\u2028", "\u2029"]


def test_a_text_record_is_one_line_whatever_the_names_hold():
    written = log_through("text", "silence by %s: %s", FORGED, "comment")
    assert written.count("\n") == 1 and written.endswith("\n")
    line = written.rstrip("\n")
    assert not [c for c in CONTROLS if c in line], repr(line)
    assert "\\n2026-01-01" in line and "\\x1b[2J" in line and "\\r" in line  # escaped, still readable


@pytest.mark.parametrize("char", CONTROLS)
def test_every_control_character_is_escaped_in_text(char):
    line = log_through("text", "team %s", f"a{char}b").rstrip("\n")
    assert char not in line and "team a\\" in line


def test_an_exception_that_carries_a_name_cannot_forge_a_record():
    written = log_through("text", "click from %s failed", "ana\nFAKE", exc=ValueError(FORGED))
    lines = written.rstrip("\n").split("\n")
    assert "ana\\nFAKE" in lines[0]
    assert len(lines) > 1 and all(line.startswith(" ") for line in lines[1:])  # a traceback, never a new record
    assert not [c for c in CONTROLS if c in written.replace("\n", "")]


def test_a_json_record_is_one_line_and_carries_the_name_exactly():
    written = log_through("json", "silence by %s", FORGED + "\u2028\x85\x9b")
    assert written.count("\n") == 1
    line = written.rstrip("\n")
    assert not [c for c in CONTROLS if c in line], repr(line)
    assert line.splitlines() == [line]
    assert orjson.loads(line)["message"] == "silence by " + FORGED + "\u2028\x85\x9b"
