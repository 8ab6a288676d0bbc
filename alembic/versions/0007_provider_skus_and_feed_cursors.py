"""provider SKU maps and event feed cursors

A provider that names products by its own ids (Flexport's logisticsSku) has its map from the
seller's SKU kept here, refreshed on a schedule and on a miss. A provider that publishes an
event feed has the cursor reconciliation reads it from kept here.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 22:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import hub.types
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_skus",
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("provider_sku", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("refreshed_at", hub.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "sku"),
    )
    op.create_table(
        "provider_feed_cursors",
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("cursor", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("read_at", hub.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider"),
    )


def downgrade() -> None:
    op.drop_table("provider_feed_cursors")
    op.drop_table("provider_skus")
