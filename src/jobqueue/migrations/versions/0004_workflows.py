"""Workflows: jobs that wait for other jobs (``dependsOn``) and flows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_FLOW_MEMBERS = sa.text("flow_id IS NOT NULL")


def upgrade() -> None:
    """Add to ``jobs`` the count of unfinished parents (NULL: no parents), the mark of a
    parent (``has_dependants``: only marked jobs run the fan-in step when they finish), the
    flow and the job's key in it, the parent-failure rule and the parent that cancelled the
    job; and the edge table, indexed by parent for the fan-in step. Every column is NULL or
    a constant default, so on PostgreSQL the upgrade rewrites no row."""
    op.add_column("jobs", sa.Column("pending_parents", sa.Integer(), nullable=True))
    op.add_column(
        "jobs",
        sa.Column("has_dependants", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("jobs", sa.Column("flow_id", sa.Uuid(), nullable=True))
    op.add_column("jobs", sa.Column("flow_key", sa.Text(), nullable=True))
    op.add_column(
        "jobs",
        sa.Column("on_parent_failure", sa.String(10), nullable=False, server_default="cancel"),
    )
    op.add_column("jobs", sa.Column("cancelled_by_parent", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_jobs_flow_id",
        "jobs",
        ["flow_id"],
        postgresql_where=_FLOW_MEMBERS,
        sqlite_where=_FLOW_MEMBERS,
    )
    op.create_table(
        "job_dependencies",
        sa.Column(
            "child_id", sa.Uuid(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "parent_id", sa.Uuid(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("settled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("child_id", "parent_id"),
    )
    op.create_index("ix_job_dependencies_parent_id", "job_dependencies", ["parent_id"])


def downgrade() -> None:
    """Drop them again (waiting jobs become pending, so that nothing is stranded)."""
    op.execute("UPDATE jobs SET status = 'pending' WHERE status = 'waiting'")
    op.drop_index("ix_job_dependencies_parent_id", table_name="job_dependencies")
    op.drop_table("job_dependencies")
    op.drop_index("ix_jobs_flow_id", table_name="jobs")
    for column in (
        "cancelled_by_parent",
        "on_parent_failure",
        "flow_key",
        "flow_id",
        "has_dependants",
        "pending_parents",
    ):
        op.drop_column("jobs", column)
