"""`/admin/orders`: filters, cursor pagination, the detail with its story, and the actions."""

from __future__ import annotations

from connectors.base import Permanent, Retriable
from connectors.deliverr.transformers import DeliverrOrderStatus
from hub.fulfilment import service as fulfilment
from hub.orders import service as orders_service
from tests.harness import Hub

from .conftest import error, ok, place, send

REASON = {"reason": "the buyer asked"}


def ids(hub: Hub, **params: object) -> list[str]:
    page = ok(hub.admin("GET", "/admin/orders", params=params))
    return [o["channel_order_id"] for o in page["data"]]


def test_orders_are_found_by_channel_status_sku_order_id_and_attention(hub: Hub) -> None:
    hub.set_stock("SKU-3", 0)
    assert hub.fake is not None
    place(hub, "A-1", ("SKU-1", 1))
    place(hub, "A-2", ("SKU-2", 2))
    place(hub, "A-3", ("SKU-3", 1))  # nothing in stock: rejected at the channel
    hub.fake.failures["accept"] = [Permanent("the channel refused the accept")]
    place(hub, "A-4", ("SKU-1", 1))

    assert ids(hub, channel="fake") == ["A-4", "A-3", "A-2", "A-1"]
    assert ids(hub, channel="depop") == []
    assert ids(hub, status="rejected") == ["A-3"]
    assert ids(hub, sku="SKU-2") == ["A-2"]
    assert ids(hub, channel_order_id="A-1") == ["A-1"]
    assert ids(hub, needs_attention=True) == ["A-4"]
    assert ids(hub, status="confirmed", sku="SKU-1") == ["A-1"]


def test_cursor_pagination_walks_every_order_once_newest_first(hub: Hub) -> None:
    for n in range(5):
        send(hub, f"P-{n}", ("SKU-1", 1))
    hub.drain()

    pages: list[list[str]] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = ok(hub.admin("GET", "/admin/orders", params=params))
        pages.append([o["channel_order_id"] for o in page["data"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == [["P-4", "P-3"], ["P-2", "P-1"], ["P-0"]]


def test_order_detail_tells_its_history_jobs_and_the_events_that_touched_it(hub: Hub) -> None:
    order = place(hub, "A-1", ("SKU-1", 2))

    assert order["lines"] == [
        {
            "id": order["lines"][0]["id"],
            "channel_line_id": "1",
            "sku": "SKU-1",
            "quantity": 2,
            "shipped_quantity": 0,
            "cancelled_quantity": 0,
            "unit_price": "10.00",
        }
    ]
    history = [(h["trigger"], h["from_state"], h["to_state"]) for h in order["history"]]
    assert history[:3] == [
        ("receive", None, "created"),
        ("acknowledge", "created", "acknowledged"),
        ("confirm", "acknowledged", "confirmed"),
    ]
    assert all(h["source"] and h["at"].endswith(("Z", "+00:00")) for h in order["history"])
    assert {j["kind"] for j in order["jobs"]} >= {
        "order.acknowledge",
        "order.accept",
        "fulfilment.route",
    }
    assert all(j["state"] == "done" and j["last_error"] is None for j in order["jobs"])
    assert [(e["external_id"], e["status"]) for e in order["events"]] == [("evt-A-1", "processed")]


def test_unknown_order_answers_404_json(hub: Hub) -> None:
    error(hub.admin("GET", "/admin/orders/ord_NOPE"), 404, "order_not_found")
    error(hub.admin("POST", "/admin/orders/ord_NOPE/cancel", json=REASON), 404, "order_not_found")


def test_bad_filters_answer_422_json(hub: Hub) -> None:
    error(hub.admin("GET", "/admin/orders", params={"status": "lost"}), 422, "invalid_request")
    error(hub.admin("GET", "/admin/orders", params={"limit": 0}), 422, "invalid_request")
    error(hub.admin("GET", "/admin/orders", params={"needs_attention": "maybe"}), 422)


def test_cancelling_releases_the_stock_and_cancels_the_fulfilment_order(hub: Hub) -> None:
    hub.set_stock("SKU-1", 3)
    order = place(hub, "A-1", ("SKU-1", 2))
    assert hub.stock("SKU-1")["reserved"] == 2

    cancelled = ok(hub.admin("POST", f"/admin/orders/{order['id']}/cancel", json=REASON))
    hub.drain()

    assert cancelled["status"] == "cancelled"
    assert cancelled["history"][-1]["source"] == "admin:ops"
    assert hub.stock("SKU-1") == {"sku": "SKU-1", "on_hand": 3, "reserved": 0, "available": 3}
    assert hub.deliverr_order(order["id"])["status"] == "CANCELLED"


def test_an_illegal_action_answers_409_and_changes_nothing(hub: Hub) -> None:
    order = place(hub, "A-1", ("SKU-1", 1))
    ok(hub.admin("POST", f"/admin/orders/{order['id']}/cancel", json=REASON))

    again = hub.admin("POST", f"/admin/orders/{order['id']}/cancel", json=REASON)
    error(again, 409, "illegal_transition")
    error(hub.admin("POST", f"/admin/orders/{order['id']}/reject"), 409, "illegal_transition")
    error(hub.admin("POST", f"/admin/orders/{order['id']}/retry-fulfilment"), 409)
    shipment = {
        "lines": [{"sku": "SKU-1", "quantity": 1}],
        "carrier": "DHL",
        "tracking_number": "T",
    }
    error(hub.admin("POST", f"/admin/orders/{order['id']}/shipments", json=shipment), 409)
    assert hub.order_by_id(order["id"])["status"] == "cancelled"


def test_rejecting_an_order_not_yet_confirmed_tells_the_channel_first(hub: Hub) -> None:
    assert hub.fake is not None
    # The channel is down for the acknowledge: the order waits in `created`.
    hub.fake.failures["acknowledge"] = [Retriable("channel down", after=600)]
    order = place(hub, "A-1", ("SKU-1", 1))
    assert order["status"] == "created"

    queued = ok(
        hub.admin("POST", f"/admin/orders/{order['id']}/reject", json={"reason": "fraud"}), 202
    )
    assert queued == {"order_id": order["id"], "status": "created", "queued": ["order.reject"]}
    hub.drain()

    rejected = hub.order_by_id(order["id"])
    assert rejected["status"] == "rejected"
    assert rejected["history"][-1]["detail"] == {"reason": "fraud"}
    assert hub.fake.count("reject") == 1


def test_retry_fulfilment_routes_again_after_the_provider_refused(hub: Hub) -> None:
    hub.deliverr.set_error_for_next_create("ORDER_MISSING_CITY")
    order = place(hub, "A-1", ("SKU-1", 1))
    assert order["needs_attention"] and order["fulfilment_ref"] is None

    ok(hub.admin("POST", f"/admin/orders/{order['id']}/retry-fulfilment"), 202)
    hub.drain()

    routed = hub.order_by_id(order["id"])
    assert routed["needs_attention"] is False
    assert routed["fulfilment_provider"] == "deliverr"
    assert hub.deliverr_order(order["id"])["status"] == "CREATED"


def test_retry_fulfilment_resolves_the_routing_flags_and_keeps_the_others(hub: Hub) -> None:
    hub.deliverr.set_error_for_next_create("ORDER_MISSING_CITY")
    order = place(hub, "A-1", ("SKU-1", 1))
    [refused] = [f["code"] for f in order["flags"]]
    assert refused == "job_failed"
    # Two reasons routing again does not settle, raised as their causes raise them.
    with hub.db.transaction() as session:
        orders_service.flag(
            session,
            order["id"],
            "the channel holds a parcel for an answer",
            "test",
            code=fulfilment.NEEDS_INPUT,
        )
        orders_service.flag(session, order["id"], "the buyer wrote in", "test")

    ok(hub.admin("POST", f"/admin/orders/{order['id']}/retry-fulfilment"), 202)
    hub.drain()

    routed = hub.order_by_id(order["id"])
    assert routed["fulfilment_provider"] == "deliverr"
    assert sorted(f["code"] for f in routed["flags"]) == ["attention", "needs_input"]
    assert routed["needs_attention"] is True
    resolved = [f for f in routed["flag_history"] if f["resolved_at"] is not None]
    assert [f["code"] for f in resolved] == ["job_failed"]


def test_retry_fulfilment_resolves_a_provider_error_flag(hub: Hub) -> None:
    order = place(hub, "A-1", ("SKU-1", 1))
    ref = order["fulfilment_ref"]
    hub.deliverr.orders[ref].status = DeliverrOrderStatus.ERROR
    hub.poll_fulfilment(order["id"])
    [flag] = hub.order_by_id(order["id"])["flags"]
    assert flag["message"] == "deliverr reports an error on the fulfilment order"

    ok(hub.admin("POST", f"/admin/orders/{order['id']}/retry-fulfilment"), 202)
    hub.drain()

    assert hub.order_by_id(order["id"])["flags"] == []


def test_a_manual_shipment_that_does_not_fit_the_order_answers_422(hub: Hub) -> None:
    order = place(hub, "A-1", ("SKU-1", 1))
    path = f"/admin/orders/{order['id']}/shipments"

    too_many = {
        "lines": [{"sku": "SKU-1", "quantity": 2}],
        "carrier": "DHL",
        "tracking_number": "T",
    }
    error(hub.admin("POST", path, json=too_many), 422, "shipment_rejected")
    unknown = {"lines": [{"sku": "SKU-9", "quantity": 1}], "carrier": "DHL", "tracking_number": "T"}
    error(hub.admin("POST", path, json=unknown), 422, "shipment_rejected")
    error(hub.admin("POST", path, json={"lines": [], "carrier": "DHL"}), 422, "invalid_request")
    error(
        hub.admin("POST", path, content=b"{not json", headers={"content-type": "application/json"}),
        422,
    )
    assert hub.order_by_id(order["id"])["shipments"] == []
