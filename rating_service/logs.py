"""Log lines an operator can use: JSON (one object a line) or plain text, and no floods.

JSON is the default, for a log shipper; ``RATING_LOG_FORMAT=text`` keeps the plain format
for a terminal. Fields a caller of ``log.info(..., extra=...)`` adds (the access log's
method, code, duration_ms, caller, request_id) become fields of the object. An error or
warning repeated with the same text is written once per ``REPEAT_WINDOW`` and then counted,
so a caller that provokes one error in a loop cannot fill the disk.

This module imports nothing of the service: any layer's loggers go through it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["json", "text"]
FORMATS: tuple[LogFormat, ...] = ("json", "text")
REPEAT_WINDOW = 10.0
"""Seconds during which an identical warning or error is written once."""
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
"""Attributes every record has: anything else on a record came in ``extra``."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the extras, the error."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class RepeatFilter(logging.Filter):
    """Lets an identical warning or error through once per window; says how many it held back.

    Identical means the same logger, level and final message. Records below WARNING (the
    access log among them) always pass: they are one per call by design.
    """

    def __init__(
        self, window: float = REPEAT_WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._window = window
        self._clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, record.getMessage())
        now = self._clock()
        first, held = self._seen.get(key, (None, 0))
        if first is not None and now - first < self._window:
            self._seen[key] = (first, held + 1)
            return False
        if len(self._seen) > 10_000:  # bounded however many distinct messages come
            self._seen.clear()
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.getMessage()} (and {held} more like it held back)"
            record.args = ()
        return True


def configure(level: str, log_format: LogFormat) -> None:
    """The process's logging: one handler on stderr, in ``log_format``, floods held back."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The stripe SDK writes a line per request and answer at INFO: the reporter's own
    # metrics and spans say the same without a line per call.
    logging.getLogger("stripe").setLevel(logging.WARNING)
