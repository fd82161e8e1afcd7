"""Which database a SQLAlchemy connection talks to, and whether its driver takes the stores'
statements as they are written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobqueue.txenqueue.plan import Dialect

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect as SqlAlchemyDialect

_PARAMSTYLES: dict[str, tuple[Dialect, str]] = {
    "sqlite": ("sqlite", "qmark"),
    "postgresql": ("postgresql", "numeric_dollar"),
}
"""SQLAlchemy's dialect name -> ours, and the placeholder style of the stores' statements."""


def dialect_of(dialect: SqlAlchemyDialect) -> Dialect:
    """``sqlite`` or ``postgresql``; TypeError for another database or a driver whose
    placeholders are not the stores' (``psycopg``: use ``postgresql+asyncpg``)."""
    known = _PARAMSTYLES.get(dialect.name)
    if known is None:
        raise TypeError(f"jobqueue stores jobs in SQLite or PostgreSQL, not {dialect.name}")
    ours, paramstyle = known
    if dialect.paramstyle != paramstyle:
        driver = f"{dialect.name}+{dialect.driver}"
        raise TypeError(
            f"jobqueue.enqueue runs the job store's statements, written for {paramstyle} "
            f"placeholders; {driver} uses {dialect.paramstyle}: on PostgreSQL use the asyncpg "
            "driver (postgresql+asyncpg, or an asyncpg connection)"
        )
    return ours
