"""Apply the Alembic migrations shipped inside the package.

Alembic and SQLAlchemy are imported where a migration runs, not with this module: servers
import it for ``migrate_in_subprocess`` and ``MigrationError`` and must not carry those
libraries (about 20 MiB) for nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration pointing at the packaged migrations and this database."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("database_url", database_url.replace("%", "%%"))
    return config


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision`` (safe to run from processes starting together)."""
    # Alembic logs each of its own plugins as it loads them (on import), seven lines at every
    # start of serve; its "Running upgrade" lines stay.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


async def migrate_async(database_url: str, revision: str = "head") -> None:
    """``migrate`` from inside a running event loop (Alembic's env starts its own loop)."""
    await asyncio.to_thread(migrate, database_url, revision)


class MigrationError(Exception):
    """``jobqueue migrate`` failed; its own log lines say why."""


async def migrate_in_subprocess(database_url: str) -> None:
    """``jobqueue migrate`` in a child process, so that Alembic and SQLAlchemy never load
    into a long-running server (they hold tens of megabytes it never needs again)."""
    env = {**os.environ, "DATABASE_URL": database_url}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jobqueue", "migrate", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    code = await child.wait()
    if code != 0:
        raise MigrationError(f"applying migrations failed (exit status {code}); see above")
