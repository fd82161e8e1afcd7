"""``jobqueue migrate``: what an operator reads when the schema is brought up to date."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.serve import JOBQUEUE, serve_env


def test_migrate_names_each_upgrade_and_nothing_of_alembics_own_set_up(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(JOBQUEUE), "migrate"],
        cwd=tmp_path,
        env=serve_env(tmp_path, {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "migrations applied: the database is up to date" in done.stdout
    assert "Running upgrade  -> 0001" in done.stderr
    # Alembic logs each of its own plugins as it loads them: seven lines of noise per start.
    assert "setup plugin" not in done.stderr
