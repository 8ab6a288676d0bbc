"""order flags

An order's reasons for attention become rows of their own, each with its source and, once
settled, who resolved it and why; `orders.needs_attention` and `attention_reason` stay as the
summary of the open ones. Each order flagged before the upgrade gets one open flag with its
reason, raised by the source of its last flag in the history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import hub.types
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The codes of the reasons the hub wrote with fixed texts before flags had codes.
_CODES = {
    "oversold: restock or refund": "oversold",
    "line has no SKU": "no_sku",
}


def upgrade() -> None:
    op.create_table(
        "order_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
        sa.Column("message", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", hub.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", hub.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("order_flags", schema=None) as batch_op:
        batch_op.create_index("ix_order_flags_order", ["order_id", "resolved_at"], unique=False)

    cases = " ".join(
        f"WHEN {_quote(reason)} THEN {_quote(code)}" for reason, code in _CODES.items()
    )
    last_source = (
        "(SELECT e.source FROM order_events e WHERE e.order_id = o.id AND e.\"trigger\" = 'flag' "
        "ORDER BY e.id DESC LIMIT 1)"
    )
    op.execute(
        "INSERT INTO order_flags (order_id, code, message, source, created_at) "
        f"SELECT o.id, CASE o.attention_reason {cases} ELSE 'attention' END, "
        f"COALESCE(o.attention_reason, 'needs attention'), "
        f"COALESCE({last_source}, 'migration'), o.updated_at "
        "FROM orders o WHERE o.needs_attention"
    )


def downgrade() -> None:
    # The summary columns were kept up to date: the order keeps its newest open reason.
    with op.batch_alter_table("order_flags", schema=None) as batch_op:
        batch_op.drop_index("ix_order_flags_order")
    op.drop_table("order_flags")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
