"""Which database a SQLAlchemy connection talks to, and in which form its driver takes the
stores' statements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from jobqueue.txenqueue.plan import Dialect, Statement
from jobqueue.txenqueue.pyformat import to_pyformat

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect as SqlAlchemyDialect


class DriverForm(NamedTuple):
    """The database, and whether the driver needs the statements rewritten."""

    dialect: Dialect
    pyformat: bool
    """The driver reads ``%(name)s`` placeholders (psycopg, psycopg2), not ``$n``."""

    def render(self, statement: Statement) -> tuple[str, Any]:
        """The text and parameters to give ``exec_driver_sql``."""
        if self.pyformat:
            return to_pyformat(statement)
        return statement.sql, statement.params


_FORMS: dict[tuple[str, str], DriverForm] = {
    ("sqlite", "qmark"): DriverForm("sqlite", pyformat=False),
    ("postgresql", "numeric_dollar"): DriverForm("postgresql", pyformat=False),
    ("postgresql", "pyformat"): DriverForm("postgresql", pyformat=True),
}
"""SQLAlchemy's dialect name and its driver's placeholder style -> the form. The stores'
statements are written for qmark (SQLite) and numeric_dollar (asyncpg)."""


def driver_form(dialect: SqlAlchemyDialect) -> DriverForm:
    """How to run the stores' statements on this dialect's driver; TypeError for another
    database, or a driver whose placeholder style is neither of those nor pyformat."""
    if dialect.name not in ("sqlite", "postgresql"):
        raise TypeError(f"jobqueue stores jobs in SQLite or PostgreSQL, not {dialect.name}")
    form = _FORMS.get((dialect.name, dialect.paramstyle))
    if form is None:
        raise TypeError(
            f"jobqueue.enqueue cannot run the job store's statements on "
            f"{dialect.name}+{dialect.driver} ({dialect.paramstyle} placeholders): on "
            "PostgreSQL use postgresql+asyncpg, postgresql+psycopg or postgresql+psycopg2"
        )
    return form
