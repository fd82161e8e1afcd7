"""What a long-running process loads: the libraries it needs, not the migration tooling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Alembic and SQLAlchemy run in a short child process (`migrate_in_subprocess`); loaded into a
# server they would hold about 20 MiB for its whole life.
MIGRATION_ONLY = ("alembic", "sqlalchemy")


@pytest.mark.parametrize(
    "module", ["jobqueue.worker.child", "jobqueue.server", "jobqueue.api.serving"]
)
def test_server_modules_do_not_load_migration_tooling(module: str) -> None:
    probe = (
        f"import sys, {module}, jobqueue.server as s;"
        "from jobqueue.store.migrate import MigrationError, migrate_in_subprocess;"
        f"print(sorted(m for m in {MIGRATION_ONLY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout


def _loaded_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    """Which of rich and pygments a fresh interpreter holds after ``code``, its standard
    error a pipe (as a server's is under a process manager)."""
    probe = (
        "import atexit, json, sys;"
        "atexit.register(lambda: print(json.dumps([m for m in ('rich', 'pygments') "
        f"if m in sys.modules])));{code}"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_structlog_alone_loads_rich() -> None:
    # What the entry points avoid: rich is installed, so structlog's import takes it.
    assert _loaded_after("import structlog") == ["rich", "pygments"]


def test_the_jobqueue_command_logging_to_a_pipe_loads_no_rich(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'jobs.db'}"}
    code = "sys.argv = ['jobqueue', 'migrate']; from jobqueue.__main__ import main; main()"
    # Alembic's templates (mako) load pygments on their own; structlog would have loaded rich.
    assert "rich" not in _loaded_after(code, env)


def test_a_worker_process_of_serve_loads_no_rich() -> None:
    # main() imports the server before it reads its arguments, so "x" fails after them.
    code = "from jobqueue.worker.child import main\ntry: main(['x'])\nexcept ValueError: pass"
    assert _loaded_after(code) == []


def test_rich_stays_importable_after_structlog() -> None:
    code = (
        "from jobqueue.startup import import_structlog; import_structlog();"
        "import structlog.dev; assert structlog.dev.rich is None; import rich.table"
    )
    assert "rich" in _loaded_after(code)
