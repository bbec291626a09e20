"""Log lines an operator can use: JSON (one object a line) or plain text, and no floods.

JSON is the default, for a log shipper; ``RATING_LOG_FORMAT=text`` keeps the plain format
for a terminal. Lines are formatted and written by a thread of their own (``LineWriter``),
many lines a write, so a call's access line costs the event loop only its record. Fields a caller of ``log.info(..., extra=...)`` adds (the access log's
method, code, duration_ms, caller, request_id) become fields of the object. An error or
warning repeated with the same text is written once per ``REPEAT_WINDOW`` and then counted,
so a caller that provokes one error in a loop cannot fill the disk.

This module imports nothing of the service: any layer's loggers go through it.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, TextIO

LogFormat = Literal["json", "text"]
FORMATS: tuple[LogFormat, ...] = ("json", "text")
REPEAT_WINDOW = 10.0
"""Seconds during which an identical warning or error is written once."""
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
"""Attributes every record has: anything else on a record came in ``extra``."""
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)
"""``json.dumps(..., default=str, ensure_ascii=False)``, built once, not per line."""
MAX_QUEUED = 10_000
"""Records waiting for ``LineWriter``'s thread past which a logging caller waits, as it
would for a stalled stderr: memory stays bounded however slow the log's reader is."""
MAX_LINES_PER_WRITE = 1_000
LINGER = 0.005
"""Seconds the log thread rests after a write, so that under load the lines of many calls
share a write and a wake-up (each wake-up takes the GIL from the event loop); a line that
comes after a quiet spell is written at once."""


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
        if record.exc_text:  # formatted when filed (``LineWriter``)
            line["error"] = record.exc_text
        elif record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return _ENCODER.encode(line)


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


class LineWriter(logging.Handler):
    """Formats and writes records on a thread of its own, all the lines waiting in one write.

    The logging caller (the event loop, for the access log's line per call) only
    files the record: formatting a JSON line and a write to stderr per call were a
    tenth of a cheap call's time. The record's message is fixed when it is filed
    (its arguments may change afterwards), and so is an error's traceback. Lines
    keep their order; ``flush`` waits until what was filed is written, and
    ``close`` (at exit, by ``logging.shutdown``) writes the rest and stops the thread.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._queue: queue.SimpleQueue[logging.LogRecord | threading.Event | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._write_lines, name="log-writer", daemon=True)
        self._thread.start()

    def handle(self, record: logging.LogRecord) -> bool:
        # Handler.handle takes the handler's lock around emit; filing needs none.
        passed = self.filter(record)
        if passed:
            self.emit(record)
        return bool(passed)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.message = record.getMessage()
            record.msg, record.args = record.message, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
        except Exception:
            self.handleError(record)
            return
        while self._queue.qsize() >= MAX_QUEUED and self._thread.is_alive():
            time.sleep(0.001)
        self._queue.put(record)

    def flush(self) -> None:
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            written = threading.Event()
            self._queue.put(written)
            written.wait(5.0)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(5.0)
        super().close()

    def _write_lines(self) -> None:
        while True:
            waiting = [self._queue.get()]
            while len(waiting) < MAX_LINES_PER_WRITE:
                try:
                    waiting.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records = [r for r in waiting if isinstance(r, logging.LogRecord)]
            if records:
                self._write(records)
            for item in waiting:
                if isinstance(item, threading.Event):
                    item.set()
            if None in waiting:
                return
            time.sleep(LINGER)

    def _write(self, records: list[logging.LogRecord]) -> None:
        lines = []
        for record in records:
            try:
                lines.append(self.format(record))
            except Exception:
                self.handleError(record)
        if not lines:
            return
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except Exception:
            self.handleError(records[-1])


def configure(level: str, log_format: LogFormat) -> None:
    """The process's logging: one handler on stderr, in ``log_format``, floods held back."""
    handler = LineWriter(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
        if isinstance(existing, LineWriter):
            existing.close()
    root.addHandler(handler)
    atexit.register(handler.close)  # before logging's own shutdown (atexit runs last first)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The stripe SDK writes a line per request and answer at INFO: the reporter's own
    # metrics and spans say the same without a line per call.
    logging.getLogger("stripe").setLevel(logging.WARNING)
