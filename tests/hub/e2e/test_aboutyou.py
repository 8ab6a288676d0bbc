"""ABOUT YOU order delegation (dropshipping) through the whole hub: `X-API-Key` webhooks in, the
ABOUT YOU and Deliverr simulators out, on SQLite and on Postgres.

The simulator reports every batch as pending on its first poll and completed on the next, so
each ship or cancel batch the hub sends is polled twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from hub.db import Database
from tests.harness import AY_HOOK, AY_RETURN_LABEL, Hub, make_hub

SHIP = "/api/v1/orders/ship"
CANCEL = "/api/v1/orders/cancel"
SHIP_RESULTS = "/api/v1/results/ship-orders"
CANCEL_RESULTS = "/api/v1/results/cancel-orders"


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database)
    yield h
    h.close()


def routed_order(hub: Hub, *skus: str) -> tuple[str, dict[str, Any], str]:
    """An ABOUT YOU order the hub confirmed and sent to Deliverr: the ABOUT YOU order number, the
    hub's detail of it, and the Deliverr order id."""
    ay_id = hub.aboutyou.create_order(*skus)
    hub.drain()
    order = hub.order("aboutyou", str(ay_id))
    assert order["status"] == "confirmed", order
    return ay_id, order, str(hub.deliverr_order(order["id"])["orderId"])


def item_statuses(hub: Hub, ay_id: str) -> list[str]:
    return [item["status"] for item in hub.aboutyou.order(ay_id)["order_items"]]


def ship_bodies(hub: Hub) -> list[Any]:
    return [call.json for call in hub.aboutyou.calls_to("POST", SHIP)]


def polled_batches(hub: Hub, path: str) -> list[str]:
    return [call.query["batch_request_id"] for call in hub.aboutyou.calls_to("GET", path)]


def test_aboutyou_order_ships_through_deliverr_each_parcel_reported_in_a_polled_batch(
    hub: Hub,
) -> None:
    hub.set_stock("SKU-A", 3)
    hub.set_stock("SKU-B", 3)
    ay_id, order, deliverr_id = routed_order(hub, "SKU-A", "SKU-B")
    item_a, item_b = hub.aboutyou.item_ids(ay_id)
    # ABOUT YOU has no acknowledge or accept call: the order is confirmed without one.
    assert [h["trigger"] for h in order["history"]] == [
        "receive",
        "acknowledge",
        "confirm",
        "routed",
    ]
    assert hub.aboutyou.calls_to("POST", "/api/v1/orders") == []
    assert [
        (line["channel_line_id"], line["sku"], line["unit_price"]) for line in order["lines"]
    ] == [
        (str(item_a), "SKU-A", "49.95"),
        (str(item_b), "SKU-B", "49.95"),
    ]
    assert (order["currency"], order["total_amount"]) == ("EUR", "99.90")
    assert hub.stock("SKU-A")["reserved"] == 1

    first = hub.deliverr.ship(deliverr_id, [("SKU-A", 1)])
    hub.drain()
    assert hub.order("aboutyou", str(ay_id))["status"] == "partially_fulfilled"
    assert item_statuses(hub, ay_id) == ["shipped", "open"]

    second = hub.deliverr.ship(deliverr_id, carrier="DHL")
    hub.drain()
    order = hub.order("aboutyou", str(ay_id))
    assert order["status"] == "completed"
    assert not order["needs_attention"]
    assert [s["pushed_to_channel"] for s in order["shipments"]] == [True, True]
    assert hub.aboutyou.order(ay_id)["status"] == "shipped"

    # The return label is the seller's configured one, never the outbound tracking number.
    assert ship_bodies(hub) == [
        {
            "items": [
                {
                    "order_items": [item_a],
                    "carrier_key": "UPS",
                    "shipment_tracking_key": first["trackingNumber"],
                    "return_tracking_key": AY_RETURN_LABEL,
                }
            ]
        },
        {
            "items": [
                {
                    "order_items": [item_b],
                    "carrier_key": "DHL",
                    "shipment_tracking_key": second["trackingNumber"],
                    "return_tracking_key": AY_RETURN_LABEL,
                }
            ]
        },
    ]
    # Each batch is polled until ABOUT YOU reports it completed (pending, then completed).
    first_batch, _, second_batch, _ = batches = polled_batches(hub, SHIP_RESULTS)
    assert batches == [first_batch, first_batch, second_batch, second_batch]
    assert first_batch != second_batch
    assert [(i["success"], i["errors"]) for i in hub.aboutyou.batches[first_batch].items] == [
        (True, [])
    ]
    # ABOUT YOU's own order_items.shipped notices are recorded, not acted on.
    assert [h["trigger"] for h in order["history"]].count("order_items.shipped") == 2
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 2, "reserved": 0, "available": 2}


def test_aboutyou_prices_sent_as_json_numbers_keep_every_digit(hub: Hub) -> None:
    ay_id = hub.aboutyou.create_order(
        "SKU-A", "SKU-B", prices={"SKU-A": Decimal("19.99"), "SKU-B": Decimal("0.10")}
    )
    hub.drain()
    order = hub.order("aboutyou", str(ay_id))
    assert [line["unit_price"] for line in order["lines"]] == ["19.99", "0.10"]
    assert order["total_amount"] == "20.09"


def test_item_cancelled_before_routing_never_reaches_deliverr(hub: Hub) -> None:
    hub.set_stock("SKU-A", 3)
    hub.set_stock("SKU-B", 3)
    ay_id = hub.aboutyou.create_order("SKU-A", "SKU-B")
    item_a, _ = hub.aboutyou.item_ids(ay_id)
    hub.aboutyou.cancel_items(ay_id, [item_a])
    hub.drain()

    order = hub.order("aboutyou", str(ay_id))
    assert order["status"] == "confirmed"
    assert [line["cancelled_quantity"] for line in order["lines"]] == [1, 0]
    lines = hub.deliverr_order(order["id"])["lineItems"]
    assert [(i["externalProductId"], i["quantity"]) for i in lines] == [("SKU-B", 1)]
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 3, "reserved": 0, "available": 3}
    assert hub.stock("SKU-B")["reserved"] == 1
    assert not order["needs_attention"]


def test_item_cancelled_after_routing_releases_its_stock_and_flags_the_deliverr_order(
    hub: Hub,
) -> None:
    hub.set_stock("SKU-A", 3)
    hub.set_stock("SKU-B", 3)
    ay_id, order, deliverr_id = routed_order(hub, "SKU-A", "SKU-B")
    item_a, _ = hub.aboutyou.item_ids(ay_id)

    hub.aboutyou.cancel_items(ay_id, [item_a])
    hub.drain()

    order = hub.order("aboutyou", str(ay_id))
    # The rest of the order goes on; Deliverr cannot drop one line, so a person must.
    assert order["status"] == "confirmed"
    assert [line["cancelled_quantity"] for line in order["lines"]] == [1, 0]
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 3, "reserved": 0, "available": 3}
    assert hub.stock("SKU-B")["reserved"] == 1
    assert order["needs_attention"]
    assert f"{item_a} (SKU-A)" in order["attention_reason"]
    assert f"deliverr ({deliverr_id})" in order["attention_reason"]
    assert hub.deliverr_order(order["id"])["status"] == "CREATED"


def test_cancelled_item_shipped_anyway_is_flagged_and_the_rest_still_reaches_aboutyou(
    hub: Hub,
) -> None:
    hub.set_stock("SKU-A", 3)
    hub.set_stock("SKU-B", 3)
    ay_id, order, deliverr_id = routed_order(hub, "SKU-A", "SKU-B")
    item_a, item_b = hub.aboutyou.item_ids(ay_id)
    hub.aboutyou.cancel_items(ay_id, [item_a])
    hub.drain()

    hub.deliverr.ship(deliverr_id)  # nobody took SKU-A out: the parcel holds both
    hub.drain()

    order = hub.order("aboutyou", str(ay_id))
    assert order["status"] == "completed"
    assert [line["sku"] for line in order["shipments"][0]["lines"]] == ["SKU-B"]
    assert [body["items"][0]["order_items"] for body in ship_bodies(hub)] == [[item_b]]
    assert item_statuses(hub, ay_id) == ["cancelled", "shipped"]
    assert order["needs_attention"]
    assert "1 x SKU-A" in order["attention_reason"]
    # The unit left the warehouse all the same.
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 2, "reserved": 0, "available": 2}
    events = hub.admin("GET", "/admin/events").json()["data"]
    assert {e["status"] for e in events} == {"processed"}


def test_unit_counted_on_a_cancelled_line_fills_the_open_line_of_the_same_sku(hub: Hub) -> None:
    hub.set_stock("SKU-A", 3)
    ay_id, order, deliverr_id = routed_order(hub, "SKU-A", "SKU-A")
    first, second = hub.aboutyou.item_ids(ay_id)
    hub.aboutyou.cancel_items(ay_id, [first])
    hub.drain()

    # Deliverr books the unit it ships against its first line, the one cancelled.
    hub.deliverr.ship(deliverr_id, [("SKU-A", 1)])
    hub.drain()

    order = hub.order("aboutyou", str(ay_id))
    assert order["status"] == "completed"
    assert [(line["cancelled_quantity"], line["shipped_quantity"]) for line in order["lines"]] == [
        (1, 0),
        (0, 1),
    ]
    assert [body["items"][0]["order_items"] for body in ship_bodies(hub)] == [[second]]
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 2, "reserved": 0, "available": 2}


def test_every_item_cancelled_cancels_the_order_and_its_deliverr_order(hub: Hub) -> None:
    hub.set_stock("SKU-A", 3)
    ay_id, order, deliverr_id = routed_order(hub, "SKU-A", "SKU-A")
    hub.aboutyou.cancel_items(ay_id, hub.aboutyou.item_ids(ay_id))
    hub.drain()
    hub.deliverr.flush_webhooks()
    hub.drain()

    order = hub.order("aboutyou", str(ay_id))
    assert order["status"] == "cancelled"
    assert not order["needs_attention"]
    assert hub.deliverr_order(order["id"])["status"] == "CANCELLED"
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 3, "reserved": 0, "available": 3}


def test_marketplace_fulfilled_order_is_stored_and_ignored(hub: Hub) -> None:
    hub.set_stock("SKU-A", 3)
    hub.aboutyou.create_order("SKU-A", fulfillment_type="fulfillment_by_marketplace")
    hub.drain()

    events = hub.admin("GET", "/admin/events", params={"channel": "aboutyou"}).json()["data"]
    assert [(e["event_type"], e["status"]) for e in events] == [("order.created", "ignored")]
    assert "fulfillment_by_marketplace" in events[0]["error"]
    assert hub.orders() == []
    assert hub.deliverr.orders == {}
    assert hub.stock("SKU-A")["reserved"] == 0


def test_unfulfillable_order_has_its_items_cancelled_at_aboutyou_and_is_rejected(
    hub: Hub,
) -> None:
    hub.set_stock("SKU-A", 1)
    ay_id = hub.aboutyou.create_order("SKU-A", "SKU-A")
    items = hub.aboutyou.item_ids(ay_id)
    hub.drain()

    order = hub.order("aboutyou", str(ay_id))
    assert order["status"] == "rejected"
    assert order["history"][-1]["detail"] == {"reason": "out of stock: SKU-A"}
    assert [call.json for call in hub.aboutyou.calls_to("POST", CANCEL)] == [
        {"items": [{"id": item} for item in items]}
    ]
    assert len(polled_batches(hub, CANCEL_RESULTS)) == 2
    assert item_statuses(hub, ay_id) == ["cancelled", "cancelled"]
    assert hub.aboutyou.order(ay_id)["status"] == "cancelled"
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 1, "reserved": 0, "available": 1}
    assert hub.deliverr.order_by_external_id(order["id"]) is None
    assert not order["needs_attention"]

    # ABOUT YOU reports the cancellation our rejection made: recorded, nobody must act.
    hub.aboutyou.send_webhook(
        "order_items.cancelled", {"items": hub.aboutyou.order(ay_id)["order_items"]}
    )
    hub.drain()
    order = hub.order("aboutyou", str(ay_id))
    assert order["status"] == "rejected"
    assert not order["needs_attention"]


def test_shipment_with_an_unmapped_carrier_flags_the_order_and_reports_nothing(hub: Hub) -> None:
    hub.set_stock("SKU-A", 3)
    ay_id, order, deliverr_id = routed_order(hub, "SKU-A")
    hub.deliverr.ship(deliverr_id, carrier="Pigeon Post")
    hub.drain()

    order = hub.order("aboutyou", str(ay_id))
    assert order["status"] == "completed"
    assert order["needs_attention"]
    assert "'Pigeon Post'" in order["attention_reason"]
    assert "ABOUTYOU_CARRIER_MAP" in order["attention_reason"]
    assert [s["pushed_to_channel"] for s in order["shipments"]] == [False]
    assert ship_bodies(hub) == []
    assert item_statuses(hub, ay_id) == ["open"]


def test_item_cancelled_unbeknown_to_the_hub_is_not_reported_and_the_order_flagged(
    hub: Hub,
) -> None:
    hub.set_stock("SKU-A", 3)
    hub.set_stock("SKU-B", 3)
    ay_id, order, deliverr_id = routed_order(hub, "SKU-A", "SKU-B")
    item_a, item_b = hub.aboutyou.item_ids(ay_id)
    hub.aboutyou.drop_next_webhooks(1)
    hub.aboutyou.cancel_items(ay_id, [item_a])  # the hub never hears of it

    hub.deliverr.ship(deliverr_id)
    hub.drain()

    order = hub.order("aboutyou", str(ay_id))
    assert [body["items"][0]["order_items"] for body in ship_bodies(hub)] == [[item_b]]
    assert order["needs_attention"]
    assert f"ABOUT YOU shows items {item_a} cancelled" in order["attention_reason"]
    assert item_statuses(hub, ay_id) == ["cancelled", "shipped"]


def test_item_aboutyou_refuses_to_ship_flags_the_order_with_its_message(hub: Hub) -> None:
    hub.set_stock("SKU-A", 3)
    ay_id, order, deliverr_id = routed_order(hub, "SKU-A")
    hub.aboutyou.carriers.discard("UPS")  # the seller's UPS contract ended at ABOUT YOU

    hub.deliverr.ship(deliverr_id)
    hub.drain()

    order = hub.order("aboutyou", str(ay_id))
    assert order["needs_attention"]
    assert "Carrier key 'UPS' is not active." in order["attention_reason"]
    assert item_statuses(hub, ay_id) == ["open"]


@pytest.mark.parametrize("key", ["not-the-key", None], ids=["wrong-key", "missing-key"])
def test_webhook_with_a_wrong_or_missing_key_is_refused_and_nothing_stored(
    hub: Hub, key: str | None
) -> None:
    hub.set_stock("SKU-A", 3)
    hub.aboutyou.drop_next_webhooks(1)
    ay_id = hub.aboutyou.create_order("SKU-A")
    body = hub.aboutyou.sent_webhooks[-1].body
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["x-api-key"] = key

    response = hub.client.post("/webhooks/aboutyou", content=body, headers=headers)
    hub.drain()
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert hub.admin("GET", "/admin/events").json()["data"] == []
    assert hub.orders() == []

    # The same delivery with the right key is taken: the key alone made the difference.
    headers["x-api-key"] = AY_HOOK
    response = hub.client.post("/webhooks/aboutyou", content=body, headers=headers)
    hub.drain()
    assert response.json()["status"] == "accepted"
    assert hub.order("aboutyou", str(ay_id))["status"] == "confirmed"


def test_stock_changes_reach_aboutyou_and_skus_it_does_not_list_are_skipped(hub: Hub) -> None:
    hub.aboutyou.add_product("SKU-LISTED", 0)
    hub.set_stock("SKU-LISTED", 7)
    hub.set_stock("SKU-ELSEWHERE", 4)
    hub.drain()

    assert hub.aboutyou.stocks["SKU-LISTED"] == 7
    assert "SKU-ELSEWHERE" not in hub.aboutyou.stocks
    assert hub.admin("GET", "/admin/jobs", params={"state": "dead"}).json()["data"] == []
