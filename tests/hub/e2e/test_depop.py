"""Depop through the whole hub: signed webhooks in, Seller API and Deliverr calls out.

Every test drives the Depop simulator as a buyer or as Depop itself would, lets the hub's worker
run, and reads the result through the admin API and the simulators' recorded state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.depop.simulator import DepopError
from connectors.depop.transformers import ORDER_NEW
from hub.db import Database
from tests.harness import Hub, make_hub

SKU = "TEE-BLUE-M"


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database)
    yield h
    h.close()


@pytest.fixture
def manual_hub(database: Database) -> Iterator[Hub]:
    """Deliverr not configured: every order is routed to `manual`."""
    h = make_hub(database, deliverr=False, flexport=False)
    yield h
    h.close()


def triggers(order: dict[str, Any]) -> list[str]:
    return [entry["trigger"] for entry in order["history"]]


def entries(order: dict[str, Any], trigger: str) -> list[dict[str, Any]]:
    return [entry for entry in order["history"] if entry["trigger"] == trigger]


def job_states(order: dict[str, Any], kind: str) -> list[tuple[str, int]]:
    return [(job["state"], job["attempts"]) for job in order["jobs"] if job["kind"] == kind]


def buy(hub: Hub, *skus: str, stock: int = 5) -> str:
    """List each SKU on Depop with stock at the hub, buy one of each, and let the hub run."""
    for sku in skus:
        hub.depop.add_product(sku, quantity=stock)
        hub.set_stock(sku, stock)
    purchase_id = hub.depop.purchase(*skus)
    hub.drain()
    return purchase_id


def ship_by_hand(hub: Hub, order_id: str, sku: str, tracking: str) -> dict[str, Any]:
    response = hub.admin(
        "POST",
        f"/admin/orders/{order_id}/shipments",
        json={
            "lines": [{"sku": sku, "quantity": 1}],
            "carrier": "Royal Mail",
            "tracking_number": tracking,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def last_event_id(hub: Hub) -> str:
    return str(json.loads(hub.depop.sent_webhooks[-1].body)["id"])


# -- orders in ---------------------------------------------------------------------------------


def test_purchase_is_confirmed_at_once_and_sent_to_deliverr(hub: Hub) -> None:
    purchase_id = buy(hub, SKU)

    order = hub.order("depop", purchase_id)
    assert order["status"] == "confirmed"
    assert [(h["trigger"], h["from_state"], h["to_state"]) for h in order["history"][:3]] == [
        ("receive", None, "created"),
        ("acknowledge", "created", "acknowledged"),
        ("confirm", "acknowledged", "confirmed"),
    ]
    assert order["channel_status"] == "SHIPPING_PENDING"
    assert order["total_amount"] == "30.99"  # 25.99 for the item, 5.00 for shipping
    assert not order["needs_attention"]
    assert hub.stock(SKU) == {"sku": SKU, "on_hand": 5, "reserved": 1, "available": 4}

    depop_order = hub.depop.orders[purchase_id]
    item = depop_order["line_items"][0]
    (line,) = order["lines"]
    assert (line["channel_line_id"], line["sku"], line["quantity"], line["unit_price"]) == (
        str(item["purchase_item_id"]),
        SKU,
        1,
        "25.99",
    )

    assert order["fulfilment_provider"] == "deliverr"
    sent = hub.deliverr_order(order["id"])
    assert order["fulfilment_ref"] == sent["orderId"]
    [routed] = entries(order, "routed")
    assert (routed["from_state"], routed["to_state"], routed["detail"]) == (
        "confirmed",
        "confirmed",
        {"provider": "deliverr/default", "reference": sent["orderId"]},
    )
    assert routed["source"].startswith("job:")
    assert sent["externalOrderId"] == order["id"]
    assert sent["source"] == "depop"
    assert sent["sourceOrderId"] == purchase_id
    assert sent["shiptoAddress"] == {
        "name": "John Doe",
        "street1": "123 Main St",
        "street2": "Apt 1",
        "city": "London",
        "state": "Greater London",
        "postcode": "EC1V 4PW",
        "countryCode": "GB",
    }
    assert sent["lineItems"] == [
        {"externalProductId": SKU, "quantity": 1, "lineItemId": str(line["id"])}
    ]
    # Deliverr's order answer does not repeat it: read what the hub sent.
    [create] = hub.deliverr.calls_to("POST", "/orders/v1/order")
    assert create.json["orderCreationTime"] == depop_order["created_at"]


def test_a_redelivered_order_webhook_creates_one_order(hub: Hub) -> None:
    purchase_id = buy(hub, SKU)
    event_id = last_event_id(hub)
    body, _ = hub.depop.sent_events[event_id]

    again = hub.client.post(
        "/webhooks/depop",
        content=body,
        headers={
            "content-type": "application/json",
            **hub.depop.signed_headers(body, str(int(time.time()))),
        },
    )
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    # Depop may also resend the same order under a new envelope id.
    hub.depop.send_event(ORDER_NEW, hub.depop.orders[purchase_id])
    hub.drain()

    assert len(hub.orders(channel="depop")) == 1
    order = hub.order("depop", purchase_id)
    assert triggers(order).count("receive") == 1
    assert len(hub.deliverr.orders) == 1
    assert hub.stock(SKU)["reserved"] == 1


def test_a_line_without_sku_is_kept_and_the_order_flagged_not_routed(hub: Hub) -> None:
    hub.depop.add_product("CAP-RED", quantity=2)
    hub.depop.add_product("LEGACY-LISTING", quantity=1)
    hub.set_stock("CAP-RED", 2)
    # A listing made in the Depop app has no SKU: its line arrives with `"sku": null`.
    hub.depop.drop_next_webhooks(1)
    purchase_id = hub.depop.purchase("CAP-RED", "LEGACY-LISTING")
    depop_order = hub.depop.orders[purchase_id]
    depop_order["line_items"][1]["sku"] = None
    hub.depop.send_event(ORDER_NEW, depop_order)
    hub.drain()

    order = hub.order("depop", purchase_id)
    assert [line["sku"] for line in order["lines"]] == ["CAP-RED", None]
    assert order["lines"][1]["channel_line_id"] == str(
        depop_order["line_items"][1]["purchase_item_id"]
    )
    assert order["needs_attention"]
    assert order["attention_reason"] == "line has no SKU"
    # Paid already: the order stands, and the units it can name are held for it.
    assert order["status"] == "confirmed"
    assert hub.stock("CAP-RED")["reserved"] == 1
    # Nobody can ship a line without a SKU, so the order is not sent anywhere, even when an
    # operator asks for it to be routed again.
    assert order["fulfilment_provider"] is None
    retry = hub.admin("POST", f"/admin/orders/{order['id']}/retry-fulfilment")
    assert retry.status_code == 202
    hub.drain()
    order = hub.order_by_id(order["id"])
    assert (order["needs_attention"], order["attention_reason"]) == (True, "line has no SKU")
    assert triggers(order).count("not_routed") == 2
    assert order["fulfilment_provider"] is None
    assert hub.deliverr.orders == {}


# -- tracking out ----------------------------------------------------------------------------


def test_manual_shipment_marks_the_parcel_shipped_with_its_tracking(manual_hub: Hub) -> None:
    hub = manual_hub
    purchase_id = buy(hub, SKU)
    order = hub.order("depop", purchase_id)
    assert order["status"] == "confirmed"
    assert order["fulfilment_provider"] == "manual"

    shipped = ship_by_hand(hub, order["id"], SKU, "RM123456789GB")
    assert shipped["status"] == "completed"
    hub.drain()

    parcel = hub.depop.orders[purchase_id]["line_items"][0]["parcel_id"]
    (call,) = hub.depop.calls_to("POST", f"/api/v1/orders/{purchase_id}/parcels/")
    assert call.path == f"/api/v1/orders/{purchase_id}/parcels/{parcel}/mark-as-shipped/"
    assert call.json == {"tracking_number": "RM123456789GB", "carrier": "Royal Mail"}
    assert call.status == 200
    assert hub.depop.orders[purchase_id]["status"] == "SHIPPED"
    order = hub.order("depop", purchase_id)
    (shipment,) = order["shipments"]
    assert shipment["pushed_to_channel"]
    assert shipment["tracking_numbers"] == ["RM123456789GB"]
    assert "tracking_pushed" in triggers(order)
    assert hub.stock(SKU) == {"sku": SKU, "on_hand": 4, "reserved": 0, "available": 4}


def test_mark_as_shipped_survives_injected_500s_and_429s(manual_hub: Hub) -> None:
    hub = manual_hub
    purchase_id = buy(hub, SKU)
    order_id = hub.order("depop", purchase_id)["id"]
    ship_by_hand(hub, order_id, SKU, "RM1GB")
    hub.depop.fail_next(2, 500)
    hub.depop.fail_next(1, 429)
    hub.drain()

    calls = hub.depop.calls_to("POST", f"/api/v1/orders/{purchase_id}/parcels/")
    assert [c.status for c in calls] == [500, 500, 429, 200]
    order = hub.order_by_id(order_id)
    assert job_states(order, "order.push_tracking") == [("done", 4)]
    assert order["shipments"][0]["pushed_to_channel"]
    assert not order["needs_attention"]
    assert hub.depop.orders[purchase_id]["status"] == "SHIPPED"


def test_a_rejected_mark_as_shipped_ends_dead_with_depops_message_on_the_order(
    manual_hub: Hub,
) -> None:
    hub = manual_hub
    purchase_id = buy(hub, SKU)
    order_id = hub.order("depop", purchase_id)["id"]
    ship_by_hand(hub, order_id, SKU, "NOT-A-ROYAL-MAIL-NUMBER")
    message = "Tracking number NOT-A-ROYAL-MAIL-NUMBER is not valid for Royal Mail"
    # A 400: the only refusal Depop's description documents for mark-as-shipped.
    hub.depop.fail_next(1, 400, DepopError(400, [("bad-request", message)]).body())
    hub.drain()

    order = hub.order_by_id(order_id)
    assert job_states(order, "order.push_tracking") == [("dead", 1)]
    assert order["needs_attention"]
    assert message in order["attention_reason"]
    assert "400" in order["attention_reason"]
    assert not order["shipments"][0]["pushed_to_channel"]
    assert hub.depop.shipped_parcels[purchase_id] == {}


# -- refunds ---------------------------------------------------------------------------------


def test_full_refund_before_shipping_cancels_order_fulfilment_and_reservation(hub: Hub) -> None:
    purchase_id = buy(hub, SKU)
    order_id = hub.order("depop", purchase_id)["id"]
    hub.deliverr.flush_webhooks()
    hub.drain()
    assert hub.stock(SKU)["reserved"] == 1

    hub.depop.refund(purchase_id, "25.99", "5.00")
    hub.drain()

    order = hub.order_by_id(order_id)
    assert order["status"] == "cancelled"
    assert order["channel_status"] == "REFUNDED"
    (cancel,) = entries(order, "cancel")
    assert cancel["detail"]["refund"]["buyer_refund_amount"] == "30.99"
    assert cancel["detail"]["refund"]["refunded_by"] == "PARTNER"
    assert hub.deliverr_order(order_id)["status"] == "CANCELLED"
    assert "fulfilment_cancelled" in triggers(order)
    assert hub.stock(SKU) == {"sku": SKU, "on_hand": 5, "reserved": 0, "available": 5}
    assert not order["needs_attention"]


def test_depop_cancelling_the_order_itself_cancels_it_at_the_hub(hub: Hub) -> None:
    purchase_id = buy(hub, SKU)
    hub.depop.cancel(purchase_id)
    hub.drain()

    order = hub.order("depop", purchase_id)
    assert order["status"] == "cancelled"
    assert order["channel_status"] == "CANCELLED"
    assert hub.deliverr_order(order["id"])["status"] == "CANCELLED"
    assert hub.stock(SKU)["reserved"] == 0


def test_partial_refund_is_recorded_and_the_order_goes_on(hub: Hub) -> None:
    purchase_id = buy(hub, SKU)
    hub.depop.refund(purchase_id, "10.00")
    hub.drain()

    order = hub.order("depop", purchase_id)
    assert order["status"] == "confirmed"
    (refund,) = entries(order, "partially_refunded")
    summary = refund["detail"]["refund_summary"]
    assert summary["buyer_refund_amount"] == "10.00"
    assert summary["breakdown"]["refunded_to_buyer"]["item_refund_amount"] == "10.00"
    assert refund["detail"]["refunded_by"] == "PARTNER"
    assert (refund["from_state"], refund["to_state"]) == ("confirmed", "confirmed")
    assert hub.deliverr_order(order["id"])["status"] == "CREATED"
    assert hub.stock(SKU)["reserved"] == 1


def test_full_refund_of_an_order_never_seen_creates_it_cancelled(hub: Hub) -> None:
    hub.depop.add_product(SKU, quantity=3)
    hub.set_stock(SKU, 3)
    hub.depop.drop_next_webhooks(1)  # the order.new webhook is lost
    purchase_id = hub.depop.purchase(SKU)
    hub.drain()
    assert hub.orders(channel="depop") == []

    hub.depop.refund(purchase_id, "25.99", "5.00")
    hub.drain()

    order = hub.order("depop", purchase_id)
    assert order["status"] == "cancelled"
    assert triggers(order)[:2] == ["receive", "cancel"]
    assert entries(order, "cancel")[0]["detail"]["refund"]["buyer_refund_amount"] == "30.99"
    assert hub.deliverr.orders == {}
    assert hub.stock(SKU)["reserved"] == 0


def test_partial_refund_of_an_order_never_seen_creates_and_fulfils_it(hub: Hub) -> None:
    hub.depop.add_product(SKU, quantity=3)
    hub.set_stock(SKU, 3)
    hub.depop.drop_next_webhooks(1)
    purchase_id = hub.depop.purchase(SKU)
    hub.depop.refund(purchase_id, shipping_refund_amount="5.00")
    hub.drain()

    order = hub.order("depop", purchase_id)
    assert order["status"] == "confirmed"
    assert triggers(order)[:3] == ["receive", "acknowledge", "confirm"]
    (refund,) = entries(order, "partially_refunded")
    assert refund["detail"]["refund_summary"]["buyer_refund_amount"] == "5.00"
    assert hub.deliverr_order(order["id"])["status"] == "CREATED"
    assert hub.stock(SKU)["reserved"] == 1


def test_refunds_after_shipment_are_recorded_and_the_order_stays_completed(hub: Hub) -> None:
    purchase_id = buy(hub, SKU)
    order_id = hub.order("depop", purchase_id)["id"]
    hub.deliverr.ship(hub.deliverr_order(order_id)["orderId"])
    hub.drain()
    assert hub.order_by_id(order_id)["status"] == "completed"
    assert hub.depop.orders[purchase_id]["status"] == "SHIPPED"

    hub.depop.refund(purchase_id, "5.00")
    hub.drain()
    order = hub.order_by_id(order_id)
    assert order["status"] == "completed"
    (partial,) = entries(order, "partially_refunded")
    assert partial["detail"]["refund_summary"]["buyer_refund_amount"] == "5.00"
    assert not order["needs_attention"]

    hub.depop.refund(purchase_id, "20.99", "5.00")
    hub.drain()
    order = hub.order_by_id(order_id)
    assert order["status"] == "completed"
    (full,) = entries(order, "refunded")
    assert full["detail"]["refund_summary"]["buyer_refund_amount"] == "30.99"
    assert order["channel_status"] == "REFUNDED"
    assert order["needs_attention"]
    assert order["attention_reason"] == "refunded after shipment: check the return"
    assert "cancel" not in triggers(order)


def test_refund_fetch_survives_injected_500s_and_429s(hub: Hub) -> None:
    purchase_id = buy(hub, SKU)
    hub.depop.fail_next(2, 500)
    hub.depop.fail_next(1, 429)
    hub.depop.refund(purchase_id, "25.99", "5.00")
    hub.drain()

    fetches = hub.depop.calls_to("GET", f"/api/v1/orders/{purchase_id}/")
    assert [c.status for c in fetches] == [500, 500, 429, 200]
    order = hub.order("depop", purchase_id)
    assert order["status"] == "cancelled"
    (event,) = hub.admin("GET", "/admin/events", params={"order_id": order["id"]}).json()["data"][
        :1
    ]
    jobs = hub.admin("GET", "/admin/jobs", params={"kind": "inbox.process"}).json()["data"]
    refund_job = next(j for j in jobs if j["payload"]["event_id"] == event["id"])
    assert (refund_job["state"], refund_job["attempts"]) == ("done", 4)


# -- engagement ------------------------------------------------------------------------------


def test_likes_and_unlikes_are_stored_and_ignored(hub: Hub) -> None:
    hub.depop.add_product(SKU, quantity=1)
    liked = hub.depop.like(SKU)
    unliked = hub.depop.like(SKU, unlike=True)
    hub.drain()

    events = hub.admin("GET", "/admin/events", params={"channel": "depop"}).json()["data"]
    by_id = {e["external_id"]: e for e in events}
    assert by_id[liked]["event_type"] == "v1:product.like"
    assert by_id[unliked]["event_type"] == "v1:product.unlike"
    for event in (by_id[liked], by_id[unliked]):
        assert event["status"] == "ignored"
        assert event["order_id"] is None
        detail = hub.admin("GET", f"/admin/events/{event['id']}").json()
        assert json.loads(detail["body"])["data"]["sku"] == SKU
    assert hub.orders() == []
