"""The upkeep sweeps the scheduler queues: orders stuck in a state too long are flagged for a
person, and routed orders whose provider went quiet are polled."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from hub.db import Database
from hub.fulfilment.tasks import POLL_QUIET_FULFILMENT
from hub.orders.tasks import STUCK_ORDERS
from hub.types import utcnow
from tests.harness import Hub, make_hub
from tests.hub.reconcile.support import fire_now


def confirmed_depop_order(hub: Hub, sku: str = "MUG-1") -> str:
    hub.depop.add_product(sku, quantity=2)
    hub.set_stock(sku, 2)
    purchase_id = hub.depop.purchase(sku)
    hub.drain()
    order = hub.order("depop", purchase_id)
    assert order["status"] == "confirmed"
    return str(order["id"])


def needing_attention(hub: Hub) -> float:
    text = hub.client.get("/metrics").text
    found = re.search(r"^hub_orders_needing_attention(?:\{\})? (\S+)$", text, re.MULTILINE)
    assert found, "the gauge is missing from /metrics"
    return float(found.group(1))


@pytest.fixture
def strict_hub(database: Database) -> Iterator[Hub]:
    """Confirmed orders count as stuck at once; every other state has no limit."""
    h = make_hub(database, stuck_after_hours={"confirmed": 0})
    yield h
    h.close()


def test_an_order_past_its_states_limit_is_flagged_with_the_reason_and_counted(
    strict_hub: Hub,
) -> None:
    order_id = confirmed_depop_order(strict_hub)
    assert needing_attention(strict_hub) == 0

    fire_now(strict_hub, STUCK_ORDERS)

    order = strict_hub.order_by_id(order_id)
    assert order["needs_attention"] is True
    assert order["attention_reason"] == (
        "stuck: confirmed for more than 0 h, waiting for a shipment"
    )
    assert needing_attention(strict_hub) == 1
    flagged = strict_hub.orders(needs_attention=True)
    assert [o["id"] for o in flagged] == [order_id]


def test_a_flagged_order_is_not_flagged_again(strict_hub: Hub) -> None:
    order_id = confirmed_depop_order(strict_hub)
    fire_now(strict_hub, STUCK_ORDERS)
    flags = [h for h in strict_hub.order_by_id(order_id)["history"] if h["trigger"] == "flag"]

    # The next slot, so the sweep really runs again.
    interval = strict_hub.runtime.settings.maintenance_interval_seconds
    fire_now(strict_hub, STUCK_ORDERS, at=utcnow() + timedelta(seconds=interval))

    again = [h for h in strict_hub.order_by_id(order_id)["history"] if h["trigger"] == "flag"]
    assert len(flags) == len(again) == 1


def test_an_order_within_its_states_limit_is_left_alone(hub: Hub) -> None:
    order_id = confirmed_depop_order(hub)

    fire_now(hub, STUCK_ORDERS)

    assert hub.order_by_id(order_id)["needs_attention"] is False
    assert needing_attention(hub) == 0


def test_an_order_in_a_state_without_a_limit_is_left_alone(database: Database) -> None:
    h = make_hub(database, stuck_after_hours={"created": 0, "completed": 0})
    try:
        order_id = confirmed_depop_order(h)
        fire_now(h, STUCK_ORDERS)
        assert h.order_by_id(order_id)["needs_attention"] is False
    finally:
        h.close()


def test_a_routed_order_whose_provider_went_quiet_is_polled(database: Database) -> None:
    h = make_hub(database, fulfilment_poll_after_minutes=0)
    try:
        order_id = confirmed_depop_order(h)
        deliverr_id = h.deliverr_order(order_id)["orderId"]
        h.deliverr.drop_next_webhooks(1)
        h.deliverr.ship(deliverr_id)
        h.drain()
        assert h.order_by_id(order_id)["status"] == "confirmed", "the webhook was meant to be lost"

        fire_now(h, POLL_QUIET_FULFILMENT)

        order = h.order_by_id(order_id)
        assert order["status"] == "completed"
        assert [s["pushed_to_channel"] for s in order["shipments"]] == [True]
        assert h.deliverr.calls_to("GET", f"/orders/v1/order/{deliverr_id}")
        purchase_id = order["channel_order_id"]
        assert h.depop.orders[purchase_id]["status"] == "SHIPPED"
    finally:
        h.close()


def test_a_routed_order_heard_from_lately_is_not_polled(hub: Hub) -> None:
    order_id = confirmed_depop_order(hub)
    deliverr_id = hub.deliverr_order(order_id)["orderId"]

    fire_now(hub, POLL_QUIET_FULFILMENT)

    assert hub.deliverr.calls_to("GET", f"/orders/v1/order/{deliverr_id}") == []
