"""A reconciliation page takes its stock rows in SKU order, as every other stock writer does, so
it cannot deadlock with one of them (Postgres: SQLite has one writer)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from hub.db import Database
from tests.harness import Hub, make_hub

from .support import run


@pytest.fixture
def pg_hub(postgres_database: Database) -> Iterator[Hub]:
    h = make_hub(postgres_database)
    yield h
    h.close()


def _wait_until_a_backend_waits_for_a_lock(engine: sa.Engine, others: int) -> None:
    """Until more than `others` backends of this database wait for a lock (a guard, not a
    measurement: a page that never blocks fails the test by timing out here)."""
    deadline = time.monotonic() + 60
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while True:
        with engine.connect() as conn:
            if conn.scalar(query) > others:
                return
        assert time.monotonic() < deadline, "the reconciliation page never waited for a lock"
        time.sleep(0.01)


def test_a_page_locks_its_skus_in_order_so_a_sorted_writer_never_deadlocks_with_it(
    pg_hub: Hub,
) -> None:
    hub = pg_hub
    for sku in ("SKU-A", "SKU-B"):
        hub.depop.add_product(sku, quantity=1)
        hub.set_stock(sku, 1)
    # Two sales the hub never heard of; Depop lists the newest first, so the page reaches
    # SKU-B's order before SKU-A's: the reverse of SKU order.
    hub.depop.drop_next_webhooks(2)
    older = hub.depop.purchase("SKU-A")
    newer = hub.depop.purchase("SKU-B")

    engine = sa.create_engine(hub.db.url)
    try:
        with engine.connect() as other:
            # Another writer takes SKU-A's row first, as a two-SKU order locking in SKU order.
            other.execute(sa.text("SELECT 1 FROM stock_items WHERE sku = 'SKU-A' FOR UPDATE"))

            started = hub.admin("POST", "/admin/reconcile/depop", json={})
            assert started.status_code == 202, started.text
            drained = threading.Thread(target=hub.drain)
            drained.start()
            _wait_until_a_backend_waits_for_a_lock(engine, 0)

            # The page waits for SKU-A; it must not hold SKU-B meanwhile, or the two deadlock.
            taken = other.execute(
                sa.text("SELECT sku FROM stock_items WHERE sku = 'SKU-B' FOR UPDATE NOWAIT")
            ).scalar()
            assert taken == "SKU-B"
            other.commit()
            drained.join(120)
            assert not drained.is_alive()
    finally:
        engine.dispose()

    done = run(hub, started.json()["run_id"])
    assert (done["state"], done["created"]) == ("done", 2)
    for purchase_id in (older, newer):
        assert hub.order("depop", purchase_id)["status"] == "confirmed"
    for sku in ("SKU-A", "SKU-B"):
        assert hub.stock(sku)["reserved"] == 1
