"""Shipments an operator records by hand: they move the order and reach the channel the same
way a 3PL's do, and a shipment that does not fit the order is refused whole."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hub.db import Database
from tests.harness import Hub, make_hub


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, deliverr=False, flexport=False)
    yield h
    h.close()


def manual_order(hub: Hub, *skus: str) -> tuple[str, str]:
    """A confirmed Depop order routed to manual fulfilment: (purchase id, hub order id)."""
    for sku in skus:
        hub.depop.add_product(sku, quantity=3)
        hub.set_stock(sku, 3)
    purchase_id = hub.depop.purchase(*skus)
    hub.drain()
    order = hub.order("depop", purchase_id)
    assert (order["status"], order["fulfilment_provider"]) == ("confirmed", "manual")
    return purchase_id, order["id"]


def ship(
    hub: Hub, order_id: str, lines: list[tuple[str, int]], tracking: str = "RM1GB", **extra: Any
) -> httpx.Response:
    return hub.admin(
        "POST",
        f"/admin/orders/{order_id}/shipments",
        json={
            "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
            "carrier": "Royal Mail",
            "tracking_number": tracking,
            **extra,
        },
    )


def test_partial_manual_shipments_push_the_parcel_once_it_is_complete(hub: Hub) -> None:
    purchase_id, order_id = manual_order(hub, "SKU-A", "SKU-B")

    first = ship(hub, order_id, [("SKU-A", 1)], "RM1GB", tracking_url="https://rm.example/RM1GB")
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "partially_fulfilled"
    hub.drain()
    assert hub.depop.calls_to("POST", f"/api/v1/orders/{purchase_id}/parcels/") == []

    second = ship(hub, order_id, [("SKU-B", 1)], "RM2GB")
    assert second.json()["status"] == "completed"
    hub.drain()

    (call,) = hub.depop.calls_to("POST", f"/api/v1/orders/{purchase_id}/parcels/")
    assert call.json == {"tracking_number": "RM1GB,RM2GB", "carrier": "Royal Mail"}
    order = hub.order_by_id(order_id)
    assert [
        (s["provider"], s["tracking_numbers"], s["tracking_url"], s["lines"])
        for s in order["shipments"]
    ] == [
        (
            "manual",
            ["RM1GB"],
            "https://rm.example/RM1GB",
            [{"sku": "SKU-A", "quantity": 1, "serial_numbers": []}],
        ),
        ("manual", ["RM2GB"], None, [{"sku": "SKU-B", "quantity": 1, "serial_numbers": []}]),
    ]
    assert all(s["pushed_to_channel"] for s in order["shipments"])
    assert [e["source"] for e in order["history"] if e["trigger"] == "ship"] == [
        "admin:ops",
        "admin:ops",
    ]
    assert hub.stock("SKU-B") == {"sku": "SKU-B", "on_hand": 2, "reserved": 0, "available": 2}


def test_a_shipment_that_does_not_fit_is_refused_and_changes_nothing(hub: Hub) -> None:
    _, order_id = manual_order(hub, "SKU-A")

    too_many = ship(hub, order_id, [("SKU-A", 2)])
    assert too_many.status_code == 422
    assert too_many.json()["error"] == "shipment_rejected"
    unknown = ship(hub, order_id, [("SKU-A", 1), ("SKU-Z", 1)])
    assert unknown.status_code == 422
    assert "SKU-Z" in unknown.json()["detail"]
    empty = ship(hub, order_id, [("SKU-A", 0)])
    assert empty.status_code == 422
    assert empty.json()["error"] == "invalid_request"

    hub.drain()
    order = hub.order_by_id(order_id)
    assert order["status"] == "confirmed"
    assert order["shipments"] == []
    assert order["lines"][0]["shipped_quantity"] == 0
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 3, "reserved": 1, "available": 2}


def test_only_an_open_order_can_be_shipped_or_cancelled(hub: Hub) -> None:
    _, cancelled_id = manual_order(hub, "SKU-A")
    cancelled = hub.admin("POST", f"/admin/orders/{cancelled_id}/cancel", json={"reason": "r"})
    assert cancelled.status_code == 200
    refused = ship(hub, cancelled_id, [("SKU-A", 1)])
    assert refused.status_code == 409
    assert refused.json()["error"] == "illegal_transition"

    _, completed_id = manual_order(hub, "SKU-B")
    assert ship(hub, completed_id, [("SKU-B", 1)]).status_code == 201
    assert ship(hub, completed_id, [("SKU-B", 1)], "RM2GB").status_code == 409
    again = hub.admin("POST", f"/admin/orders/{completed_id}/cancel", json={"reason": "r"})
    assert again.status_code == 409
    assert hub.order_by_id(completed_id)["status"] == "completed"
    missing = ship(hub, "ord_nope", [("SKU-B", 1)])
    assert (missing.status_code, missing.json()["error"]) == (404, "order_not_found")
