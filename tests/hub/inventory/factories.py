"""Orders to hold stock against, made through the orders service as a channel's order would be."""

from __future__ import annotations

import itertools

from hub.db import Database
from hub.orders import service as orders
from tests.fake_channel import order_json, to_order

_numbers = itertools.count(1)


def new_order(database: Database, *lines: tuple[str, int]) -> str:
    """A received fake-channel order with `lines` of (sku, quantity); its hub id."""
    incoming = to_order(order_json(f"F-{next(_numbers)}", *(lines or (("ANY", 1),))))
    with database.transaction() as session:
        order, _ = orders.receive(session, incoming, "test")
        return order.id


def new_orders(database: Database, n: int) -> list[str]:
    """`n` orders in one transaction (the concurrency tests need hundreds)."""
    ids: list[str] = []
    with database.transaction() as session:
        for _ in range(n):
            incoming = to_order(order_json(f"F-{next(_numbers)}", ("ANY", 1)))
            order, _ = orders.receive(session, incoming, "test")
            ids.append(order.id)
    return ids
