"""Fulfilment through the whole hub: Depop orders routed to the Deliverr simulator, its status
webhooks (and polls) folded back into shipments, and tracking pushed to Depop per parcel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlmodel import col

from connectors.deliverr import DeliverrProvider, DeliverrSettings
from connectors.deliverr.transformers import ERROR_RULES, DeliverrErrorCode, Outcome
from connectors.depop.transformers import ORDER_NEW
from hub.credentials import DatabaseTokenStore
from hub.db import Database
from hub.jobs.models import Job, JobState
from hub.jobs.scheduler import Scheduler
from hub.jobs.worker import run_one, worker_name
from hub.types import utcnow
from tests.harness import DELIVERR_HOOK, DELIVERR_TOKEN, HOSTS, Hub, make_hub

CREATE_PATH = "/orders/v1/order"


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database)
    yield h
    h.close()


def routed(hub: Hub, *skus: str, flush: bool = True) -> tuple[str, str, str]:
    """A Depop purchase of one unit of each SKU, sent to Deliverr: (purchase id, hub order id,
    Deliverr order id). `flush` delivers Deliverr's ORDER_CREATED webhook too."""
    for sku in skus:
        hub.depop.add_product(sku, quantity=3)
        hub.set_stock(sku, 3)
    purchase_id = hub.depop.purchase(*skus)
    hub.drain()
    order = hub.order("depop", purchase_id)
    assert order["fulfilment_provider"] == "deliverr", order
    if flush:
        hub.deliverr.flush_webhooks()
        hub.drain()
    return purchase_id, order["id"], str(order["fulfilment_ref"])


def mark_as_shipped_calls(hub: Hub, purchase_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(parcel id, body) of every mark-as-shipped Depop received for the order."""
    prefix = f"/api/v1/orders/{purchase_id}/parcels/"
    return [
        (call.path.removeprefix(prefix).split("/")[0], call.json)
        for call in hub.depop.calls_to("POST", prefix)
    ]


def post_deliverr(hub: Hub, body: bytes) -> httpx.Response:
    response: httpx.Response = hub.client.post(
        "/webhooks/deliverr",
        content=body,
        headers={"content-type": "application/json", "X-Deliverr-Token": DELIVERR_HOOK},
    )
    return response


def creates(hub: Hub) -> list[int]:
    """Statuses of every create-order call Deliverr received."""
    return [c.status for c in hub.deliverr.calls_to("POST", CREATE_PATH) if c.path == CREATE_PATH]


def jobs(order: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [job for job in order["jobs"] if job["kind"] == kind]


def triggers(order: dict[str, Any]) -> list[str]:
    return [entry["trigger"] for entry in order["history"]]


# -- shipments and tracking --------------------------------------------------------------------


def test_parcel_is_marked_shipped_once_its_last_line_ships(hub: Hub) -> None:
    purchase_id, order_id, ref = routed(hub, "SKU-A", "SKU-B")
    assert hub.order_by_id(order_id)["fulfilment_status"] == "CREATED"

    first = hub.deliverr.ship(ref, [("SKU-A", 1)], tracking_number="1ZFIRST")
    hub.poll_fulfilment(order_id)  # Deliverr sends no webhook for a partial shipment
    order = hub.order_by_id(order_id)
    assert order["status"] == "partially_fulfilled"
    assert order["fulfilment_status"] == "PARTIALLY_SHIPPED"
    assert [(line["sku"], line["shipped_quantity"]) for line in order["lines"]] == [
        ("SKU-A", 1),
        ("SKU-B", 0),
    ]
    assert mark_as_shipped_calls(hub, purchase_id) == []
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 2, "reserved": 0, "available": 2}

    hub.deliverr.ship(ref, [("SKU-B", 1)], tracking_number="1ZSECOND", carrier="USPS")
    hub.drain()
    order = hub.order_by_id(order_id)
    assert order["status"] == "completed"
    assert [s["tracking_numbers"] for s in order["shipments"]] == [["1ZFIRST"], ["1ZSECOND"]]
    assert order["shipments"][0]["carrier"] == first["shippingCarrier"] == "UPS"
    assert order["shipments"][0]["tracking_url"] == first["trackingUrl"]
    parcel = hub.depop.orders[purchase_id]["line_items"][0]["parcel_id"]
    assert mark_as_shipped_calls(hub, purchase_id) == [
        (parcel, {"tracking_number": "1ZFIRST,1ZSECOND", "carrier": "USPS"})
    ]
    assert hub.depop.orders[purchase_id]["status"] == "SHIPPED"
    assert [t for t in triggers(order) if t == "ship"] == ["ship", "ship"]


def test_each_parcel_is_marked_by_the_shipment_that_completes_it(hub: Hub) -> None:
    for sku in ("SKU-A", "SKU-B", "SKU-C"):
        hub.depop.add_product(sku, quantity=3)
        hub.set_stock(sku, 3)
    # Depop puts every item of an order in one parcel today, but its API allows several.
    hub.depop.drop_next_webhooks(1)
    purchase_id = hub.depop.purchase("SKU-A", "SKU-B", "SKU-C")
    depop_order = hub.depop.orders[purchase_id]
    depop_order["line_items"][2]["parcel_id"] = "parcel-two"
    parcel_one = depop_order["line_items"][0]["parcel_id"]
    hub.depop.send_event(ORDER_NEW, depop_order)
    hub.drain()
    order_id = hub.order("depop", purchase_id)["id"]
    ref = hub.deliverr_order(order_id)["orderId"]

    # Deliverr sends no webhook for a partial shipment: the hub polls.
    hub.deliverr.ship(ref, [("SKU-A", 1)], tracking_number="TA")
    hub.poll_fulfilment(order_id)
    assert mark_as_shipped_calls(hub, purchase_id) == []
    hub.deliverr.ship(ref, [("SKU-C", 1)], tracking_number="TC")
    hub.poll_fulfilment(order_id)
    assert mark_as_shipped_calls(hub, purchase_id) == [
        ("parcel-two", {"tracking_number": "TC", "carrier": "UPS"})
    ]
    assert hub.order_by_id(order_id)["status"] == "partially_fulfilled"
    hub.deliverr.ship(ref, [("SKU-B", 1)], tracking_number="TB")
    hub.drain()

    assert mark_as_shipped_calls(hub, purchase_id) == [
        ("parcel-two", {"tracking_number": "TC", "carrier": "UPS"}),
        (parcel_one, {"tracking_number": "TA,TB", "carrier": "UPS"}),
    ]
    order = hub.order_by_id(order_id)
    assert order["status"] == "completed"
    assert all(s["pushed_to_channel"] for s in order["shipments"])
    assert hub.depop.orders[purchase_id]["status"] == "SHIPPED"


def test_duplicate_and_out_of_order_status_webhooks_leave_one_shipment_per_package(
    hub: Hub,
) -> None:
    purchase_id, order_id, ref = routed(hub, "SKU-A", flush=False)
    hub.deliverr.ship(ref)  # SHIPPED arrives first ...
    hub.drain()
    hub.deliverr.flush_webhooks()  # ... and CREATED after it
    hub.drain()
    shipped_body = hub.deliverr.sent_webhooks[0].body
    assert json.loads(shipped_body)["newStatus"] == "SHIPPED"

    # Deliverr retries the same event, and sends the same news under a new event id.
    assert post_deliverr(hub, shipped_body).json()["status"] == "duplicate"
    resent = {**json.loads(shipped_body), "eventId": "resent-shipped"}
    assert post_deliverr(hub, json.dumps(resent).encode()).json()["status"] == "accepted"
    hub.drain()

    order = hub.order_by_id(order_id)
    assert order["status"] == "completed"
    assert len(order["shipments"]) == 1
    assert order["lines"][0]["shipped_quantity"] == 1
    assert order["fulfilment_status"] == "SHIPPED"
    assert len(mark_as_shipped_calls(hub, purchase_id)) == 1
    events = hub.admin("GET", "/admin/events", params={"channel": "deliverr"}).json()["data"]
    assert sorted(e["status"] for e in events) == ["processed", "processed", "processed"]
    assert hub.stock("SKU-A")["on_hand"] == 2


def test_packages_reported_in_reverse_order_are_each_recorded_once(hub: Hub) -> None:
    purchase_id, order_id, ref = routed(hub, "SKU-A", "SKU-B")
    hub.deliverr.drop_next_webhooks(2)
    hub.deliverr.ship(ref, [("SKU-A", 1)], tracking_number="TA")
    hub.deliverr.ship(ref, [("SKU-B", 1)], tracking_number="TB")
    partial, shipped = (w.body for w in hub.deliverr.sent_webhooks[-2:])

    assert post_deliverr(hub, shipped).status_code == 200
    hub.drain()
    assert post_deliverr(hub, partial).status_code == 200
    hub.drain()

    order = hub.order_by_id(order_id)
    assert order["status"] == "completed"
    assert [s["tracking_numbers"] for s in order["shipments"]] == [["TA"], ["TB"]]
    assert order["fulfilment_status"] == "SHIPPED"
    ((_, body),) = mark_as_shipped_calls(hub, purchase_id)
    assert body["tracking_number"] == "TA,TB"


def test_status_update_for_an_unknown_deliverr_order_is_retried_then_kept_failed(
    hub: Hub,
) -> None:
    update = {
        "eventId": "evt-for-nobody",
        "eventTime": "2026-11-23T10:00:00Z",
        "type": "ORDER_STATUS_UPDATE",
        "updateType": "STATUS_CHANGE",
        "oldStatus": "CREATED",
        "newStatus": "PROCESSING",
        "orderId": "999999999",
        "shipments": [],
    }
    assert post_deliverr(hub, json.dumps(update).encode()).json()["status"] == "accepted"
    hub.drain()

    (event,) = hub.admin("GET", "/admin/events", params={"channel": "deliverr"}).json()["data"]
    assert event["status"] == "failed"
    assert "999999999" in event["error"]
    (job,) = hub.admin("GET", "/admin/jobs", params={"kind": "inbox.process"}).json()["data"]
    assert job["state"] == "dead"
    assert job["attempts"] == job["max_attempts"] > 1
    assert hub.orders() == []


# -- creating the Deliverr order ---------------------------------------------------------------


def test_create_that_timed_out_after_deliverr_stored_it_is_retried_into_one_order(
    hub: Hub,
) -> None:
    hub.deliverr.timeout_next_create(1)
    _, order_id, ref = routed(hub, "SKU-A")

    assert len(hub.deliverr.orders) == 1
    assert hub.deliverr_order(order_id)["orderId"] == ref
    # The first attempt created (timing out; with nothing to find, it did not look up) and
    # failed; the retry looked up, found the stored order by externalOrderId, created nothing.
    lookups = hub.deliverr.calls_to("GET", f"{CREATE_PATH}/externalId/{order_id}")
    assert [c.status for c in lookups] == [200]
    assert creates(hub) == []  # the timed-out create never answered
    (route,) = jobs(hub.order_by_id(order_id), "fulfilment.route")
    assert (route["state"], route["attempts"]) == ("done", 2)


def test_a_first_routing_attempt_creates_without_looking_up_and_a_retry_looks_first(
    hub: Hub,
) -> None:
    hub.deliverr.fail_next(1, 503)
    _, order_id, ref = routed(hub, "SKU-A")

    lookups = hub.deliverr.calls_to("GET", f"{CREATE_PATH}/externalId/{order_id}")
    assert [c.status for c in lookups] == [404]  # the retry's, before its create
    assert creates(hub) == [503, 201]
    assert hub.deliverr_order(order_id)["orderId"] == ref


def test_create_survives_deliverr_5xx_and_429(hub: Hub) -> None:
    hub.deliverr.fail_next(1, 503)
    hub.deliverr.fail_next(1, 429)
    _, order_id, _ = routed(hub, "SKU-A")

    assert len(hub.deliverr.orders) == 1
    (route,) = jobs(hub.order_by_id(order_id), "fulfilment.route")
    assert (route["state"], route["attempts"]) == ("done", 3)


def test_each_seed_error_code_ends_as_documented(hub: Hub) -> None:
    hub.depop.add_product("SKU-A", quantity=50)
    hub.set_stock("SKU-A", 50)
    for code, rule in ERROR_RULES.items():
        hub.deliverr.set_error_for_next_create(code.value)
        purchase_id = hub.depop.purchase("SKU-A")
        hub.drain()
        order = hub.order("depop", purchase_id)
        (route,) = jobs(order, "fulfilment.route")
        assert order["status"] == "confirmed", code
        if rule.outcome is Outcome.ATTENTION:
            assert (route["state"], route["attempts"]) == ("dead", 1), code
            assert order["needs_attention"], code
            assert order["attention_reason"] == rule.explanation, code
            assert order["fulfilment_provider"] is None, code
            assert hub.deliverr.order_by_external_id(order["id"]) is None, code
        elif code is DeliverrErrorCode.ORDER_SUBMITTED_TOO_EARLY:
            assert (route["state"], route["attempts"]) == ("done", 2), code
            assert not order["needs_attention"], code
            assert hub.deliverr_order(order["id"])["orderId"] == order["fulfilment_ref"], code
        else:
            # Deliverr asks for an hour's wait: the job waits, the order is not flagged yet.
            assert code is DeliverrErrorCode.ORDER_PREVIOUSLY_SEEN_ERROR
            assert (route["state"], route["attempts"]) == ("queued", 1), code
            assert rule.explanation in route["last_error"], code
            assert not order["needs_attention"], code
            assert hub.deliverr.order_by_external_id(order["id"]) is None, code


def test_retry_fulfilment_routes_a_failed_order_again(hub: Hub) -> None:
    hub.deliverr.set_error_for_next_create("ORDER_INVENTORY_DSKU_NEVER_INBOUNDED")
    hub.depop.add_product("SKU-A", quantity=3)
    hub.set_stock("SKU-A", 3)
    purchase_id = hub.depop.purchase("SKU-A")
    hub.drain()
    order = hub.order("depop", purchase_id)
    assert order["needs_attention"]
    assert order["fulfilment_provider"] is None

    # The product has been inbounded since: the operator routes the order again.
    response = hub.admin("POST", f"/admin/orders/{order['id']}/retry-fulfilment")
    assert response.status_code == 202, response.text
    assert response.json()["queued"] == ["fulfilment.route"]
    hub.drain()

    order = hub.order_by_id(order["id"])
    assert order["fulfilment_provider"] == "deliverr"
    assert hub.deliverr_order(order["id"])["orderId"] == order["fulfilment_ref"]
    assert not order["needs_attention"]
    assert [j["state"] for j in jobs(order, "fulfilment.route")] == ["dead", "done"]
    # The retry's key replays the earlier refusal; the create is asked again under the next.
    assert creates(hub) == [400, 400, 201]


def test_retry_fulfilment_of_an_order_not_confirmed_is_a_conflict(hub: Hub) -> None:
    _, order_id, _ = routed(hub, "SKU-A")
    cancelled = hub.admin("POST", f"/admin/orders/{order_id}/cancel", json={"reason": "r"})
    assert cancelled.status_code == 200

    response = hub.admin("POST", f"/admin/orders/{order_id}/retry-fulfilment")
    assert response.status_code == 409
    assert response.json()["error"] == "illegal_transition"


# -- cancellation ------------------------------------------------------------------------------


def test_cancelling_a_routed_order_cancels_it_at_deliverr(hub: Hub) -> None:
    _, order_id, ref = routed(hub, "SKU-A")
    response = hub.admin("POST", f"/admin/orders/{order_id}/cancel", json={"reason": "r"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    hub.drain()
    hub.deliverr.flush_webhooks()  # Deliverr's own CANCELLED news changes nothing more
    hub.drain()

    assert hub.deliverr_order(order_id)["status"] == "CANCELLED"
    assert hub.deliverr.calls_to("POST", f"{CREATE_PATH}/{ref}/cancel")[0].status == 204
    order = hub.order_by_id(order_id)
    assert order["status"] == "cancelled"
    assert "fulfilment_cancelled" in triggers(order)
    assert not order["needs_attention"]
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 3, "reserved": 0, "available": 3}


def _run_until_route_failed_once(hub: Hub, order_id: str) -> None:
    """Run jobs one at a time until the order's route job has failed once and waits to retry."""
    name = worker_name()
    for _ in range(50):
        assert run_one(hub.runtime, name), "the route job never failed"
        with hub.db.reader() as session:
            mine = col(Job.order_id) == order_id
            route = session.scalars(
                select(Job).where(mine, col(Job.kind) == "fulfilment.route")
            ).first()
        if route is not None and route.attempts == 1 and route.state == JobState.QUEUED:
            return
    raise AssertionError("the route job never failed")


def test_a_route_retry_for_an_order_cancelled_since_never_creates_it_at_deliverr(
    hub: Hub,
) -> None:
    hub.depop.add_product("SKU-A", quantity=3)
    hub.set_stock("SKU-A", 3)
    hub.deliverr.fail_next(1, 503)  # the first attempt reaches Deliverr, which stores nothing
    purchase_id = hub.depop.purchase("SKU-A")
    order_id = _order_id_when_stored(hub, purchase_id)
    _run_until_route_failed_once(hub, order_id)

    response = hub.admin("POST", f"/admin/orders/{order_id}/cancel", json={"reason": "r"})
    assert response.status_code == 200, response.text
    hub.drain()

    assert creates(hub) == [503], "the retry created the cancelled order at Deliverr"
    assert hub.deliverr.orders == {}
    lookups = hub.deliverr.calls_to("GET", f"{CREATE_PATH}/externalId/{order_id}")
    assert [c.status for c in lookups] == [404]  # it only looked for what the first left
    order = hub.order_by_id(order_id)
    assert order["status"] == "cancelled"
    assert order["fulfilment_provider"] is None
    (route,) = jobs(order, "fulfilment.route")
    assert (route["state"], route["attempts"]) == ("done", 2)
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 3, "reserved": 0, "available": 3}


def test_a_route_retry_for_an_order_cancelled_since_cancels_what_the_first_attempt_left(
    hub: Hub,
) -> None:
    hub.depop.add_product("SKU-A", quantity=3)
    hub.set_stock("SKU-A", 3)
    hub.deliverr.timeout_next_create(1)  # Deliverr stores it; the hub never hears the answer
    purchase_id = hub.depop.purchase("SKU-A")
    order_id = _order_id_when_stored(hub, purchase_id)
    _run_until_route_failed_once(hub, order_id)

    response = hub.admin("POST", f"/admin/orders/{order_id}/cancel", json={"reason": "r"})
    assert response.status_code == 200, response.text
    hub.drain()

    assert len(hub.deliverr.orders) == 1
    assert hub.deliverr_order(order_id)["status"] == "CANCELLED"
    order = hub.order_by_id(order_id)
    assert order["status"] == "cancelled"
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 3, "reserved": 0, "available": 3}


def _order_id_when_stored(hub: Hub, purchase_id: str) -> str:
    name = worker_name()
    for _ in range(20):
        found = hub.orders(channel_order_id=purchase_id)
        if found:
            return str(found[0]["id"])
        assert run_one(hub.runtime, name), "the order was never stored"
    raise AssertionError("the order was never stored")


def test_cancel_after_deliverr_shipped_asks_for_a_return(hub: Hub) -> None:
    purchase_id, order_id, ref = routed(hub, "SKU-A")
    hub.deliverr.drop_next_webhooks(1)
    hub.deliverr.ship(ref, tracking_number="1ZGONE")  # the hub does not hear of it
    hub.depop.refund(purchase_id, "25.99", "5.00")
    hub.drain()

    order = hub.order_by_id(order_id)
    assert order["status"] == "cancelled"
    (cancel,) = jobs(order, "fulfilment.cancel")
    assert (cancel["state"], cancel["attempts"]) == ("dead", 1)
    assert hub.deliverr_order(order_id)["status"] == "SHIPPED"
    flags = [e["detail"]["reason"] for e in order["history"] if e["trigger"] == "flag"]
    assert flags[0] == "cancelled after shipment: return needed"
    # The refusal made the hub ask Deliverr, which reported the parcel: its unit left the
    # shelf (on_hand falls) instead of going back to the available stock.
    assert [j["state"] for j in jobs(order, "fulfilment.poll")] == ["done"]
    assert order["attention_reason"].startswith("return needed: deliverr shipped")
    assert [s["tracking_numbers"] for s in order["shipments"]] == [["1ZGONE"]]
    assert not order["shipments"][0]["pushed_to_channel"]
    assert mark_as_shipped_calls(hub, purchase_id) == []
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 2, "reserved": 0, "available": 2}


# -- routing without Deliverr ------------------------------------------------------------------


def test_without_a_provider_orders_are_routed_to_manual(database: Database) -> None:
    hub = make_hub(database, deliverr=False, flexport=False)
    try:
        hub.depop.add_product("SKU-A", quantity=3)
        purchase_id = hub.depop.purchase("SKU-A")
        hub.drain()
        order = hub.order("depop", purchase_id)
        assert order["fulfilment_provider"] == "manual"
        assert order["fulfilment_ref"] is None
        assert hub.deliverr.calls == []
        rules = hub.admin(
            "POST", "/admin/routing-rules", json={"provider": "deliverr", "channel": "depop"}
        )
        assert rules.status_code == 422
        assert rules.json()["error"] == "unknown_provider"
    finally:
        hub.close()


# -- polling -----------------------------------------------------------------------------------


def test_polling_picks_up_a_shipment_whose_webhook_was_lost(database: Database) -> None:
    hub = make_hub(database, fulfilment_poll_after_minutes=0)
    try:
        purchase_id, order_id, ref = routed(hub, "SKU-A")
        hub.deliverr.drop_next_webhooks(1)
        hub.deliverr.ship(ref, tracking_number="1ZLOST")
        hub.drain()
        assert hub.order_by_id(order_id)["status"] == "confirmed"

        scheduler = Scheduler(hub.runtime)
        quiet = next(s for s in scheduler.schedules if s.name == "poll-quiet-fulfilment")
        assert scheduler.fire(quiet, utcnow())
        hub.drain()

        order = hub.order_by_id(order_id)
        assert order["status"] == "completed"
        assert order["shipments"][0]["tracking_numbers"] == ["1ZLOST"]
        assert order["shipments"][0]["pushed_to_channel"]
        assert [j["state"] for j in jobs(order, "fulfilment.poll")] == ["done"]
        assert hub.deliverr.calls_to("GET", f"{CREATE_PATH}/{ref}")[-1].status == 200
        ((_, body),) = mark_as_shipped_calls(hub, purchase_id)
        assert body["tracking_number"] == "1ZLOST"

        # Polling again finds nothing new and changes nothing.
        assert scheduler.fire(quiet, utcnow())
        hub.drain()
        assert len(hub.order_by_id(order_id)["shipments"]) == 1
    finally:
        hub.close()


# -- credentials -------------------------------------------------------------------------------


def test_renewed_deliverr_tokens_are_kept_in_the_database(hub: Hub) -> None:
    settings = DeliverrSettings(
        base_url=HOSTS["deliverr"],
        access_token=SecretStr(DELIVERR_TOKEN),
        refresh_token=SecretStr("refresh-original"),
        webhook_token=SecretStr(DELIVERR_HOOK),
    )
    http = TestClient(hub.deliverr.app, base_url=HOSTS["deliverr"])
    hub.wired.closers.append(http.close)
    store = DatabaseTokenStore(hub.db)
    hub.runtime.connectors.add_provider(DeliverrProvider(settings, http=http, token_store=store))
    hub.deliverr.refresh_token = "refresh-original"
    hub.deliverr.expire_access_token()

    _, order_id, ref = routed(hub, "SKU-A")

    assert len(hub.deliverr.calls_to("POST", "/oauth/v1/token")) == 1
    assert store.load("deliverr") == {
        "access_token": hub.deliverr.access_token,
        "refresh_token": hub.deliverr.refresh_token,
    }
    assert hub.deliverr.refresh_token != "refresh-original"  # Deliverr rotated it
    # A process started later with the same settings reads the renewed pair from the
    # database; the rotated refresh token in its settings would no longer work.
    restarted = DeliverrProvider(settings, http=http, token_store=DatabaseTokenStore(hub.db))
    assert restarted.get_order(ref).raw_status == "CREATED"
    assert len(hub.deliverr.calls_to("POST", "/oauth/v1/token")) == 1
    assert hub.order_by_id(order_id)["fulfilment_ref"] == ref
