"""Log lines: one JSON object each with the caller's extras, and no flood of repeats."""

from __future__ import annotations

import json
import logging

from rating_service.logs import JsonFormatter, RepeatFilter


def record(message: str, level: int = logging.ERROR, **extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord(
        {"name": "rating_service.test", "levelno": level, "levelname": "ERROR", "msg": message}
    )
    made.__dict__.update(extra)
    return made


def test_a_json_line_holds_the_message_and_the_fields_given_in_extra() -> None:
    line = JsonFormatter().format(record("GetBalance OK", method="GetBalance", duration_ms=1.5))

    parsed = json.loads(line)
    assert "\n" not in line
    assert parsed["message"] == "GetBalance OK"
    assert (parsed["method"], parsed["duration_ms"], parsed["level"]) == (
        "GetBalance",
        1.5,
        "ERROR",
    )


def test_an_error_repeated_within_the_window_is_written_once_then_counted() -> None:
    now = [0.0]
    repeats = RepeatFilter(window=10, clock=lambda: now[0])

    passed = [repeats.filter(record("disk full")) for _ in range(50)]
    now[0] = 11.0
    after_window = record("disk full")
    let_through = repeats.filter(after_window)

    assert passed == [True] + [False] * 49
    assert let_through
    assert after_window.getMessage() == "disk full (and 49 more like it held back)"


def test_info_lines_and_different_errors_are_never_held_back() -> None:
    repeats = RepeatFilter(window=10, clock=lambda: 0.0)

    infos = [repeats.filter(record("GetBalance OK", level=logging.INFO)) for _ in range(5)]
    errors = [repeats.filter(record(f"failure {n}")) for n in range(5)]

    assert infos == [True] * 5
    assert errors == [True] * 5
