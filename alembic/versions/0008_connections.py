"""connections: several accounts per channel and provider

A connection is one account on one system, keyed "system/name". Orders, inbound events,
webhook deliveries, reconciliation runs and routing rules belong to one; a job belongs to its
order's, or to the one it names. Every existing row moves to its system's `default` connection
(the one the environment variables describe), so a single-account hub changes nothing. The
order and event uniqueness moves from the system to the connection: two Depop shops may both
send order "1001".

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import hub.types
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The systems the hub knew when this migration was written; each gets its default connection.
SYSTEMS = ("depop", "topi", "aboutyou", "deliverr", "flexport")
KEY = 97


def _key_column(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=KEY), nullable=nullable)


def _json_field(column: str, field: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"({column} ->> '{field}')"
    return f"json_extract({column}, '$.{field}')"


def upgrade() -> None:
    op.create_table(
        "connections",
        _key_column("key", nullable=False),
        sa.Column("system", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=True),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("attention_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", hub.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
        sa.UniqueConstraint("system", "name", name="uq_connections_system_name"),
    )
    op.create_table(
        "connection_sku_exclusions",
        _key_column("connection", nullable=False),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", hub.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connection", "sku"),
    )
    connections = sa.table(
        "connections",
        sa.column("key"),
        sa.column("system"),
        sa.column("name"),
        sa.column("source"),
        sa.column("enabled"),
        sa.column("settings", sa.JSON()),
        sa.column("revision"),
        sa.column("created_at", hub.types.UTCDateTime(timezone=True)),
        sa.column("updated_at", hub.types.UTCDateTime(timezone=True)),
    )
    now = hub.types.utcnow()
    op.bulk_insert(
        connections,
        [
            {
                "key": f"{system}/default",
                "system": system,
                "name": "default",
                "source": "env",
                "enabled": True,
                "settings": {},
                "revision": 1,
                "created_at": now,
                "updated_at": now,
            }
            for system in SYSTEMS
        ],
    )

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(_key_column("connection"))
        batch_op.add_column(_key_column("fulfilment_connection"))
    op.execute("UPDATE orders SET connection = channel || '/default'")
    op.execute(
        "UPDATE orders SET fulfilment_connection = fulfilment_provider || '/default' "
        "WHERE fulfilment_provider IS NOT NULL AND fulfilment_provider <> 'manual'"
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("connection", existing_type=sa.String(length=KEY), nullable=False)
        batch_op.drop_constraint("uq_orders_channel_order", type_="unique")
        batch_op.create_unique_constraint(
            "uq_orders_connection_order", ["connection", "channel_order_id"]
        )
        batch_op.create_index("ix_orders_channel", ["channel"], unique=False)

    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.add_column(_key_column("connection"))
    op.execute("UPDATE inbound_events SET connection = channel || '/default'")
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.alter_column("connection", existing_type=sa.String(length=KEY), nullable=False)
        batch_op.drop_constraint("uq_inbound_events_external", type_="unique")
        batch_op.create_unique_constraint(
            "uq_inbound_events_external", ["connection", "external_id"]
        )

    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(_key_column("connection"))
    op.execute("UPDATE webhook_deliveries SET connection = channel || '/default'")

    with op.batch_alter_table("reconcile_runs", schema=None) as batch_op:
        batch_op.add_column(_key_column("connection"))
    op.execute("UPDATE reconcile_runs SET connection = channel || '/default'")
    with op.batch_alter_table("reconcile_runs", schema=None) as batch_op:
        batch_op.alter_column("connection", existing_type=sa.String(length=KEY), nullable=False)
        batch_op.create_index("ix_reconcile_runs_connection", ["connection"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(_key_column("connection"))
    op.execute(
        "UPDATE jobs SET connection = "
        "(SELECT o.connection FROM orders o WHERE o.id = jobs.order_id) "
        "WHERE order_id IS NOT NULL"
    )
    # A job about no order works for the connection of the event or the run it names.
    event_id = _json_field("jobs.payload", "event_id")
    run_id = _json_field("jobs.payload", "run_id")
    # The event's id as an integer, so each job finds its event through the primary key.
    op.execute(
        "UPDATE jobs SET connection = (SELECT e.connection FROM inbound_events e "
        f"WHERE e.id = CAST({event_id} AS INTEGER)) "
        f"WHERE order_id IS NULL AND {event_id} IS NOT NULL"
    )
    op.execute(
        "UPDATE jobs SET connection = (SELECT r.connection FROM reconcile_runs r "
        f"WHERE r.id = {run_id}) WHERE order_id IS NULL AND {run_id} IS NOT NULL"
    )

    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.add_column(_key_column("connection"))
        batch_op.alter_column(
            "provider",
            existing_type=sa.String(length=32),
            type_=sqlmodel.sql.sqltypes.AutoString(length=KEY),
            existing_nullable=False,
        )
    for table in ("provider_skus", "provider_feed_cursors"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "provider",
                existing_type=sa.String(length=32),
                type_=sqlmodel.sql.sqltypes.AutoString(length=KEY),
                existing_nullable=False,
            )
        op.execute(f"UPDATE {table} SET provider = provider || '/default'")
    # Credentials renewed by connectors were kept under the system's name; a connection's are
    # kept under its key (and a connection's own keys under "key:name").
    with op.batch_alter_table("stored_credentials", schema=None) as batch_op:
        batch_op.alter_column(
            "key",
            existing_type=sa.String(length=64),
            type_=sqlmodel.sql.sqltypes.AutoString(length=160),
            existing_nullable=False,
        )
    op.execute(
        sa.text(
            "UPDATE stored_credentials SET key = key || '/default' "
            "WHERE key NOT LIKE :lease AND key NOT LIKE '%/%'"
        ).bindparams(lease="%:renewal")
    )


def downgrade() -> None:
    """Back to one account per system: only the default connections' data fits, so a hub with
    other connections refuses to go back rather than merge two shops' orders into one."""
    bind = op.get_bind()
    for table, column in (
        ("orders", "connection"),
        ("inbound_events", "connection"),
        ("reconcile_runs", "connection"),
        ("routing_rules", "connection"),
        ("provider_skus", "provider"),
        ("provider_feed_cursors", "provider"),
    ):
        others = bind.execute(
            sa.text(
                f"SELECT count(*) FROM {table} WHERE {column} IS NOT NULL "
                f"AND {column} NOT LIKE '%/default'"
            )
        ).scalar_one()
        if others:
            raise RuntimeError(
                f"{others} {table} rows belong to connections other than the defaults; a "
                "schema with one account per system cannot hold them"
            )
    # A rule limited to a default connection keeps its limit as a limit to that channel.
    op.execute(
        "UPDATE routing_rules SET channel = substr(connection, 1, length(connection) - 8) "
        "WHERE connection IS NOT NULL AND channel IS NULL"
    )
    op.execute(
        "UPDATE stored_credentials SET key = substr(key, 1, length(key) - 8) "
        "WHERE key LIKE '%/default'"
    )
    op.execute("DELETE FROM stored_credentials WHERE length(key) > 64")
    with op.batch_alter_table("stored_credentials", schema=None) as batch_op:
        batch_op.alter_column(
            "key",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=160),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
    for table in ("provider_feed_cursors", "provider_skus"):
        op.execute(
            f"UPDATE {table} SET provider = substr(provider, 1, length(provider) - 8) "
            "WHERE provider LIKE '%/default'"
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "provider",
                existing_type=sqlmodel.sql.sqltypes.AutoString(length=KEY),
                type_=sa.String(length=32),
                existing_nullable=False,
            )
    op.execute(
        "UPDATE routing_rules SET provider = substr(provider, 1, length(provider) - 8) "
        "WHERE provider LIKE '%/default'"
    )
    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.alter_column(
            "provider",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=KEY),
            type_=sa.String(length=32),
            existing_nullable=False,
        )
        batch_op.drop_column("connection")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("connection")
    with op.batch_alter_table("reconcile_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_reconcile_runs_connection")
        batch_op.drop_column("connection")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_column("connection")
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_inbound_events_external", type_="unique")
        batch_op.create_unique_constraint("uq_inbound_events_external", ["channel", "external_id"])
        batch_op.drop_column("connection")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_channel")
        batch_op.drop_constraint("uq_orders_connection_order", type_="unique")
        batch_op.create_unique_constraint(
            "uq_orders_channel_order", ["channel", "channel_order_id"]
        )
        batch_op.drop_column("fulfilment_connection")
        batch_op.drop_column("connection")
    op.drop_table("connection_sku_exclusions")
    op.drop_table("connections")
