"""fill_waiting is an orders job

Handing freed units to the paid orders waiting for them moved from the inventory domain to the
orders domain (inventory no longer reads orders). Jobs still queued under the old kind, and the
coalescing keys they hold, take the new name so they run after the upgrade.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 19:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD, NEW = "inventory.fill_waiting", "orders.fill_waiting"


def _rename(old: str, new: str) -> None:
    # Keys are `<kind>:<sku>` (a retired one has `:<job id>` after): the prefix is replaced.
    op.execute(
        f"UPDATE jobs SET kind = '{new}', "
        f"idempotency_key = '{new}' || substr(idempotency_key, {len(old) + 1}) "
        f"WHERE kind = '{old}'"
    )


def upgrade() -> None:
    _rename(OLD, NEW)


def downgrade() -> None:
    _rename(NEW, OLD)
