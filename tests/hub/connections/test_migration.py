"""Migration 0008 moves a single-account hub onto its default connections, and back."""

from __future__ import annotations

import time

import sqlalchemy as sa

from alembic import command
from connectors.depop.simulator import DepopSimulator
from connectors.signatures import sign_timestamped_hex
from hub.connections.service import plain_values
from hub.db import Database
from hub.migrate import alembic_config
from tests.harness import DEPOP_SECRET, make_hub

TABLES_ON_CONNECTIONS = ("orders", "inbound_events", "reconcile_runs")


def _counts(database: Database) -> dict[str, int]:
    with database.engine.connect() as conn:
        return {
            table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in (*TABLES_ON_CONNECTIONS, "jobs", "order_lines", "shipments")
        }


def test_a_hub_filled_before_connections_finds_everything_on_its_defaults(
    database: Database,
) -> None:
    hub = make_hub(database)
    try:
        hub.depop.add_product("SKU-1", quantity=5)
        hub.set_stock("SKU-1", 5)
        purchase = hub.depop.purchase("SKU-1")
        hub.topi.create_order({"SKU-1": 1})
        hub.drain()
        hub.deliverr.ship(hub.order("depop", purchase)["fulfilment_ref"])
        assert hub.admin("POST", "/admin/reconcile/depop", json={}).status_code == 202
        hub.drain()
    finally:
        hub.close()
    before = _counts(database)
    assert before["orders"] == 2 and before["shipments"] == 1

    config = alembic_config(database.url)
    command.downgrade(config, "0007")
    with database.engine.begin() as conn:
        # What a hub of the earlier schema kept under its systems' names.
        conn.execute(
            sa.text(
                "INSERT INTO stored_credentials (key, value, updated_at) "
                "VALUES ('depop', '{\"access_token\": \"a\"}', CURRENT_TIMESTAMP)"
            )
        )
        columns = {c["name"] for c in sa.inspect(conn).get_columns("orders")}
    assert "connection" not in columns
    assert _counts(database) == before

    command.upgrade(config, "head")
    assert _counts(database) == before
    with database.engine.connect() as conn:
        for table in TABLES_ON_CONNECTIONS:
            found = conn.execute(sa.text(f"SELECT DISTINCT channel, connection FROM {table}")).all()
            assert found and all(conn_key == f"{ch}/default" for ch, conn_key in found), table
        unplaced = conn.execute(
            sa.text(
                "SELECT count(*) FROM jobs WHERE connection IS NULL AND (order_id IS NOT NULL "
                "OR kind IN ('inbox.process', 'reconcile.run'))"
            )
        ).scalar_one()
        assert unplaced == 0
        routed = conn.execute(
            sa.text("SELECT fulfilment_provider, fulfilment_connection FROM orders")
        ).all()
        assert {tuple(r) for r in routed} == {("deliverr", "deliverr/default")}
        keys = set(conn.execute(sa.text("SELECT key FROM stored_credentials")).scalars())
        assert "depop/default" in keys and "depop" not in keys

    # The hub goes on over the migrated rows: a redelivered webhook is still a duplicate.
    with database.engine.connect() as conn:
        body = (
            conn.execute(
                sa.text("SELECT body FROM inbound_events WHERE channel = 'depop' ORDER BY id")
            )
            .scalars()
            .first()
        )
    assert isinstance(body, bytes)
    hub = make_hub(database)
    try:
        now = str(int(time.time()))
        signature = sign_timestamped_hex(secret=DEPOP_SECRET, timestamp=now, body=body)
        again = hub.client.post(
            "/webhooks/depop",
            content=body,
            headers={"x-depop-timestamp": now, "x-depop-signature": signature},
        )
        assert again.json()["status"] == "duplicate", again.text
        hub.drain()
        assert len(hub.orders(channel="depop")) == 1
    finally:
        hub.close()


def test_the_downgrade_refuses_to_merge_two_shops(database: Database) -> None:
    hub = make_hub(database)
    try:
        simulator, settings = hub.wired.add_account("depop", "shop-b")
        assert isinstance(simulator, DepopSimulator)
        made = hub.admin(
            "POST",
            "/admin/connections",
            json={"system": "depop", "name": "shop-b", "settings": plain_values(settings)},
        )
        assert made.status_code == 201
        simulator.add_product("SKU-1", quantity=1)
        hub.set_stock("SKU-1", 1)
        simulator.purchase("SKU-1")
        hub.drain()
    finally:
        hub.close()
    config = alembic_config(database.url)
    try:
        command.downgrade(config, "0007")
        raise AssertionError("the downgrade merged two shops' orders")
    except RuntimeError as exc:
        assert "connections other than the defaults" in str(exc)
    finally:
        command.upgrade(config, "head")
