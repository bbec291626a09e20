"""Log lines: one JSON object each with the caller's extras, and no flood of repeats."""

from __future__ import annotations

import io
import json
import logging

from rating_service.logs import JsonFormatter, LineWriter, RepeatFilter


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


def test_lines_written_off_the_caller_keep_their_order_and_the_message_as_it_was_when_logged() -> (
    None
):
    out = io.StringIO()
    writer = LineWriter(out)
    writer.setFormatter(JsonFormatter())
    logger = logging.Logger("rating_service.test")
    logger.addHandler(writer)
    changing = ["before"]

    logger.error("state %s", changing)
    changing[0] = "after"
    for n in range(2_000):
        logger.info("call %d", n, extra={"request_id": f"r{n}"})
    writer.flush()
    written = out.getvalue()
    writer.close()

    lines = [json.loads(line) for line in written.splitlines()]
    assert lines[0]["message"] == "state ['before']"
    assert [line["request_id"] for line in lines[1:]] == [f"r{n}" for n in range(2_000)]


def test_closing_writes_what_is_still_waiting_and_an_error_keeps_its_traceback() -> None:
    out = io.StringIO()
    writer = LineWriter(out)
    writer.setFormatter(JsonFormatter())
    logger = logging.Logger("rating_service.test")
    logger.addHandler(writer)

    try:
        raise ValueError("the cause")
    except ValueError:
        logger.exception("job failed")
    writer.close()

    (line,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert line["message"] == "job failed"
    assert "ValueError: the cause" in line["error"]
