"""Log set-up for the worker: plain text, or one JSON object a line (`SPENDWATCH_LOG_FORMAT=json`).

Log lines carry producers' strings: LiteLLM records, silences' comments and authors, Slack
clicks, commands on the actions topic, HTTP query parameters. A newline in one would forge a
record ("...\\n2026-01-01 ERROR ..."), and a terminal escape would rewrite the screen of whoever
tails the log. So both formatters make each record inert here, once, rather than at every call:
text escapes every control character in the line (`\\n`, `\\r`, `\\x1b`, ...) and indents the lines of
a traceback, so every line that starts at column 0 starts a record; JSON escapes them as JSON
does, with the few that JSON leaves raw (DEL, C1, U+2028, U+2029) escaped too.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
#: Control characters (C0, DEL, C1) and the Unicode line and paragraph separators, which editors,
#: `str.splitlines` and some log viewers also take for the end of a line.
_UNSAFE = [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
_TEXT_ESCAPES = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _UNSAFE} | {
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
#: For JSON: valid escapes inside a string, which is the only place these can appear in orjson's output.
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in _UNSAFE if c >= 0x7F}
#: What begins each line of a traceback: never the start of a record.
CONTINUATION = "    "


def escape_controls(text: str) -> str:
    """`text` on one line, its control characters written as Python writes them (`\\n`, `\\x1b`)."""
    return text.translate(_TEXT_ESCAPES)


class TextFormatter(logging.Formatter):
    """`asctime level logger message`, one line a record whatever the message holds; a traceback follows
    indented, each of its lines escaped the same way."""

    def __init__(self, fmt: str | None = TEXT_FORMAT, datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = escape_controls(self.formatMessage(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        for extra in (record.exc_text, self.formatStack(record.stack_info) if record.stack_info else None):
            if extra:
                line += "".join(f"\n{CONTINUATION}{escape_controls(part)}" for part in extra.split("\n"))
        return line


class JsonFormatter(logging.Formatter):
    """time, level, logger, message (and the exception, if any) as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # orjson escapes C0 controls (\n, \x1b, ...) as JSON must; DEL, C1 and U+2028/9 it leaves raw.
        return orjson.dumps(entry).decode().translate(_JSON_ESCAPES)


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """A dictConfig for mode's worker (Faust's), so its own lines come out in the same format."""
    formatter = ({"()": "streams.worker.logs.JsonFormatter"} if log_format == "json"
                 else {"()": "streams.worker.logs.TextFormatter", "fmt": TEXT_FORMAT})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"spendwatch": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "spendwatch",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }
