"""Logging through structlog: readable lines in a terminal, JSON lines otherwise.

The worker logs a line or two per job, so a call must be cheap: one below the level is
dropped before any processor runs (structlog's filtering bound logger), and one that is
emitted is rendered by orjson and written straight to the stream, without the standard
library's records and handlers. Standard-library loggers (uvicorn, alembic) go through a
handler on the same stream, under the same lock, with the same processors and renderer.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Literal, TextIO

import orjson
import structlog
from structlog.types import EventDict, Processor

LogFormat = Literal["auto", "json", "console"]


def configure_logging(
    level: str = "info", log_format: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    """Route structlog and the standard library through one renderer onto ``stream``.

    ``stream`` defaults to standard error; ``auto`` renders JSON unless it is a terminal.
    """
    out = stream or sys.stderr
    use_json = log_format == "json" or (log_format == "auto" and not out.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    rendering: list[Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(_dumps)]
        if use_json
        else [structlog.dev.ConsoleRenderer(colors=out.isatty())]
    )
    min_level = logging.getLevelNamesMapping()[level.upper()]
    handler = _route_stdlib(out, shared, rendering, min_level)
    structlog.configure(
        processors=[*shared, *rendering],
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=lambda name="": LineWriter(handler, name),
        cache_logger_on_first_use=True,
    )


class LineWriter:
    """structlog's output: each rendered line onto the stdlib handler's stream, under its lock."""

    def __init__(self, handler: logging.StreamHandler[TextIO], name: str) -> None:
        self.name = name
        """The logger's name, for ``add_logger_name``."""
        self._handler = handler

    def msg(self, line: str) -> None:
        """Write one line (whole, whichever threads log at once)."""
        self._handler.acquire()
        try:
            self._handler.stream.write(line + "\n")
            self._handler.stream.flush()
        finally:
            self._handler.release()

    debug = info = warning = error = critical = msg


def _route_stdlib(
    out: TextIO, shared: list[Processor], rendering: list[Processor], min_level: int
) -> logging.StreamHandler[TextIO]:
    """Send every standard-library logger through the same processors onto ``out``."""
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(min_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    return handler


def _dumps(event_dict: EventDict, **options: Any) -> str:
    """orjson's JSON, or the standard library's for what orjson refuses (ints over 64 bits)."""
    try:
        return orjson.dumps(event_dict, **options).decode()
    except orjson.JSONEncodeError:
        return json.dumps(event_dict, separators=(",", ":"), **options)
