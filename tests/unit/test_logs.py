"""Log lines: JSON or readable, from structlog and the standard library, on one stream."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from jobqueue.logs import configure_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Where the logs go during the test; logging is put back as it was afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield io.StringIO()
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """The JSON lines written so far."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_carries_level_logger_time_and_the_jobs_context(stream: io.StringIO) -> None:
    configure_logging("info", "auto", stream)  # a StringIO is no terminal: JSON
    log = structlog.get_logger("jobqueue.worker")
    with structlog.contextvars.bound_contextvars(job_id="j1", job_type="noop", attempt=2):
        log.info("job completed", duration_ms=1.5)
    [line] = lines(stream)
    timestamp = line.pop("timestamp")
    assert timestamp.endswith("Z")
    assert line == {
        "event": "job completed",
        "duration_ms": 1.5,
        "job_id": "j1",
        "job_type": "noop",
        "attempt": 2,
        "level": "info",
        "logger": "jobqueue.worker",
    }


def test_lines_below_the_level_are_dropped(stream: io.StringIO) -> None:
    configure_logging("warning", "json", stream)
    structlog.get_logger("jobqueue").info("not shown")
    logging.getLogger("alembic").info("not shown either")
    structlog.get_logger("jobqueue").warning("shown")
    assert [line["event"] for line in lines(stream)] == ["shown"]


def test_standard_library_loggers_share_the_output(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    [line] = lines(stream)
    assert (line["event"], line["level"], line["logger"]) == (
        "Started server process [42]",
        "info",
        "uvicorn.error",
    )


def test_exceptions_are_logged_with_their_traceback(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream)
    try:
        raise KeyError("lost")
    except KeyError:
        structlog.get_logger("jobqueue").exception("unhandled error")
    [line] = lines(stream)
    assert line["level"] == "error"
    assert line["exception"].startswith("Traceback (most recent call last)")
    assert "KeyError: 'lost'" in line["exception"]


def test_values_orjson_refuses_are_still_written(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream)
    structlog.get_logger("jobqueue").info("counted", total=2**70, error=ValueError("v"))
    [line] = lines(stream)
    assert (line["total"], line["error"]) == (2**70, "ValueError('v')")


def test_console_lines_are_readable(stream: io.StringIO) -> None:
    configure_logging("info", "console", stream)
    structlog.get_logger("jobqueue.server").info("Server running at http://127.0.0.1:3000")
    logging.getLogger("uvicorn.error").info("Started")
    first, second = stream.getvalue().splitlines()
    assert "Server running at http://127.0.0.1:3000" in first
    assert "[jobqueue.server]" in first
    assert "Started" in second
    assert not first.startswith("{")
