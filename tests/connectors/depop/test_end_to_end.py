"""Simulator -> signed webhook -> receiver -> connector, the way the hub will drive it.

`Inbox` stands in for the hub's webhook endpoint and order service with the least logic the
connector's contract needs: verify, dedupe on the envelope id, parse, fetch on a refund.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from connectors.base import (
    ChannelEvent,
    ChannelOrder,
    ChannelOrderStatus,
    EventKind,
    FlowNotSupported,
    MalformedPayload,
    OrderLineView,
    OrderView,
    ShipmentLineView,
    ShipmentView,
    Unauthenticated,
)
from connectors.depop import DepopChannel
from connectors.depop.simulator import HOST, DepopSimulator

from .conftest import API_KEY, WEBHOOK_SECRET, make_settings

HUB = "http://hub.test"


@dataclass
class Inbox:
    channel: DepopChannel
    events: dict[str, bytes] = field(default_factory=dict)
    orders: dict[str, ChannelOrder] = field(default_factory=dict)
    states: dict[str, list[str]] = field(default_factory=dict)
    notes: list[ChannelEvent] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/webhooks/depop")
        async def receive(request: Request) -> JSONResponse:
            body = await request.body()
            receiver = self.channel.webhooks
            try:
                receiver.authenticate(dict(request.headers), body, datetime.now(UTC))
            except Unauthenticated as exc:
                return JSONResponse({"error": "unauthenticated", "detail": str(exc)}, 401)
            identity = receiver.identify(dict(request.headers), body)
            if identity.external_id in self.events:
                return JSONResponse({"status": "duplicate", "event_id": identity.external_id})
            self.events[identity.external_id] = body
            self.handle(receiver.parse(body, identity))
            return JSONResponse({"status": "accepted", "event_id": identity.external_id})

        return app

    def handle(self, event: ChannelEvent) -> None:
        if event.kind is EventKind.ORDER_PLACED and event.order is not None:
            self.place(event.order)
        elif event.kind is EventKind.ORDER_CHANGED and event.channel_order_id is not None:
            order = self.channel.fetch_order(event.channel_order_id)
            if order.channel_order_id not in self.orders:
                self.place(order)
            shipped = self.states[order.channel_order_id][-1] == "partially_fulfilled"
            if order.status is ChannelOrderStatus.CANCELLED and not shipped:
                self.states[order.channel_order_id].append("cancelled")
            self.orders[order.channel_order_id] = order
        else:
            self.notes.append(event)

    def place(self, order: ChannelOrder) -> None:
        self.orders[order.channel_order_id] = order
        states = ["created"]
        view = OrderView("x", "depop", order.channel_order_id, order.currency, (), ())
        steps = ((self.channel.acknowledge, "acknowledged"), (self.channel.accept, "confirmed"))
        for step, state in steps:
            # Depop orders arrive paid: the hub records each step without a call to Depop.
            with pytest.raises(FlowNotSupported):
                step(view)
            states.append(state)
        self.states[order.channel_order_id] = states


@pytest.fixture
def wired() -> Iterator[tuple[DepopSimulator, Inbox]]:
    sim = DepopSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)
    with TestClient(sim.app, base_url=HOST) as api:
        inbox = Inbox(DepopChannel(make_settings(), http=api))
        with TestClient(inbox.app(), base_url=HUB) as hub:
            sim.webhook_url = f"{HUB}/webhooks/depop"
            sim.webhook_client = hub
            yield sim, inbox


def test_purchase_arrives_as_a_confirmed_order(wired: tuple[DepopSimulator, Inbox]) -> None:
    sim, inbox = wired
    sim.add_product("SKU-A", price="25.99")
    purchase_id = sim.purchase("SKU-A")
    assert sim.sent_webhooks[-1].status == 200
    assert inbox.states[purchase_id] == ["created", "acknowledged", "confirmed"]
    order = inbox.orders[purchase_id]
    assert [line.sku for line in order.lines] == ["SKU-A"]
    assert order.status is ChannelOrderStatus.OPEN


def test_duplicate_delivery_makes_one_order(wired: tuple[DepopSimulator, Inbox]) -> None:
    sim, inbox = wired
    sim.add_product("SKU-A")
    sim.purchase("SKU-A")
    (event_id,) = sim.sent_events
    assert sim.redeliver(event_id) == 200
    assert len(inbox.orders) == 1
    assert len(inbox.events) == 1


def test_webhook_signed_with_another_secret_is_refused_and_stores_nothing(
    wired: tuple[DepopSimulator, Inbox],
) -> None:
    sim, inbox = wired
    sim.webhook_secret = "someone-else"
    sim.add_product("SKU-A")
    sim.purchase("SKU-A")
    assert sim.sent_webhooks[-1].status == 401
    assert inbox.events == {} and inbox.orders == {}


def test_dropped_webhook_is_found_by_listing(wired: tuple[DepopSimulator, Inbox]) -> None:
    sim, inbox = wired
    sim.add_product("SKU-A")
    sim.drop_next_webhooks(1)
    purchase_id = sim.purchase("SKU-A")
    assert inbox.orders == {}
    window = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    assert [o.channel_order_id for o in inbox.channel.list_orders(*window)] == [purchase_id]


def test_manual_shipment_is_marked_shipped_at_depop(wired: tuple[DepopSimulator, Inbox]) -> None:
    sim, inbox = wired
    sim.add_product("SKU-A")
    purchase_id = sim.purchase("SKU-A")
    (line,) = inbox.orders[purchase_id].lines
    manual = ShipmentView(
        shipment_id="manual-1",
        carrier="Royal Mail",
        tracking_numbers=("GB1234567890GB", "GB0987654321GB"),
        tracking_url=None,
        shipped_at=datetime(2025, 1, 2, tzinfo=UTC),
        lines=(ShipmentLineView(channel_line_id=line.channel_line_id, sku="SKU-A", quantity=1),),
        pushed_to_channel=False,
    )
    view = OrderView(
        order_id="hub-1",
        channel="depop",
        channel_order_id=purchase_id,
        currency="GBP",
        lines=(
            OrderLineView(
                line_id="L1",
                channel_line_id=line.channel_line_id,
                sku=line.sku,
                quantity=1,
                shipped_quantity=1,
                unit_price=line.unit_price,
                parcel_ref=line.parcel_ref,
            ),
        ),
        shipments=(manual,),
    )
    inbox.channel.push_tracking(view, "manual-1")
    assert line.parcel_ref is not None
    assert sim.shipped_parcels[purchase_id] == {
        line.parcel_ref: {
            "tracking_number": "GB1234567890GB,GB0987654321GB",
            "carrier": "Royal Mail",
        }
    }
    assert inbox.channel.fetch_order(purchase_id).status is ChannelOrderStatus.SHIPPED


def test_refund_before_shipping_cancels(wired: tuple[DepopSimulator, Inbox]) -> None:
    sim, inbox = wired
    sim.add_product("SKU-A", price="20.00")
    purchase_id = sim.purchase("SKU-A", shipping_price="5.00")
    sim.refund(purchase_id, "20.00", "5.00")
    assert inbox.states[purchase_id][-1] == "cancelled"
    summary = inbox.orders[purchase_id].attributes["refund_summary"]
    assert summary["buyer_refund_amount"] == "25.00"
    assert summary["refunded_by"] == "PARTNER"


def test_partial_refund_keeps_the_order(wired: tuple[DepopSimulator, Inbox]) -> None:
    sim, inbox = wired
    sim.add_product("SKU-A", price="20.00")
    purchase_id = sim.purchase("SKU-A")
    sim.refund(purchase_id, "2.50")
    assert inbox.states[purchase_id][-1] == "confirmed"
    assert inbox.orders[purchase_id].attributes["refund_summary"]["buyer_refund_amount"] == "2.50"


def test_refund_of_an_unseen_order_creates_it_first(wired: tuple[DepopSimulator, Inbox]) -> None:
    sim, inbox = wired
    sim.add_product("SKU-A")
    sim.drop_next_webhooks(1)
    purchase_id = sim.purchase("SKU-A")
    sim.cancel(purchase_id)
    assert inbox.states[purchase_id] == ["created", "acknowledged", "confirmed", "cancelled"]
    assert inbox.orders[purchase_id].channel_status == "CANCELLED"
    assert inbox.orders[purchase_id].attributes["refund_summary"]["refunded_by"] == "DEPOP"


def test_likes_are_received_and_ignored(wired: tuple[DepopSimulator, Inbox]) -> None:
    sim, inbox = wired
    sim.add_product("SKU-A")
    sim.like("SKU-A")
    sim.like("SKU-A", unlike=True)
    assert [e.kind for e in inbox.notes] == [EventKind.IGNORED, EventKind.IGNORED]
    assert [e.event_type for e in inbox.notes] == ["v1:product.like", "v1:product.unlike"]
    assert len(inbox.events) == 2


def test_control_routes_drive_a_demo(wired: tuple[DepopSimulator, Inbox]) -> None:
    sim, inbox = wired
    with TestClient(sim.app, base_url=HOST) as control:
        assert control.post("/_sim/products/SKU-D", params={"price": "9.99"}).status_code == 200
        purchase_id = control.post("/_sim/purchase", json={"sku": "SKU-D"}).json()["purchase_id"]
        refunded = control.post(
            f"/_sim/orders/{purchase_id}/refund",
            json={"items_refund_amount": "9.99", "shipping_refund_amount": "5.00"},
        )
        assert refunded.json() == {"status": "REFUNDED"}
        assert control.post("/_sim/fail-next", params={"n": 1, "status": 503}).status_code == 200
        failed = control.get(
            f"/api/v1/orders/{purchase_id}/", headers={"Authorization": f"Bearer {API_KEY}"}
        )
    assert failed.status_code == 503
    assert failed.json()["errors"][0]["code"] == "internal_server_error"
    assert inbox.states[purchase_id][-1] == "cancelled"


def test_simulator_answers_in_depops_error_format(wired: tuple[DepopSimulator, Inbox]) -> None:
    sim, _ = wired
    with TestClient(sim.app, base_url=HOST) as api:
        unauthorized = api.get("/api/v1/orders/")
        assert unauthorized.status_code == 401
        assert unauthorized.json()["errors"] == [
            {"code": "unauthorized", "message": "invalid api key"}
        ]
        bad = api.get(
            "/api/v1/orders/", params={"limit": 201}, headers={"Authorization": f"Bearer {API_KEY}"}
        )
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["code"] == "bad-request"
        assert isinstance(bad.json()["id"], str)


def test_unreadable_authentic_webhook_is_malformed(wired: tuple[DepopSimulator, Inbox]) -> None:
    _, inbox = wired
    with pytest.raises(MalformedPayload):
        inbox.channel.webhooks.identify({}, b"{")
