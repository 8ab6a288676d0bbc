"""topi orders through the whole hub: Svix-signed webhooks in, the topi and Deliverr simulators
out, on SQLite and on Postgres.

Lines are `pay_now` unless a test is about rentals: topi refuses a rented unit without a serial
number, and Deliverr reports none.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.signatures import sign_standard_webhook
from connectors.topi.simulator import SimLine
from hub.db import Database
from hub.jobs.worker import run_one
from tests.harness import Hub, make_hub
from tests.hub.console.conftest import csrf, sign_in

PAY_NOW = "pay_now"
SHIPMENT = "/v1/shipment"
TOKEN = "/oauth2/token"


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database)
    yield h
    h.close()


def calls(hub: Hub) -> list[tuple[str, str, int]]:
    """Every call the topi simulator received, oldest first."""
    return [(c.method, c.path, c.status) for c in hub.topi.calls]


def seller_calls(hub: Hub) -> list[str]:
    """The POSTs that change an order at topi (not the token, not the reads)."""
    return [c.path for c in hub.topi.calls if c.method == "POST" and c.path != TOKEN]


def shipped_units(hub: Hub) -> list[list[tuple[str, str]]]:
    """(reference, serial) of each unit, per `POST /v1/shipment`."""
    return [
        [
            (entry["seller_product_reference"]["reference"], entry["serial_number"])
            for entry in call.json["serial_numbers"]
        ]
        for call in hub.topi.calls_to("POST", SHIPMENT)
    ]


def dead_jobs(hub: Hub) -> list[dict[str, Any]]:
    return list(hub.admin("GET", "/admin/jobs", params={"state": "dead"}).json()["data"])


def confirmed_topi_order(hub: Hub, *lines: SimLine) -> tuple[str, dict[str, Any]]:
    """A topi order taken by the hub and sent to Deliverr: its topi id and its hub detail."""
    oid = hub.topi.create_order(list(lines))
    hub.drain()
    order = hub.order("topi", oid)
    assert order["status"] == "confirmed", order
    return oid, order


def test_topi_order_is_acknowledged_confirmed_shipped_in_two_parts_and_completed(
    hub: Hub,
) -> None:
    hub.set_stock("LAPTOP", 5)
    hub.set_stock("CHARGER", 5)
    oid, order = confirmed_topi_order(
        hub, SimLine("LAPTOP", 2, PAY_NOW), SimLine("CHARGER", 1, PAY_NOW)
    )
    assert [h["trigger"] for h in order["history"]] == [
        "receive",
        "acknowledge",
        "confirm",
        "routed",
    ]
    assert hub.topi.order(oid)["status"] == "confirmed"
    assert hub.stock("LAPTOP")["reserved"] == 2
    deliverr = hub.deliverr_order(order["id"])
    assert [(i["externalProductId"], i["quantity"]) for i in deliverr["lineItems"]] == [
        ("LAPTOP", 2),
        ("CHARGER", 1),
    ]

    hub.deliverr.ship(deliverr["orderId"], [("LAPTOP", 1)])
    hub.poll_fulfilment(order["id"])  # Deliverr sends no webhook for a partial shipment
    assert hub.order("topi", oid)["status"] == "partially_fulfilled"
    assert hub.topi.order(oid)["status"] == "partially_fulfilled"

    hub.deliverr.ship(deliverr["orderId"])
    hub.drain()
    order = hub.order("topi", oid)
    assert order["status"] == "completed"
    assert hub.topi.order(oid)["status"] == "completed"
    assert [s["pushed_to_channel"] for s in order["shipments"]] == [True, True]

    path = f"/v1/orders/{oid}"
    assert calls(hub) == [
        ("POST", TOKEN, 200),
        ("GET", path, 200),  # the webhook carries no prices: the order is read in full
        ("POST", f"{path}/acknowledge", 200),
        ("POST", f"{path}/accept", 200),
        ("GET", path, 200),  # which units topi already has
        ("POST", SHIPMENT, 200),
        ("GET", path, 200),
        ("POST", SHIPMENT, 200),
    ]
    # One entry per unit, never a unit twice; Deliverr has no serials to give.
    assert shipped_units(hub) == [[("LAPTOP", "")], [("LAPTOP", ""), ("CHARGER", "")]]
    bodies = [c.json for c in hub.topi.calls_to("POST", SHIPMENT)]
    assert [b["tracking_url"] for b in bodies] == [s["tracking_url"] for s in order["shipments"]]
    # topi's own `completed` webhook is recorded, not acted on.
    assert order["history"][-1]["trigger"] == "order.completed"
    assert hub.stock("LAPTOP") == {"sku": "LAPTOP", "on_hand": 3, "reserved": 0, "available": 3}
    assert not order["needs_attention"]


def test_topi_order_takes_its_prices_and_date_from_the_full_order(hub: Hub) -> None:
    placed = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    oid = hub.topi.create_order(
        [
            SimLine("LAPTOP", 2, PAY_NOW, unit_price=119000),
            SimLine("CHARGER", 1, PAY_NOW, unit_price=4900),
        ],
        created_at=placed,
    )
    hub.drain()
    order = hub.order("topi", oid)
    assert [(line["sku"], line["quantity"], line["unit_price"]) for line in order["lines"]] == [
        ("LAPTOP", 2, "1190.00"),
        ("CHARGER", 1, "49.00"),
    ]
    assert (order["currency"], order["total_amount"]) == ("EUR", "2429.00")
    assert datetime.fromisoformat(order["placed_at"]) == placed


def test_topi_outage_while_reading_the_order_delays_it_and_never_takes_it_unpriced(
    hub: Hub,
) -> None:
    oid = hub.topi.create_order([SimLine("LAPTOP", 1, PAY_NOW, unit_price=119000)])
    hub.topi.fail_next(1, status=503)
    assert run_one(hub.runtime, "test-worker")  # inbox.process: topi answers 503
    assert hub.orders() == []

    hub.drain()
    order = hub.order("topi", oid)
    assert [line["unit_price"] for line in order["lines"]] == ["1190.00"]
    jobs = hub.admin("GET", "/admin/jobs", params={"kind": "inbox.process"}).json()["data"]
    assert [(j["state"], j["attempts"]) for j in jobs] == [("done", 2)]


def test_topi_order_with_a_product_not_mapped_to_a_sku_is_rejected_at_topi(hub: Hub) -> None:
    hub.set_stock("LAPTOP", 5)
    oid = hub.topi.create_order(
        [SimLine("LAPTOP", 1, PAY_NOW), SimLine("4006381333931", 1, PAY_NOW, source="ean")]
    )
    hub.drain()
    order = hub.order("topi", oid)
    assert order["status"] == "rejected"
    assert seller_calls(hub) == [f"/v1/orders/{oid}/acknowledge", f"/v1/orders/{oid}/reject"]
    assert hub.topi.order(oid)["status"] == "rejected"
    assert hub.deliverr.order_by_external_id(order["id"]) is None
    assert hub.stock("LAPTOP")["reserved"] == 0
    # The listing at topi lacks our SKU reference: someone has to fix the catalogue.
    assert order["needs_attention"] and "no SKU" in order["attention_reason"]


def test_topi_order_for_an_untracked_sku_is_rejected_when_untracked_skus_are_refused(
    database: Database,
) -> None:
    hub = make_hub(database, untracked_skus="reject")
    try:
        oid = hub.topi.create_order([SimLine("NEVER-STOCKED", 1, PAY_NOW)])
        hub.drain()
        order = hub.order("topi", oid)
        assert order["status"] == "rejected"
        assert seller_calls(hub) == [f"/v1/orders/{oid}/acknowledge", f"/v1/orders/{oid}/reject"]
        assert hub.topi.order(oid)["status"] == "rejected"
    finally:
        hub.close()


def test_topi_order_beyond_stock_is_rejected_and_holds_no_stock(hub: Hub) -> None:
    hub.set_stock("LAPTOP", 1)
    hub.set_stock("CHARGER", 5)
    oid = hub.topi.create_order([SimLine("LAPTOP", 2, PAY_NOW), SimLine("CHARGER", 1, PAY_NOW)])
    hub.drain()
    order = hub.order("topi", oid)
    assert order["status"] == "rejected"
    assert order["history"][-1]["detail"] == {"reason": "out of stock: LAPTOP"}
    assert seller_calls(hub) == [f"/v1/orders/{oid}/acknowledge", f"/v1/orders/{oid}/reject"]
    assert hub.topi.order(oid)["status"] == "rejected"
    assert hub.stock("LAPTOP") == {"sku": "LAPTOP", "on_hand": 1, "reserved": 0, "available": 1}
    assert hub.stock("CHARGER") == {"sku": "CHARGER", "on_hand": 5, "reserved": 0, "available": 5}
    assert hub.deliverr.order_by_external_id(order["id"]) is None


def test_topi_cancel_before_shipping_cancels_the_deliverr_order_and_releases_stock(
    hub: Hub,
) -> None:
    hub.set_stock("LAPTOP", 3)
    oid, order = confirmed_topi_order(hub, SimLine("LAPTOP", 2, PAY_NOW))
    assert hub.stock("LAPTOP")["available"] == 1

    hub.topi.cancel_order(oid)
    hub.drain()
    # Deliverr's own CANCELLED update comes back as a webhook and changes nothing.
    hub.deliverr.flush_webhooks()
    hub.drain()

    order = hub.order("topi", oid)
    assert order["status"] == "cancelled"
    assert not order["needs_attention"]
    deliverr = hub.deliverr_order(order["id"])
    assert deliverr["status"] == "CANCELLED"
    assert len(hub.deliverr.calls_to("POST", f"/orders/v1/order/{deliverr['orderId']}/cancel")) == 1
    assert hub.stock("LAPTOP") == {"sku": "LAPTOP", "on_hand": 3, "reserved": 0, "available": 3}
    # topi cancelled it: the hub tells topi nothing more.
    assert seller_calls(hub) == [f"/v1/orders/{oid}/acknowledge", f"/v1/orders/{oid}/accept"]


def test_topi_cancel_after_completion_is_flagged_as_a_return(hub: Hub) -> None:
    hub.set_stock("LAPTOP", 3)
    oid, order = confirmed_topi_order(hub, SimLine("LAPTOP", 1, PAY_NOW))
    deliverr = hub.deliverr_order(order["id"])
    hub.deliverr.ship(deliverr["orderId"])
    hub.drain()
    assert hub.order("topi", oid)["status"] == "completed"

    # topi itself turns a late cancellation into a return; a `canceled` webhook that arrives
    # anyway (late, or out of order) must not undo the shipment.
    hub.topi.send_webhook({**hub.topi.orders[oid].webhook(), "status": "canceled"})
    hub.drain()

    order = hub.order("topi", oid)
    assert order["status"] == "completed"
    assert order["needs_attention"]
    assert "return" in order["attention_reason"]
    assert hub.deliverr.calls_to("POST", f"/orders/v1/order/{deliverr['orderId']}/cancel") == []
    assert hub.stock("LAPTOP") == {"sku": "LAPTOP", "on_hand": 2, "reserved": 0, "available": 2}


def test_expired_topi_token_is_renewed_without_a_failed_job(hub: Hub) -> None:
    hub.set_stock("LAPTOP", 3)
    hub.drain()
    oid = hub.topi.create_order([SimLine("LAPTOP", 1, PAY_NOW)])
    assert run_one(hub.runtime, "test-worker")  # inbox.process: token issued, order read
    hub.topi.expire_tokens()
    hub.drain()  # acknowledge meets a 401, renews, and goes on
    order = hub.order("topi", oid)
    assert order["status"] == "confirmed"

    hub.topi.expire_tokens()
    hub.deliverr.ship(hub.deliverr_order(order["id"])["orderId"])
    hub.drain()  # the shipment push meets a 401 too

    order = hub.order("topi", oid)
    assert order["status"] == "completed"
    assert hub.topi.order(oid)["status"] == "completed"
    path = f"/v1/orders/{oid}"
    assert calls(hub) == [
        ("POST", TOKEN, 200),
        ("GET", path, 200),
        ("POST", f"{path}/acknowledge", 401),
        ("POST", TOKEN, 200),
        ("POST", f"{path}/acknowledge", 200),
        ("POST", f"{path}/accept", 200),
        ("GET", path, 401),
        ("POST", TOKEN, 200),
        ("GET", path, 200),
        ("POST", SHIPMENT, 200),
    ]
    assert [(j["kind"], j["state"], j["attempts"]) for j in order["jobs"]] == [
        ("order.acknowledge", "done", 1),
        ("order.accept", "done", 1),
        ("fulfilment.route", "done", 1),
        ("order.push_tracking", "done", 1),
    ]
    assert all(j["last_error"] is None for j in order["jobs"])
    assert dead_jobs(hub) == []
    assert not order["needs_attention"]


def test_rented_unit_shipped_without_a_serial_flags_the_order_and_reports_nothing(
    hub: Hub,
) -> None:
    hub.set_stock("LAPTOP", 3)
    oid, order = confirmed_topi_order(hub, SimLine("LAPTOP", 1, "rent"))
    hub.deliverr.ship(hub.deliverr_order(order["id"])["orderId"])
    hub.drain()

    order = hub.order("topi", oid)
    # The unit left the warehouse; topi refuses it without the serial the rental needs.
    assert order["status"] == "completed"
    assert order["needs_attention"]
    assert "serial number" in order["attention_reason"]
    assert [s["pushed_to_channel"] for s in order["shipments"]] == [False]
    assert hub.topi.calls_to("POST", SHIPMENT) == []
    assert hub.topi.order(oid)["status"] == "confirmed"
    # Held, not dead: nothing is retried until a person gives the serial number.
    assert dead_jobs(hub) == []
    assert order["history"][-1]["trigger"] == "flag"


def test_serial_number_given_afterwards_sends_the_held_shipment_and_clears_its_flag(
    hub: Hub,
) -> None:
    hub.set_stock("LAPTOP", 3)
    oid, order = confirmed_topi_order(hub, SimLine("LAPTOP", 1, "rent"))
    hub.deliverr.ship(hub.deliverr_order(order["id"])["orderId"])
    hub.drain()
    shipment = hub.order("topi", oid)["shipments"][0]
    path = f"/admin/orders/{order['id']}/shipments/{shipment['id']}/serials"

    too_many = {"lines": [{"sku": "LAPTOP", "serial_numbers": ["SN-1", "SN-2"]}]}
    refused = hub.admin("POST", path, json=too_many)
    assert refused.status_code == 422
    assert "1 unit(s) of LAPTOP, 2 serial numbers" in refused.json()["detail"]
    wrong_sku = hub.admin("POST", path, json={"lines": [{"sku": "MOUSE", "serial_numbers": ["1"]}]})
    assert wrong_sku.status_code == 422
    missing = hub.admin(
        "POST", f"/admin/orders/{order['id']}/shipments/999999/serials", json=too_many
    )
    assert missing.status_code == 404

    given = hub.admin("POST", path, json={"lines": [{"sku": "LAPTOP", "serial_numbers": ["SN-1"]}]})
    assert given.status_code == 200, given.text
    hub.drain()

    order = hub.order("topi", oid)
    assert not order["needs_attention"]
    assert [s["pushed_to_channel"] for s in order["shipments"]] == [True]
    assert order["shipments"][0]["lines"][0]["serial_numbers"] == ["SN-1"]
    assert shipped_units(hub) == [[("LAPTOP", "SN-1")]]
    assert dead_jobs(hub) == []
    again = hub.admin("POST", path, json={"lines": [{"sku": "LAPTOP", "serial_numbers": ["SN-9"]}]})
    assert again.status_code == 409
    assert again.json()["error"] == "shipment_already_reported"


def test_manual_shipment_carries_serial_numbers_to_topi(hub: Hub) -> None:
    hub.set_stock("LAPTOP", 3)
    oid, order = confirmed_topi_order(hub, SimLine("LAPTOP", 2, "rent"))
    bad = hub.admin(
        "POST",
        f"/admin/orders/{order['id']}/shipments",
        json={
            "lines": [{"sku": "LAPTOP", "quantity": 2, "serial_numbers": ["SN-1", "SN-1"]}],
            "carrier": "DHL",
            "tracking_number": "00340434161094042557",
        },
    )
    assert bad.status_code == 422
    assert "serial numbers given twice: SN-1" in bad.text
    shipped = hub.admin(
        "POST",
        f"/admin/orders/{order['id']}/shipments",
        json={
            "lines": [{"sku": "LAPTOP", "quantity": 2, "serial_numbers": ["SN-1", "SN-2"]}],
            "carrier": "DHL",
            "tracking_number": "00340434161094042557",
        },
    )
    assert shipped.status_code == 201, shipped.text
    hub.drain()
    assert shipped_units(hub) == [[("LAPTOP", "SN-1"), ("LAPTOP", "SN-2")]]
    assert not hub.order("topi", oid)["needs_attention"]


def test_redelivered_topi_webhook_makes_one_order_acknowledged_once(hub: Hub) -> None:
    hub.set_stock("LAPTOP", 3)
    oid = hub.topi.create_order([SimLine("LAPTOP", 1, PAY_NOW)])
    hub.topi.redeliver()
    hub.drain()
    hub.topi.redeliver(0)
    hub.drain()

    assert len(hub.orders(channel="topi")) == 1
    assert len(hub.admin("GET", "/admin/events", params={"channel": "topi"}).json()["data"]) == 1
    assert seller_calls(hub) == [f"/v1/orders/{oid}/acknowledge", f"/v1/orders/{oid}/accept"]
    assert hub.stock("LAPTOP")["reserved"] == 1


@pytest.mark.parametrize(
    "secret",
    ["whsec_c29tZW9uZS1lbHNlcy1zZWNyZXQta2V5", None],
    ids=["wrong-secret", "unsigned"],
)
def test_topi_webhook_not_signed_with_our_secret_is_refused_and_nothing_stored(
    hub: Hub, secret: str | None
) -> None:
    body = json.dumps(
        {"id": "8a1b2c3d-0000-4000-8000-000000000001", "status": "created", "assets": []}
    ).encode()
    msg_id, timestamp = "msg_forged", str(int(time.time()))
    headers = {"svix-id": msg_id, "svix-timestamp": timestamp}
    if secret is not None:
        headers["svix-signature"] = sign_standard_webhook(
            secret=secret, msg_id=msg_id, timestamp=timestamp, body=body
        )
    response = hub.client.post(
        "/webhooks/topi", content=body, headers={"content-type": "application/json", **headers}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    hub.drain()
    assert hub.admin("GET", "/admin/events").json()["data"] == []
    assert hub.orders() == []


def test_the_console_takes_the_held_shipments_serial_numbers(hub: Hub) -> None:
    hub.set_stock("LAPTOP", 3)
    oid, order = confirmed_topi_order(hub, SimLine("LAPTOP", 1, "rent"))
    hub.deliverr.ship(hub.deliverr_order(order["id"])["orderId"])
    hub.drain()
    shipment = hub.order("topi", oid)["shipments"][0]
    sign_in(hub)
    page = hub.client.get(f"/console/orders/{order['id']}")
    assert "Give serial numbers" in page.text
    posted = hub.client.post(
        f"/console/orders/{order['id']}/shipments/{shipment['id']}/serials",
        data={"csrf": csrf(page), "sku": ["LAPTOP"], "serials": [" SN-7 "]},
        follow_redirects=True,
    )
    assert "Serial numbers kept" in posted.text
    hub.drain()
    assert shipped_units(hub) == [[("LAPTOP", "SN-7")]]
    assert not hub.order("topi", oid)["needs_attention"]
    audit = hub.admin("GET", "/admin/audit").json()["data"]
    assert [a["action"] for a in audit][0] == "order.serials"
