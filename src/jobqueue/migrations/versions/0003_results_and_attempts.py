"""Handler results, the history of attempts, progress, what an idempotency key was used for,
and the starts that rate limits count.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobqueue.store.tables import JSONType, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``jobs.result``, ``jobs.request_fingerprint``, ``jobs.progress`` (with its message)
    and ``jobs.attempt_log``: the history
    is a JSON array on the job's own row (as Oban and River keep a job's errors), written by
    the same UPDATE that records the outcome, so it costs no table, index or page of its own."""
    op.add_column("jobs", sa.Column("result", JSONType, nullable=True))
    op.add_column("jobs", sa.Column("request_fingerprint", sa.String(64), nullable=True))
    op.add_column("jobs", sa.Column("attempt_log", JSONType, nullable=True))
    op.add_column("jobs", sa.Column("progress", sa.SmallInteger(), nullable=True))
    op.add_column("jobs", sa.Column("progress_message", sa.Text(), nullable=True))
    op.create_table(
        "job_starts",
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_job_starts_type_started_at", "job_starts", ["type", "started_at"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_job_starts_type_started_at", table_name="job_starts")
    op.drop_table("job_starts")
    op.drop_column("jobs", "progress_message")
    op.drop_column("jobs", "progress")
    op.drop_column("jobs", "attempt_log")
    op.drop_column("jobs", "request_fingerprint")
    op.drop_column("jobs", "result")
