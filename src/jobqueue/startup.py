"""What a jobqueue process does first, before any of its modules imports structlog."""

from __future__ import annotations

import importlib
import sys


def import_structlog() -> None:
    """Import structlog, without rich unless standard error is a terminal.

    structlog imports rich, and rich's tracebacks import pygments, whenever rich is installed
    (jobqueue installs it for the operator commands' tables): its console renderer formats
    exceptions with them. A process whose logs go to a pipe or a file writes JSON lines and
    never calls that renderer, yet would carry those modules, 3.7 MiB in each of ``serve``'s
    processes. So rich is hidden from structlog's import alone: a handler or a command may
    still import it afterwards. In a terminal nothing changes.
    """
    if "structlog" in sys.modules or "rich" in sys.modules or _is_terminal():
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` fail
    try:
        importlib.import_module("structlog")
    finally:
        del sys.modules["rich"]


def _is_terminal() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()
