"""order counts kept beside the orders

`/metrics` counted the whole orders table at every scrape. Now a trigger on `orders` appends a
row to `order_count_changes` for every order inserted, deleted, or moved to another channel,
state or attention, in the transaction of the change; a periodic job folds those rows into
`order_counts`. A scrape sums the two small tables. The trigger only inserts (no counter row
is updated by the order's transaction), so concurrent orders never wait for one another on a
counter, and no code path that writes an order (ORM, Core batch, a person's SQL) can miss it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "channel, status, needs_attention"

_POSTGRES = [
    """
    CREATE FUNCTION hub_count_order_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            INSERT INTO order_count_changes (channel, status, needs_attention, delta)
            VALUES (OLD.channel, OLD.status, OLD.needs_attention, -1);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO order_count_changes (channel, status, needs_attention, delta)
            VALUES (NEW.channel, NEW.status, NEW.needs_attention, 1);
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER orders_count_insert_delete AFTER INSERT OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION hub_count_order_change()
    """,
    """
    CREATE TRIGGER orders_count_update AFTER UPDATE OF channel, status, needs_attention
    ON orders FOR EACH ROW
    WHEN (OLD.channel IS DISTINCT FROM NEW.channel OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.needs_attention IS DISTINCT FROM NEW.needs_attention)
    EXECUTE FUNCTION hub_count_order_change()
    """,
]

_SQLITE = [
    f"""
    CREATE TRIGGER orders_count_insert AFTER INSERT ON orders BEGIN
        INSERT INTO order_count_changes ({_COLUMNS}, delta)
        VALUES (NEW.channel, NEW.status, NEW.needs_attention, 1);
    END
    """,
    f"""
    CREATE TRIGGER orders_count_delete AFTER DELETE ON orders BEGIN
        INSERT INTO order_count_changes ({_COLUMNS}, delta)
        VALUES (OLD.channel, OLD.status, OLD.needs_attention, -1);
    END
    """,
    f"""
    CREATE TRIGGER orders_count_update AFTER UPDATE OF {_COLUMNS} ON orders
    WHEN OLD.channel IS NOT NEW.channel OR OLD.status IS NOT NEW.status
        OR OLD.needs_attention IS NOT NEW.needs_attention
    BEGIN
        INSERT INTO order_count_changes ({_COLUMNS}, delta)
        VALUES (OLD.channel, OLD.status, OLD.needs_attention, -1),
               (NEW.channel, NEW.status, NEW.needs_attention, 1);
    END
    """,
]


def upgrade() -> None:
    op.create_table(
        "order_counts",
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("needs_attention", sa.Boolean(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "status", "needs_attention"),
    )
    op.create_table(
        "order_count_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("needs_attention", sa.Boolean(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    statements = _POSTGRES if op.get_bind().dialect.name == "postgresql" else _SQLITE
    # The triggers first, then the counts of the orders there are: on Postgres, creating a
    # trigger holds writers of `orders` off until this transaction commits, so no order is
    # counted twice or missed in between.
    for statement in statements:
        op.execute(statement)
    op.execute(
        f"INSERT INTO order_counts ({_COLUMNS}, n)"
        f" SELECT {_COLUMNS}, count(*) FROM orders GROUP BY {_COLUMNS}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER orders_count_update ON orders")
        op.execute("DROP TRIGGER orders_count_insert_delete ON orders")
        op.execute("DROP FUNCTION hub_count_order_change()")
    else:
        for name in ("orders_count_update", "orders_count_delete", "orders_count_insert"):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("order_count_changes")
    op.drop_table("order_counts")
