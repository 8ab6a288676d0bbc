"""A seller's cancellation through the whole hub, on SQLite and on Postgres: the admin API in,
the provider taken back first (the order's units held until it agrees), then the channel told
with the seller's reason: Depop refunds, ABOUT YOU cancels the open items in a polled batch,
topi (no cancel call) leaves the order flagged with the steps. A parcel that left before the
cancellation commits its units and never hands them to an order waiting for stock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from hub.db import Database
from hub.jobs.models import Job
from hub.types import utcnow
from tests.harness import ADMIN_NAME, Hub, make_hub

SKU = "TEE-BLUE-M"
REASON = "the buyer asked to cancel before dispatch"


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database)
    yield h
    h.close()


def cancel(hub: Hub, order_id: str, reason: str = REASON) -> dict[str, Any]:
    response = hub.admin("POST", f"/admin/orders/{order_id}/cancel", json={"reason": reason})
    assert response.status_code == 200, response.text
    return dict(response.json())


def triggers(order: dict[str, Any]) -> list[str]:
    return [entry["trigger"] for entry in order["history"]]


def flags(order: dict[str, Any]) -> list[str]:
    return [e["detail"]["reason"] for e in order["history"] if e["trigger"] == "flag"]


def job_states(order: dict[str, Any], kind: str) -> list[str]:
    return [job["state"] for job in order["jobs"] if job["kind"] == kind]


def depop_order_at_deliverr(hub: Hub, *, on_hand: int = 3, listed: int = 3) -> tuple[str, str]:
    """A Depop purchase of one unit, routed to Deliverr: (purchase id, hub order id)."""
    hub.depop.add_product(SKU, quantity=listed)
    hub.set_stock(SKU, on_hand)
    purchase_id = hub.depop.purchase(SKU)
    hub.drain()
    hub.deliverr.flush_webhooks()
    hub.drain()
    order = hub.order("depop", purchase_id)
    assert (order["status"], order["fulfilment_provider"]) == ("confirmed", "deliverr"), order
    return purchase_id, order["id"]


def time_passes(hub: Hub, job_id: int) -> None:
    """The backoff of a job waiting on an asynchronous channel is over."""
    with hub.db.transaction() as session:
        session.execute(update(Job).where(col(Job.id) == job_id).values(run_at=utcnow()))


def refunds(hub: Hub, purchase_id: str) -> list[dict[str, Any]]:
    return [c.json for c in hub.depop.calls_to("POST", f"/api/v1/orders/{purchase_id}/refund/")]


# -- the request -------------------------------------------------------------------------------


def test_a_blank_or_overlong_reason_is_refused_and_changes_nothing(hub: Hub) -> None:
    _, order_id = depop_order_at_deliverr(hub)
    for body in ({}, {"reason": "   "}, {"reason": "x" * 501}):
        response = hub.admin("POST", f"/admin/orders/{order_id}/cancel", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_request", response.text
        assert "reason" in response.json()["detail"]
    hub.drain()

    order = hub.order_by_id(order_id)
    assert order["status"] == "confirmed"
    assert hub.deliverr_order(order_id)["status"] != "CANCELLED"
    assert refunds(hub, order["channel_order_id"]) == []


def test_a_cancel_without_a_body_as_the_contract_calls_it_takes_the_audit_reason(
    hub: Hub,
) -> None:
    purchase_id, order_id = depop_order_at_deliverr(hub)
    response = hub.admin(
        "POST", f"/admin/orders/{order_id}/cancel", headers={"X-Audit-Reason": "buyer phoned"}
    )
    assert response.status_code == 200, response.text
    hub.drain()

    assert hub.order_by_id(order_id)["status"] == "cancelled"
    [refund] = refunds(hub, purchase_id)
    assert "buyer phoned" in str(refund)
    audit = hub.admin("GET", "/admin/audit", params={"action": "order.cancel"}).json()["data"]
    assert [a["reason"] for a in audit] == ["buyer phoned"]


# -- Depop ---------------------------------------------------------------------------------------


def test_seller_cancel_takes_the_order_back_from_deliverr_then_refunds_it_in_full_at_depop(
    hub: Hub,
) -> None:
    purchase_id, order_id = depop_order_at_deliverr(hub)

    cancelled = cancel(hub, order_id)
    assert cancelled["status"] == "cancelled"
    # Deliverr has not agreed yet: the unit stays reserved, nobody else may take it.
    assert hub.stock(SKU) == {"sku": SKU, "on_hand": 3, "reserved": 1, "available": 2}
    assert refunds(hub, purchase_id) == []
    hub.drain()

    order = hub.order_by_id(order_id)
    assert hub.deliverr_order(order_id)["status"] == "CANCELLED"
    # Provider first, channel after: a parcel already on its way is never also refunded.
    happened = triggers(order)
    assert happened.index("fulfilment_cancelled") < happened.index("cancelled_at_channel")
    # Nothing shipped, Depop-managed or not: items and shipping, with the seller's words.
    assert refunds(hub, purchase_id) == [
        {
            "items_refund_amount": "25.99",
            "shipping_refund_amount": "5.00",
            "send_buyer_message": REASON,
        }
    ]
    assert hub.depop.orders[purchase_id]["status"] == "REFUNDED"
    assert hub.stock(SKU) == {"sku": SKU, "on_hand": 3, "reserved": 0, "available": 3}
    assert not order["needs_attention"]
    (entry,) = hub.admin("GET", "/admin/audit", params={"order_id": order_id}).json()["data"]
    assert (entry["actor"], entry["action"], entry["reason"]) == (
        ADMIN_NAME,
        "order.cancel",
        REASON,
    )

    # Depop's refund webhook, and a retried job, change nothing more.
    hub.drain()
    assert len(refunds(hub, purchase_id)) == 1
    assert hub.order_by_id(order_id)["status"] == "cancelled"


def test_depop_refusing_the_refund_leaves_the_order_flagged_with_its_answer(hub: Hub) -> None:
    purchase_id, order_id = depop_order_at_deliverr(hub)
    del hub.depop.orders[purchase_id]  # Depop answers 404: "Order not found"
    cancel(hub, order_id)
    hub.drain()

    order = hub.order_by_id(order_id)
    assert order["status"] == "cancelled"
    assert job_states(order, "order.cancel_at_channel") == ["dead"]
    assert order["needs_attention"]
    assert order["attention_reason"].startswith("depop refused the cancellation: ")
    # The provider gave the order up, so its unit is free again all the same.
    assert hub.stock(SKU)["reserved"] == 0


# -- a parcel that beat the cancellation ---------------------------------------------------------


def test_cancel_after_deliverr_shipped_commits_the_unit_and_gives_no_waiting_order_a_phantom(
    hub: Hub,
) -> None:
    purchase_id, order_id = depop_order_at_deliverr(hub, on_hand=1)
    deliverr_id = hub.deliverr_order(order_id)["orderId"]
    hub.deliverr.drop_next_webhooks(1)
    hub.deliverr.ship(deliverr_id, tracking_number="1ZGONE")  # the hub has not heard of it
    # A second buyer pays for the SKU the hub has none left of (Depop's listing still showed
    # one): the order waits for stock.
    hub.depop.add_product(SKU, quantity=1)
    waiting_purchase = hub.depop.purchase(SKU)
    hub.drain()
    waiting = hub.order("depop", waiting_purchase)
    assert (waiting["status"], waiting["attention_reason"]) == (
        "acknowledged",
        "oversold: restock or refund",
    )

    cancel(hub, order_id)
    hub.drain()

    order = hub.order_by_id(order_id)
    assert order["status"] == "cancelled"
    assert job_states(order, "fulfilment.cancel") == ["dead"]
    assert job_states(order, "order.cancel_at_channel") == []
    assert order["attention_reason"].startswith("return needed: deliverr shipped")
    assert [s["tracking_numbers"] for s in order["shipments"]] == [["1ZGONE"]]
    assert not order["shipments"][0]["pushed_to_channel"]
    # The buyer has the parcel: no refund; and the unit left the shelf.
    assert refunds(hub, purchase_id) == []
    assert hub.stock(SKU) == {"sku": SKU, "on_hand": 0, "reserved": 0, "available": 0}
    movements = hub.admin("GET", f"/admin/stock/{SKU}/movements").json()
    assert [(m["reason"], m["on_hand_delta"], m["order_id"]) for m in movements][0] == (
        "commit",
        -1,
        order_id,
    )
    # The waiting order got nothing and went nowhere.
    waiting = hub.order_by_id(waiting["id"])
    assert (waiting["status"], waiting["fulfilment_provider"]) == ("acknowledged", None)
    assert hub.deliverr.order_by_external_id(waiting["id"]) is None


def test_units_freed_by_deliverr_agreeing_go_to_the_order_waiting_for_them(hub: Hub) -> None:
    _, order_id = depop_order_at_deliverr(hub, on_hand=1)
    hub.depop.add_product(SKU, quantity=1)  # Depop's listing still showed one
    waiting_purchase = hub.depop.purchase(SKU)
    hub.drain()
    assert hub.order("depop", waiting_purchase)["status"] == "acknowledged"

    cancel(hub, order_id)
    hub.drain()

    waiting = hub.order("depop", waiting_purchase)
    assert (waiting["status"], waiting["fulfilment_provider"]) == ("confirmed", "deliverr")
    assert not waiting["needs_attention"]
    assert hub.stock(SKU) == {"sku": SKU, "on_hand": 1, "reserved": 1, "available": 0}


def test_cancel_between_a_timed_out_create_and_its_retry_takes_back_what_deliverr_kept(
    database: Database,
) -> None:
    # Retries wait long enough that the test decides when each one runs (`time_passes`).
    hub = make_hub(database, job_backoff_base=1000.0, job_max_backoff_seconds=1000.0)
    try:
        hub.depop.add_product(SKU, quantity=3)
        hub.set_stock(SKU, 3)
        hub.deliverr.timeout_next_create(1)  # Deliverr stores the order, the hub times out
        purchase_id = hub.depop.purchase(SKU)
        hub.drain(wait_for_retries=0)
        order = hub.order("depop", purchase_id)
        assert (order["status"], order["fulfilment_provider"]) == ("confirmed", None)
        assert hub.deliverr_order(order["id"])["status"] == "CREATED"

        cancel(hub, order["id"])
        hub.drain(wait_for_retries=0)
        # The route's retry may still learn of an order at Deliverr: the cancel waits for it,
        # and the unit stays held.
        assert hub.stock(SKU)["reserved"] == 1
        assert refunds(hub, purchase_id) == []
        for kind in ("fulfilment.route", "fulfilment.cancel"):
            (job,) = [j for j in hub.order_by_id(order["id"])["jobs"] if j["kind"] == kind]
            assert job["state"] == "queued"
            time_passes(hub, job["id"])
            hub.drain(wait_for_retries=0)

        order = hub.order_by_id(order["id"])
        assert hub.deliverr_order(order["id"])["status"] == "CANCELLED"
        assert len(hub.deliverr.orders) == 1
        assert hub.stock(SKU) == {"sku": SKU, "on_hand": 3, "reserved": 0, "available": 3}
        assert [r["send_buyer_message"] for r in refunds(hub, purchase_id)] == [REASON]
    finally:
        hub.close()


# -- ABOUT YOU -----------------------------------------------------------------------------------


def aboutyou_order_at_deliverr(hub: Hub) -> tuple[str, str]:
    """An ABOUT YOU order routed to Deliverr. Its SKUs are untracked, so no stock batch of a
    listing update takes the batch outcome a test plans for the cancel."""
    ay_id = str(hub.aboutyou.create_order("SKU-A", "SKU-B"))
    hub.drain()
    order = hub.order("aboutyou", ay_id)
    assert order["status"] == "confirmed", order
    return ay_id, order["id"]


def test_seller_cancel_cancels_the_open_aboutyou_items_in_a_batch_polled_across_attempts(
    hub: Hub,
) -> None:
    ay_id, order_id = aboutyou_order_at_deliverr(hub)
    # Still running after every poll of the first attempt: the next attempt polls the same
    # batch instead of sending a second one.
    hub.aboutyou.plan_next_batch("pending", "pending", "pending", "pending")
    cancel(hub, order_id)
    hub.drain()
    (waiting,) = [j for j in hub.order_by_id(order_id)["jobs"] if j["state"] == "queued"]
    assert waiting["kind"] == "order.cancel_at_channel"
    assert "is pending" in waiting["last_error"]
    assert [i["status"] for i in hub.aboutyou.order(ay_id)["order_items"]] == ["open", "open"]
    time_passes(hub, waiting["id"])
    hub.drain()

    order = hub.order_by_id(order_id)
    assert hub.deliverr_order(order_id)["status"] == "CANCELLED"
    assert [i["status"] for i in hub.aboutyou.order(ay_id)["order_items"]] == [
        "cancelled",
        "cancelled",
    ]
    (submitted,) = hub.aboutyou.calls_to("POST", "/api/v1/orders/cancel")
    assert submitted.json == {"items": [{"id": i} for i in hub.aboutyou.item_ids(ay_id)]}
    polled = {
        c.query["batch_request_id"]
        for c in hub.aboutyou.calls_to("GET", "/api/v1/results/cancel-orders")
    }
    assert len(polled) == 1
    (channel_job,) = [j for j in order["jobs"] if j["kind"] == "order.cancel_at_channel"]
    assert (channel_job["state"], channel_job["attempts"]) == ("done", 2)
    assert "cancelled_at_channel" in triggers(order)
    assert not order["needs_attention"]


def test_aboutyou_failing_the_cancel_batch_flags_the_order_with_its_message(hub: Hub) -> None:
    _, order_id = aboutyou_order_at_deliverr(hub)
    hub.aboutyou.plan_next_batch(final="failed")
    cancel(hub, order_id)
    hub.drain()

    order = hub.order_by_id(order_id)
    assert job_states(order, "order.cancel_at_channel") == ["dead"]
    assert order["attention_reason"].startswith("aboutyou refused the cancellation: ")


# -- topi ----------------------------------------------------------------------------------------


def test_topi_has_no_cancel_call_so_the_order_is_flagged_with_the_steps(hub: Hub) -> None:
    hub.set_stock("LAPTOP", 3)
    oid = hub.topi.create_order({"LAPTOP": 1})
    hub.drain()
    order_id = hub.order("topi", oid)["id"]

    cancel(hub, order_id)
    hub.drain()

    order = hub.order_by_id(order_id)
    assert order["status"] == "cancelled"
    assert hub.deliverr_order(order_id)["status"] == "CANCELLED"
    assert job_states(order, "order.cancel_at_channel") == ["done"]
    assert order["needs_attention"]
    assert order["attention_reason"].startswith("cancel with topi: ")
    assert "ask your topi contact to cancel it" in order["attention_reason"]
    assert hub.stock("LAPTOP")["reserved"] == 0
