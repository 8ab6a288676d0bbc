"""A page of new orders advanced together (`orders.advance_many`, what reconciliation uses)
ends where advancing them one after another ends: the same states, history, flags,
reservations, stock and jobs, on both backends. Each run gets a page of the same shape on SKUs
of its own, so the two can be compared row for row."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import col, select

from connectors.base import Capability, ChannelOrder
from hub.db import Database
from hub.inventory import repository as stock
from hub.jobs.models import Job
from hub.orders import repository as orders_repo
from hub.orders import service as orders
from tests.fake_channel import order_json, to_order
from tests.harness import Hub, make_hub


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, fake=True)
    yield h
    h.close()


def page(run: str, rejecting: str) -> list[ChannelOrder]:
    """Orders of every kind `advance` tells apart, on SKUs prefixed with `run`."""

    def depop(n: int, *lines: tuple[str, int]) -> ChannelOrder:
        return replace(to_order(order_json(f"{run}-D{n}", *lines)), channel="depop")

    tee, cap = f"{run}-TEE", f"{run}-CAP"
    no_sku = depop(5, (cap, 1), (cap, 1))
    no_sku = replace(no_sku, lines=(replace(no_sku.lines[0], sku=None), no_sku.lines[1]))
    negative = depop(6, (tee, 1))
    negative = replace(negative, lines=(replace(negative.lines[0], unit_price=Decimal(-5)),))
    return [
        depop(1, (tee, 1)),
        depop(2, (tee, 1), (cap, 2)),
        depop(3, (tee, 2)),  # one tee left: short, a paid order waits flagged
        depop(4, (cap, 1)),
        no_sku,  # flagged on receipt, so one by one; holds the unit it names
        negative,  # money out of range: held where it is
        to_order(order_json(f"{run}-F1", (tee, 1))),  # a channel with acknowledge/accept calls
        replace(to_order(order_json(f"{run}-R1", (cap, 5))), channel=rejecting),  # short
        replace(to_order(order_json(f"{run}-R2", (cap, 1))), channel=rejecting),
        depop(7, (f"{run}-UNTRACKED", 1)),
    ]


def outcome(hub: Hub, run: str, order_ids: list[str]) -> dict[str, Any]:
    """What the run left, with its own ids and prefix taken out."""

    def plain(value: Any, order_id: str = "") -> Any:
        text = repr(value).replace(f"{run}-", "")
        return text.replace(order_id, "ORDER") if order_id else text

    with hub.db.transaction() as session:
        found: dict[str, Any] = {}
        for i, order_id in enumerate(order_ids):
            order = orders.get(session, order_id)
            found[f"order {i}"] = (
                order.status,
                order.needs_attention,
                plain(order.attention_reason),
                [
                    (e.trigger, e.from_state, e.to_state, e.source, plain(e.detail))
                    for e in orders_repo.history(session, order_id)
                ],
                [(f.code, plain(f.message)) for f in orders_repo.flags(session, order_id)],
                [
                    (plain(r.sku), r.quantity, r.committed, r.released)
                    for r in stock.reservations(session, order_id)
                ],
                sorted(
                    (j.kind, plain(j.idempotency_key, order_id), plain(j.payload), j.connection)
                    for j in session.scalars(select(Job).where(col(Job.order_id) == order_id))
                ),
            )
        for sku in ("TEE", "CAP"):
            item = stock.get(session, f"{run}-{sku}")
            assert item is not None
            found[sku] = (item.on_hand, item.reserved)
        found["listing syncs"] = sorted(
            (plain(j.idempotency_key), plain(j.payload))
            for j in session.scalars(select(Job).where(col(Job.idempotency_key).like(f"%:{run}-%")))
        )
        return found


def apply(hub: Hub, run: str, together: bool) -> dict[str, Any]:
    hub.set_stock(f"{run}-TEE", 3)
    hub.set_stock(f"{run}-CAP", 5)
    with hub.db.transaction() as session:
        created = orders.receive_many(session, page(run, "fake"), "test:receive")
        if together:
            orders.advance_many(session, hub.runtime, created, "test")
        else:
            for order in created:
                orders.advance(session, hub.runtime, order, "test")
        ids = [order.id for order in created]
    return outcome(hub, run, ids)


def test_a_page_advanced_together_ends_as_one_order_after_another(hub: Hub) -> None:
    assert hub.fake is not None
    # The fake channel with a reject call only: its orders move without calling out, and a
    # short one is rejected (through the channel) rather than kept.
    hub.fake.capabilities = frozenset({Capability.REJECT, Capability.CANCEL})
    one_by_one = apply(hub, "A", together=False)
    together = apply(hub, "B", together=True)

    for key in one_by_one:
        assert together[key] == one_by_one[key], key
    # The page reaches every branch: routed, waiting for stock, no SKU, held, rejected.
    statuses = [one_by_one[f"order {i}"][0] for i in range(10)]
    assert statuses == [
        "confirmed",
        "confirmed",
        "acknowledged",
        "confirmed",
        "confirmed",
        "created",
        "confirmed",
        "acknowledged",
        "confirmed",
        "confirmed",
    ]
    assert one_by_one["TEE"] == (3, 3) and one_by_one["CAP"] == (5, 5)


def test_channels_with_acknowledge_calls_are_advanced_one_by_one(hub: Hub) -> None:
    """The fake channel as configured (acknowledge, accept, reject): each order gets its
    acknowledge job, nothing moves before the channel answered."""
    one_by_one = apply(hub, "C", together=False)
    together = apply(hub, "D", together=True)
    for key in one_by_one:
        assert together[key] == one_by_one[key], key
    fake_order = one_by_one["order 6"]
    assert fake_order[0] == "created"
    assert [job[0] for job in fake_order[6]] == ["order.acknowledge"]
