"""Whole order lives, played between the simulator, its signed webhooks and the channel."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connectors.base import ChannelOrder, EventKind, OrderView, Permanent, ShipmentView
from connectors.topi import TopiChannel
from connectors.topi.simulator import SimLine, TopiSimulator
from tests.connectors.topi.conftest import OLD_WEBHOOK_SECRET, WebhookSink, shipment, view_of

KNOWN_SKUS = {"LAPTOP", "CHARGER"}


def placed(sink: WebhookSink, channel: TopiChannel) -> ChannelOrder:
    """The order a `created` webhook announced, read in full as the hub reads it: the webhook's
    order has no prices and no `seller_info`, so no SKU source either."""
    event = sink.events[-1]
    assert event.kind is EventKind.ORDER_PLACED
    assert event.order is not None
    assert event.order.attributes["prices_known"] is False
    return channel.fetch_order(event.order.channel_order_id)


def calls(sim: TopiSimulator) -> list[tuple[str, str, int]]:
    return [(c.method, c.path, c.status) for c in sim.calls]


def with_shipments(view: OrderView, *shipments: ShipmentView) -> OrderView:
    return replace(view, shipments=shipments)


def test_order_is_acknowledged_confirmed_shipped_in_two_parts_and_completed(
    sim: TopiSimulator, channel: TopiChannel, sink: WebhookSink
) -> None:
    oid = sim.create_order([SimLine("LAPTOP", 2, "rent"), SimLine("CHARGER", 1, "pay_now")])
    order = placed(sink, channel)
    assert order.channel_order_id == oid
    assert [(line.sku, line.quantity) for line in order.lines] == [("LAPTOP", 2), ("CHARGER", 1)]
    view = view_of(order)

    channel.acknowledge(view)
    assert sim.order(oid)["status"] == "acknowledged"
    channel.accept(view)
    assert sim.order(oid)["status"] == "confirmed"

    first = shipment("s1", ("LAPTOP", 1, ("SN-1",)))
    channel.push_tracking(with_shipments(view, first), "s1")
    assert sim.order(oid)["status"] == "partially_fulfilled"

    second = shipment("s2", ("LAPTOP", 1, ("SN-2",)), ("CHARGER", 1, ()))
    channel.push_tracking(
        with_shipments(view, replace(first, pushed_to_channel=True), second), "s2"
    )
    assert sim.order(oid)["status"] == "completed"

    shipment_path = "/v1/shipment"
    assert calls(sim) == [
        ("POST", "/oauth2/token", 200),
        ("GET", f"/v1/orders/{oid}", 200),
        ("POST", f"/v1/orders/{oid}/acknowledge", 200),
        ("POST", f"/v1/orders/{oid}/accept", 200),
        ("GET", f"/v1/orders/{oid}", 200),
        ("POST", shipment_path, 200),
        ("GET", f"/v1/orders/{oid}", 200),
        ("POST", shipment_path, 200),
    ]
    sent = [c.json["serial_numbers"] for c in sim.calls_to("POST", shipment_path)]
    assert [
        [(e["seller_product_reference"]["reference"], e["serial_number"]) for e in s] for s in sent
    ] == [
        [("LAPTOP", "SN-1")],
        [("LAPTOP", "SN-2"), ("CHARGER", "")],
    ]
    assert [e.event_type for e in sink.events] == ["order.created", "order.completed"]
    assert sink.events[-1].kind is EventKind.ORDER_NOTICE
    assert [a["serial_number"] for a in sim.order(oid)["assets"] if "serial_number" in a] == [
        "SN-1",
        "SN-2",
    ]


def test_order_with_an_unknown_sku_is_rejected(
    sim: TopiSimulator, channel: TopiChannel, sink: WebhookSink
) -> None:
    oid = sim.create_order([SimLine("LAPTOP", 1), SimLine("MYSTERY-BOX", 1)])
    order = placed(sink, channel)
    view = view_of(order)
    channel.acknowledge(view)
    unknown = [line.sku for line in order.lines if line.sku not in KNOWN_SKUS]
    assert unknown == ["MYSTERY-BOX"]
    channel.reject(view, f"unknown SKU {unknown[0]}")
    assert sim.order(oid)["status"] == "rejected"
    assert calls(sim)[2:] == [
        ("POST", f"/v1/orders/{oid}/acknowledge", 200),
        ("POST", f"/v1/orders/{oid}/reject", 200),
    ]
    with pytest.raises(Permanent):
        channel.accept(view)


def test_cancel_before_shipping_reaches_the_hub_and_blocks_shipments(
    sim: TopiSimulator, channel: TopiChannel, sink: WebhookSink
) -> None:
    oid = sim.create_order([SimLine("LAPTOP", 1)])
    view = view_of(placed(sink, channel))
    channel.acknowledge(view)
    channel.accept(view)
    sim.cancel_order(oid)
    cancelled = sink.events[-1]
    assert cancelled.kind is EventKind.ORDER_CANCELLED
    assert cancelled.channel_order_id == oid
    with pytest.raises(Permanent):
        channel.push_tracking(with_shipments(view, shipment("s1", ("LAPTOP", 1, ("SN",)))), "s1")


def test_completed_order_cannot_be_cancelled_at_topi(
    sim: TopiSimulator, channel: TopiChannel, sink: WebhookSink
) -> None:
    oid = sim.create_order([SimLine("CHARGER", 1, "pay_now")])
    view = view_of(placed(sink, channel))
    channel.accept(view)
    channel.push_tracking(with_shipments(view, shipment("s1", ("CHARGER", 1, ()))), "s1")
    with pytest.raises(ValueError):
        sim.cancel_order(oid)


def test_token_expiring_mid_run_is_renewed_without_a_failed_call(
    sim: TopiSimulator, channel: TopiChannel, sink: WebhookSink
) -> None:
    oid = sim.create_order([SimLine("CHARGER", 2, "pay_now")])
    view = view_of(placed(sink, channel))
    channel.acknowledge(view)
    channel.accept(view)
    sim.expire_tokens()
    channel.push_tracking(with_shipments(view, shipment("s1", ("CHARGER", 2, ()))), "s1")
    assert sim.order(oid)["status"] == "completed"
    assert sim.issued_tokens == 2
    assert [status for _, path, status in calls(sim) if path == "/v1/shipment"] == [200]


def test_redelivered_webhook_is_recognised_by_its_message_id(
    sim: TopiSimulator, sink: WebhookSink
) -> None:
    sim.create_order([SimLine("LAPTOP", 1)])
    assert sim.redeliver() == 200
    assert len(sink.events) == 1
    assert sink.refused == 0


def test_webhooks_signed_with_a_secret_the_hub_does_not_hold_are_refused(
    sink: WebhookSink, sim: TopiSimulator
) -> None:
    sim.webhook_secret = OLD_WEBHOOK_SECRET
    sim.create_order([SimLine("LAPTOP", 1)])
    assert sink.refused == 1
    assert sink.events == []
    assert sim.sent_webhooks[-1].status == 401


def test_dropped_webhook_leaves_the_order_to_reconciliation(
    sim: TopiSimulator, channel: TopiChannel, sink: WebhookSink
) -> None:
    sim.drop_next_webhooks(1)
    oid = sim.create_order([SimLine("LAPTOP", 1)])
    assert sink.events == []
    assert channel.fetch_order(oid).channel_order_id == oid
