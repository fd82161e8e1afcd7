"""Table definitions shared by the store and the migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType: sa.types.TypeEngine[Any] = sa.JSON().with_variant(JSONB(), "postgresql")

metadata = sa.MetaData()

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer(), nullable=False),
    sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_run_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("idempotency_key", sa.String(255), nullable=True, unique=True),
    sa.Column("lease_owner", sa.String(120), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("result", JSONType, nullable=True),
    sa.Column("request_fingerprint", sa.String(64), nullable=True),
    sa.Column("attempt_log", JSONType, nullable=True),
    sa.Column("progress", sa.SmallInteger(), nullable=True),
    sa.Column("progress_message", sa.Text(), nullable=True),
    sa.Column("pending_parents", sa.Integer(), nullable=True),
    sa.Column("has_dependants", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("flow_id", sa.Uuid(), nullable=True),
    sa.Column("on_parent_failure", sa.String(10), nullable=False, server_default="cancel"),
    sa.Column("cancelled_by_parent", sa.Uuid(), nullable=True),
    sa.Index(
        "ix_jobs_claim",
        "priority",
        "created_at",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    ),
    sa.Index("ix_jobs_status_next_run_at", "status", "next_run_at"),
    sa.Index("ix_jobs_status_lease", "status", "lease_expires_at"),
    sa.Index("ix_jobs_status_created_at", "status", "created_at"),
    sa.Index("ix_jobs_type_created_at", "type", "created_at"),
    sa.Index("ix_jobs_created_at", "created_at"),
    sa.Index(
        "ix_jobs_flow_id",
        "flow_id",
        postgresql_where=sa.text("flow_id IS NOT NULL"),
        sqlite_where=sa.text("flow_id IS NOT NULL"),
    ),
)

job_dependencies = sa.Table(
    "job_dependencies",
    metadata,
    sa.Column("child_id", sa.Uuid(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("parent_id", sa.Uuid(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("settled", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.PrimaryKeyConstraint("child_id", "parent_id"),
    sa.Index("ix_job_dependencies_parent_id", "parent_id"),
)
"""``child_id`` runs after ``parent_id`` completed; ``settled`` once the parent's outcome was
counted in the child's ``pending_parents``. Found by parent for the fan-in step."""

job_starts = sa.Table(
    "job_starts",
    metadata,
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Index("ix_job_starts_type_started_at", "type", "started_at"),
)
"""When jobs of rate-limited types started (the last minute of them): the rate's window."""

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.Uuid(), nullable=False, index=True),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("failed_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("queue_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Index(
        "ix_dead_letters_queue_pending",
        "id",
        postgresql_where=sa.text("queue_pending"),
        sqlite_where=sa.text("queue_pending"),
    ),
)
