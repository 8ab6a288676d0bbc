"""job priorities, claim and sweep by partial indexes, retry window start

Jobs get a priority (lower runs sooner), the time their current attempt was claimed and the
time of their first attempt (the retry window runs from it). The claim index becomes a partial
index over queued jobs in (priority, run_at) order, and expired leases and old done jobs each
get their own partial index, so none of these reads grows with the history kept.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import hub.types
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PARTIAL = {
    "ix_jobs_due": (["priority", "run_at"], "state = 'queued'"),
    "ix_jobs_leases": (["lease_expires_at"], "state = 'running'"),
    "ix_jobs_done": (["finished_at"], "state = 'done'"),
}


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("priority", sa.Integer(), nullable=False, server_default="50")
        )
        batch_op.add_column(
            sa.Column("claimed_at", hub.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("first_attempt_at", hub.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_index("ix_jobs_claim")
    for name, (columns, where) in _PARTIAL.items():
        op.create_index(
            name,
            "jobs",
            columns,
            unique=False,
            postgresql_where=sa.text(where),
            sqlite_where=sa.text(where),
        )


def downgrade() -> None:
    for name in _PARTIAL:
        op.drop_index(name, table_name="jobs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_claim", ["state", "run_at"], unique=False)
        batch_op.drop_column("first_attempt_at")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("priority")
