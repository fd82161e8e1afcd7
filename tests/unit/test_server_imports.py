"""What a long-running process loads: the libraries it needs, not the migration tooling."""

from __future__ import annotations

import subprocess
import sys

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
