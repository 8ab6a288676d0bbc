"""connection sign-ins: pending OAuth authorizations (state, PKCE verifier, who started it)

A Depop shop (any system whose connector declares a sign-in) is connected by the seller
signing in; between the hub's authorize call and the system's redirect back, the hub keeps
the state's digest, the sealed PKCE verifier and who started it, for ten minutes, single-use.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 00:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import hub.types
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connection_sign_ins",
        sa.Column("state_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("system", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("verifier", sa.Text(), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("started_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("binding_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", hub.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", hub.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", hub.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("state_digest"),
    )


def downgrade() -> None:
    op.drop_table("connection_sign_ins")
