"""Log set-up for the worker: plain text, or one JSON object a line (`SPENDWATCH_LOG_FORMAT=json`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson


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
        return orjson.dumps(entry).decode()


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """A dictConfig for mode's worker (Faust's), so its own lines come out in the same format."""
    formatter = ({"()": "streams.worker.logs.JsonFormatter"} if log_format == "json"
                 else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"spendwatch": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "spendwatch",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }
