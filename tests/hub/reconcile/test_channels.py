"""topi and ABOUT YOU are reconciled the way Depop is: an order whose webhook was lost is found
in the channel's order list and taken through the channel's own flow."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from hub.db import Database
from tests.fake_channel import order_json, to_order
from tests.harness import Hub, make_hub
from tests.hub.reconcile.support import kinds, reconcile


def test_topi_order_whose_created_webhook_was_lost_is_found_and_accepted(hub: Hub) -> None:
    hub.set_stock("LAPTOP-14", 2)
    hub.topi.drop_next_webhooks(1)
    order_id = hub.topi.create_order({"LAPTOP-14": 1})
    assert hub.orders(channel="topi") == []

    found = reconcile(hub, "topi")

    assert (found["state"], found["seen"], found["created"]) == ("done", 1, 1)
    assert kinds(found) == ["missing_order"]
    assert hub.topi.calls_to("GET", "/v1/orders/paginated")
    order = hub.order("topi", order_id)
    assert order["status"] == "confirmed"
    assert [h["trigger"] for h in order["history"]][:3] == ["receive", "acknowledge", "confirm"]
    assert hub.topi.order(order_id)["status"] == "confirmed"
    assert hub.deliverr_order(order["id"])["externalOrderId"] == order["id"]
    assert reconcile(hub, "topi")["mismatches"] == []


def test_aboutyou_order_whose_created_webhook_was_lost_is_found_and_routed(hub: Hub) -> None:
    hub.set_stock("DRESS-38", 2)
    hub.aboutyou.drop_next_webhooks(1)
    order_id = hub.aboutyou.create_order("DRESS-38")
    assert hub.orders(channel="aboutyou") == []

    found = reconcile(hub, "aboutyou")

    assert (found["state"], found["seen"], found["created"]) == ("done", 1, 1)
    assert kinds(found) == ["missing_order"]
    assert hub.aboutyou.calls_to("GET", "/api/v1/orders/")
    order = hub.order("aboutyou", str(order_id))
    assert order["status"] == "confirmed"
    assert hub.deliverr_order(order["id"])["externalOrderId"] == order["id"]
    assert hub.stock("DRESS-38")["reserved"] == 1
    assert reconcile(hub, "aboutyou")["mismatches"] == []


@pytest.fixture
def fake_hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, fake=True)
    yield h
    h.close()


def test_an_order_the_hub_cannot_take_is_reported_and_the_rest_still_count(
    fake_hub: Hub,
) -> None:
    assert fake_hub.fake is not None
    good = to_order(order_json("F-1", ("PEN", 1)))
    # Two lines under one line id: the hub's unique line key refuses the order.
    broken = replace(good, channel_order_id="F-2", lines=(good.lines[0], good.lines[0]))
    fake_hub.fake.orders = {
        "F-1": good,
        "F-2": broken,
        "F-3": replace(good, channel_order_id="F-3"),
    }

    found = reconcile(fake_hub, "fake")

    assert (found["state"], found["seen"], found["created"]) == ("done", 3, 2)
    by_order = {m["channel_order_id"]: m for m in found["mismatches"]}
    assert {k: m["kind"] for k, m in by_order.items()} == {
        "F-1": "missing_order",
        "F-2": "not_applied",
        "F-3": "missing_order",
    }
    assert "IntegrityError" in by_order["F-2"]["action"]
    assert sorted(o["channel_order_id"] for o in fake_hub.orders(channel="fake")) == ["F-1", "F-3"]
