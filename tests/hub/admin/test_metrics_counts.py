"""The order figures of `/metrics` come from counts the database keeps as orders change: they
match a count of the orders table after every kind of change, before and after the counts are
folded, and a scrape reads no orders table at all."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event, func, select
from sqlmodel import col

from connectors.base import Permanent
from hub.admin import metrics
from hub.db import Database
from hub.jobs import queue
from hub.orders import repository as repo
from hub.orders.models import Order, OrderCountChange
from hub.orders.tasks import FOLD_COUNTS
from hub.types import utcnow
from tests.fake_channel import order_json, to_order
from tests.harness import Hub, make_hub

from .conftest import ok, place
from .test_metrics import scrape, value

Figures = tuple[dict[tuple[str, str], int], int]


def truth(db: Database) -> Figures:
    """The figures as a count of the whole orders table tells them."""
    with db.reader() as session:
        rows = session.execute(
            select(col(Order.channel), col(Order.status), func.count()).group_by(
                col(Order.channel), col(Order.status)
            )
        ).all()
        attention = session.scalar(select(func.count()).where(col(Order.needs_attention).is_(True)))
    return {(str(c), str(s)): int(n) for c, s, n in rows}, int(attention or 0)


def scraped(hub: Hub) -> Figures:
    samples = scrape(hub)
    by_state = {
        (labels["channel"], labels["state"]): int(n)
        for (name, frozen), n in samples.items()
        if name == "hub_orders" and n and (labels := dict(frozen))
    }
    return by_state, int(value(samples, "hub_orders_needing_attention"))


def unfolded(db: Database) -> int:
    with db.reader() as session:
        return int(session.scalar(select(func.count()).select_from(OrderCountChange)) or 0)


def fold(hub: Hub, key: str) -> None:
    """Queue a fold as its schedule does (under a key of the test's), and run it."""
    with hub.db.transaction() as session:
        assert queue.enqueue(session, FOLD_COUNTS, key)
    hub.drain()


def test_order_figures_match_the_orders_table_through_every_change_and_fold(hub: Hub) -> None:
    assert hub.fake is not None
    assert truth(hub.db) == scraped(hub) == ({}, 0)
    hub.set_stock("SKU-1", 10)

    place(hub, "A-1", ("SKU-1", 1))
    place(hub, "A-2", ("SKU-1", 2))
    hub.fake.failures["accept"] = [Permanent("the channel refused the accept")]
    flagged = place(hub, "A-3", ("SKU-1", 1))  # acknowledged, and flagged
    assert truth(hub.db) == scraped(hub)
    assert scraped(hub)[1] == 1

    fold(hub, "fold-1")
    assert unfolded(hub.db) == 0
    assert truth(hub.db) == scraped(hub)

    # A cancel, an operator's resolve, and an order reconciliation inserts in a batch.
    cancelled = hub.order("fake", "A-1")
    ok(hub.admin("POST", f"/admin/orders/{cancelled['id']}/cancel", json={"reason": "r"}))
    ok(hub.admin("POST", f"/admin/orders/{flagged['id']}/resolve", json={"note": "called"}))
    hub.fake.orders["R-1"] = to_order(order_json("R-1", ("SKU-1", 1)))
    ok(hub.admin("POST", "/admin/reconcile/fake", json={}), 202)
    hub.drain()
    figures = scraped(hub)
    assert truth(hub.db) == figures
    assert figures[0][("fake", "cancelled")] == 1
    assert figures[1] == 0
    assert unfolded(hub.db) > 0

    fold(hub, "fold-2")
    assert unfolded(hub.db) == 0
    assert truth(hub.db) == scraped(hub) == figures


def test_a_scrape_reads_no_orders_table(hub: Hub) -> None:
    hub.set_stock("SKU-1", 10)
    place(hub, "A-1", ("SKU-1", 1))
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(hub.db.engine, "before_cursor_execute", seen)
    try:
        body = metrics.render(hub.db).decode()
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", seen)

    assert 'hub_orders{channel="fake",state="confirmed"} 1.0' in body
    assert statements
    reads_orders = re.compile(r"\b(FROM|JOIN)\s+\"?orders\"?(\s|$)", re.IGNORECASE)
    assert [s for s in statements if reads_orders.search(s)] == []


@pytest.fixture
def pg_hub(postgres_database: Database) -> Iterator[Hub]:
    h = make_hub(postgres_database)
    yield h
    h.close()


def test_folds_racing_order_writers_lose_and_double_no_change(pg_hub: Hub) -> None:
    db = pg_hub.db
    writers, each = 4, 60
    stop = threading.Event()
    failures: list[BaseException] = []
    now: datetime = utcnow()

    def write(w: int) -> None:
        try:
            for i in range(each):
                order_id = f"ord_race_{w}_{i}"
                with db.transaction() as session:
                    session.execute(
                        sa.insert(Order).values(
                            id=order_id,
                            channel=f"ch{w % 2}",
                            connection=f"ch{w % 2}/default",
                            channel_order_id=order_id,
                            status="created",
                            channel_status="",
                            currency="EUR",
                            total_amount=Decimal("1.00"),
                            attributes={},
                            placed_at=now,
                            needs_attention=False,
                            version=1,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                if i % 3:
                    with db.transaction() as session:
                        session.execute(
                            sa.update(Order)
                            .where(col(Order.id) == order_id)
                            .values(status="confirmed", needs_attention=i % 2 == 0)
                        )
        except BaseException as exc:
            failures.append(exc)

    def fold_until_stopped() -> None:
        try:
            while not stop.is_set():
                with db.transaction() as session:
                    repo.fold_count_changes(session)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    folders = [threading.Thread(target=fold_until_stopped) for _ in range(2)]
    for thread in threads + folders:
        thread.start()
    for thread in threads:
        thread.join(120)
    stop.set()
    for thread in folders:
        thread.join(120)
    assert not failures, failures[0]

    by_state, attention = truth(db)
    assert sum(by_state.values()) == writers * each
    assert scraped(pg_hub) == (by_state, attention)
    with db.transaction() as session:
        while repo.fold_count_changes(session):
            pass
    assert unfolded(db) == 0
    assert scraped(pg_hub) == (by_state, attention)
