"""drop ix_stock_reservations_order_id, which uq_stock_reservations makes redundant

Every look-up of reservations by order (`inventory.repository.reservations`, `reservation`,
`undo_hold`, and the foreign key's check when an order row goes) filters on `order_id`, the
leading column of the unique (order_id, sku) index, which serves it as well. The second index
only cost an entry written per reservation, inside the statement that holds a hot SKU's row.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 03:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stock_reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_reservations_order_id")


def downgrade() -> None:
    with op.batch_alter_table("stock_reservations", schema=None) as batch_op:
        batch_op.create_index("ix_stock_reservations_order_id", ["order_id"], unique=False)
