"""The real Depop client and channel against the simulator: calls, paging and error mapping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient

from connectors.base import (
    ChannelOrderStatus,
    FlowNotSupported,
    ListingNotFound,
    OrderLineView,
    OrderView,
    Permanent,
    Retriable,
    SalesChannel,
    ShipmentLineView,
    ShipmentView,
)
from connectors.depop import DepopChannel, DepopSettings
from connectors.depop.simulator import HOST, DepopSimulator

from .conftest import make_settings

T = TypeVar("T")


def run_job(action: Callable[[], T], max_attempts: int = 5) -> T:
    """What the job layer does with a connector call: retry `Retriable`, stop on anything else."""
    for attempt in range(1, max_attempts + 1):
        try:
            return action()
        except Retriable:
            if attempt == max_attempts:
                raise
    raise AssertionError("unreachable")


def order_view(channel: DepopChannel, purchase_id: str, *shipments: ShipmentView) -> OrderView:
    fetched = channel.fetch_order(purchase_id)
    return OrderView(
        order_id=f"hub-{purchase_id}",
        channel="depop",
        channel_order_id=purchase_id,
        currency=fetched.currency,
        lines=tuple(
            OrderLineView(
                line_id=f"L{line.channel_line_id}",
                channel_line_id=line.channel_line_id,
                sku=line.sku,
                quantity=line.quantity,
                shipped_quantity=0,
                unit_price=line.unit_price,
                parcel_ref=line.parcel_ref,
            )
            for line in fetched.lines
        ),
        shipments=shipments,
    )


def shipment(
    sid: str, lines: list[str], numbers: tuple[str, ...], carrier: str | None = "Royal Mail"
) -> ShipmentView:
    return ShipmentView(
        shipment_id=sid,
        carrier=carrier,
        tracking_numbers=numbers,
        tracking_url=None,
        shipped_at=None,
        lines=tuple(ShipmentLineView(channel_line_id=c, sku=None, quantity=1) for c in lines),
        pushed_to_channel=False,
    )


def test_channel_satisfies_the_sales_channel_protocol(channel: DepopChannel) -> None:
    assert isinstance(channel, SalesChannel)
    assert channel.name == "depop"


def test_settings_are_configured_only_with_both_credentials() -> None:
    assert make_settings().configured
    assert not make_settings(api_key=None).configured
    assert not make_settings(webhook_secret=None).configured


def test_settings_read_the_depop_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPOP_API_KEY", "k")
    monkeypatch.setenv("DEPOP_WEBHOOK_SECRET", "s")
    settings = DepopSettings(_env_file=None)
    assert settings.base_url == "https://partnerapi.depop.com"
    assert settings.configured


@pytest.mark.parametrize("flow", ["acknowledge", "accept"])
def test_depop_has_no_acknowledge_or_accept(channel: DepopChannel, flow: str) -> None:
    view = OrderView("o", "depop", "1", "GBP", (), ())
    with pytest.raises(FlowNotSupported):
        getattr(channel, flow)(view)
    with pytest.raises(FlowNotSupported):
        channel.reject(view, "no stock")


def test_fetch_order_reads_a_purchase(sim: DepopSimulator, channel: DepopChannel) -> None:
    sim.add_product("SKU-A", price="19.50")
    sim.add_product("SKU-B", price="10.00")
    purchase_id = sim.purchase("SKU-A", "SKU-B", shipping_price="4.00", tax="1.25")
    order = channel.fetch_order(purchase_id)
    assert order.status is ChannelOrderStatus.OPEN
    assert [line.sku for line in order.lines] == ["SKU-A", "SKU-B"]
    assert [line.unit_price for line in order.lines] == [Decimal("19.50"), Decimal("10.00")]
    assert len({line.parcel_ref for line in order.lines}) == 1
    assert order.total_amount == Decimal("34.75")
    assert order.attributes["buyer_tax_amount"] == "1.25"


def test_fetch_of_an_unknown_order_is_permanent(channel: DepopChannel) -> None:
    with pytest.raises(Permanent) as failure:
        channel.fetch_order("999")
    assert failure.value.code == "order_not_found"


def test_list_orders_follows_every_page(sim: DepopSimulator, channel: DepopChannel) -> None:
    sim.add_product("SKU-A", quantity=5)
    ids = {sim.purchase("SKU-A") for _ in range(5)}
    window = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    got = [o.purchase_id for o in channel.client.list_orders(*window, limit=2)]
    assert sorted(got) == sorted(ids)
    assert len(sim.calls_to("GET", "/api/v1/orders/")) == 3
    assert {o.channel_order_id for o in channel.list_orders(*window)} == ids
    assert sim.calls_to("GET", "/api/v1/orders/")[-1].query["limit"] == "200"


def test_list_orders_keeps_to_the_window() -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    now = [start]
    sim = DepopSimulator(api_key="depop-test-key", webhook_secret="s", clock=lambda: now[0])
    with TestClient(sim.app, base_url=HOST) as http:
        channel = DepopChannel(make_settings(), http=http)
        sim.add_product("SKU-A", quantity=4)
        placed = []
        for day in range(4):
            now[0] = start + timedelta(days=day)
            placed.append(sim.purchase("SKU-A"))
        found = channel.list_orders(start + timedelta(days=1), start + timedelta(days=3))
        assert sorted(o.channel_order_id for o in found) == sorted(placed[1:3])
        query = sim.calls_to("GET", "/api/v1/orders/")[-1].query
        assert (query["from"], query["to"]) == ("2025-03-02T00:00:00Z", "2025-03-04T00:00:00Z")


def test_push_tracking_marks_the_parcel_shipped(sim: DepopSimulator, channel: DepopChannel) -> None:
    sim.add_product("SKU-A")
    sim.add_product("SKU-B")
    purchase_id = sim.purchase("SKU-A", "SKU-B")
    view = order_view(channel, purchase_id)
    first, second = (line.channel_line_id for line in view.lines)
    parcel = view.lines[0].parcel_ref
    partial = shipment("s1", [first], ("TRK1",))
    rest = shipment("s2", [second], ("TRK2", "TRK3"), carrier="DPD")
    view = order_view(channel, purchase_id, partial, rest)

    channel.push_tracking(view, "s1")
    assert sim.calls_to("POST", f"/api/v1/orders/{purchase_id}/") == []

    channel.push_tracking(view, "s2")
    (call,) = sim.calls_to("POST", f"/api/v1/orders/{purchase_id}/parcels/")
    assert call.path == f"/api/v1/orders/{purchase_id}/parcels/{parcel}/mark-as-shipped/"
    assert call.json == {"tracking_number": "TRK1,TRK2,TRK3", "carrier": "DPD"}
    assert sim.orders[purchase_id]["status"] == "SHIPPED"


def test_push_tracking_again_is_harmless(sim: DepopSimulator, channel: DepopChannel) -> None:
    sim.add_product("SKU-A")
    purchase_id = sim.purchase("SKU-A")
    view = order_view(channel, purchase_id)
    view = order_view(channel, purchase_id, shipment("s1", [view.lines[0].channel_line_id], ("T",)))
    channel.push_tracking(view, "s1")
    channel.push_tracking(view, "s1")
    calls = sim.calls_to("POST", f"/api/v1/orders/{purchase_id}/parcels/")
    assert [c.status for c in calls] == [200, 400]
    assert sim.shipped_parcels[purchase_id] == {
        view.lines[0].parcel_ref: {"tracking_number": "T", "carrier": "Royal Mail"}
    }


def test_push_tracking_that_timed_out_after_taking_effect_finishes_on_retry(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("SKU-A")
    purchase_id = sim.purchase("SKU-A")
    view = order_view(channel, purchase_id)
    view = order_view(channel, purchase_id, shipment("s1", [view.lines[0].channel_line_id], ("T",)))
    sim.timeout_next(1, after_processing=True)
    run_job(lambda: channel.push_tracking(view, "s1"))
    assert sim.orders[purchase_id]["status"] == "SHIPPED"


def test_push_tracking_to_a_refunded_order_is_permanent(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("SKU-A", price="20.00")
    purchase_id = sim.purchase("SKU-A", shipping_price="5.00")
    view = order_view(channel, purchase_id)
    view = order_view(channel, purchase_id, shipment("s1", [view.lines[0].channel_line_id], ("T",)))
    sim.refund(purchase_id, "20.00", "5.00")
    with pytest.raises(Permanent, match="REFUNDED"):
        channel.push_tracking(view, "s1")


def test_push_tracking_without_a_carrier_is_permanent_and_calls_nothing(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("SKU-A")
    purchase_id = sim.purchase("SKU-A")
    view = order_view(channel, purchase_id)
    line = view.lines[0].channel_line_id
    view = order_view(channel, purchase_id, shipment("s1", [line], ("T",), carrier=None))
    with pytest.raises(Permanent) as failure:
        channel.push_tracking(view, "s1")
    assert failure.value.code == "missing_carrier"
    assert sim.calls_to("POST", "/api/v1/orders/") == []


def test_injected_500s_and_429s_are_retried_and_finish(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("SKU-A")
    purchase_id = sim.purchase("SKU-A")
    view = order_view(channel, purchase_id)
    view = order_view(channel, purchase_id, shipment("s1", [view.lines[0].channel_line_id], ("T",)))
    sim.fail_next(2, status=500)
    sim.fail_next(1, status=429)
    run_job(lambda: channel.push_tracking(view, "s1"))
    statuses = [c.status for c in sim.calls_to("POST", f"/api/v1/orders/{purchase_id}/")]
    assert statuses == [500, 500, 429, 200]
    assert sim.orders[purchase_id]["status"] == "SHIPPED"


def test_too_many_failures_stay_retriable(sim: DepopSimulator, channel: DepopChannel) -> None:
    sim.fail_next(5, status=429)
    with pytest.raises(Retriable, match="429"):
        run_job(lambda: channel.fetch_order("1"))


def test_refund_422_ends_permanent_with_depops_messages(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("SKU-A", price="20.00")
    purchase_id = sim.purchase("SKU-A", shipping_price="5.00")
    attempts: list[int] = []

    def refund() -> None:
        attempts.append(1)
        channel.refund(
            purchase_id, items_refund_amount=Decimal("20.01"), shipping_refund_amount=Decimal("6")
        )

    with pytest.raises(Permanent) as failure:
        run_job(refund)
    assert len(attempts) == 1
    assert failure.value.code == "validation"
    assert (
        f"Refund for purchase id {purchase_id} has items_refund_amount greater than product price."
        in failure.value.reason
    )
    assert "has shipping_refund_amount greater than shipping price." in failure.value.reason
    assert sim.calls_to("POST", f"/api/v1/orders/{purchase_id}/refund/")[0].status == 422
    assert "refund_summary" not in sim.orders[purchase_id]


def test_refund_that_breaks_the_seed_rules_is_refused_before_calling(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    with pytest.raises(Permanent, match="must have an item amount or a shipping amount"):
        channel.refund("42")
    with pytest.raises(Permanent, match="must have a positive amount"):
        channel.refund("42", items_refund_amount=Decimal("0"))
    assert sim.calls == []


def test_partial_then_full_refund_is_read_back(sim: DepopSimulator, channel: DepopChannel) -> None:
    sim.add_product("SKU-A", price="20.00")
    purchase_id = sim.purchase("SKU-A", shipping_price="5.00")
    channel.refund(purchase_id, items_refund_amount=Decimal("5.00"))
    partial = channel.fetch_order(purchase_id)
    assert partial.status is ChannelOrderStatus.OPEN
    assert partial.attributes["refund_summary"]["buyer_refund_amount"] == "5.00"
    channel.refund(
        purchase_id, items_refund_amount=Decimal("15.00"), shipping_refund_amount=Decimal("5.00")
    )
    full = channel.fetch_order(purchase_id)
    assert full.status is ChannelOrderStatus.CANCELLED
    assert full.channel_status == "REFUNDED"
    summary = full.attributes["refund_summary"]
    assert summary["buyer_refund_amount"] == "25.00"
    assert summary["breakdown"]["refunded_to_buyer"]["item_refund_amount"] == "20.00"


def test_wrong_api_key_is_permanent_naming_the_credential(sim: DepopSimulator) -> None:
    with TestClient(sim.app, base_url=HOST) as http:
        channel = DepopChannel(make_settings(api_key="stale"), http=http)
        with pytest.raises(Permanent) as failure:
            channel.fetch_order("1")
    assert failure.value.code == "unauthorized"
    assert "DEPOP_API_KEY" in failure.value.reason


def test_unset_api_key_is_permanent_without_a_call(sim: DepopSimulator) -> None:
    with TestClient(sim.app, base_url=HOST) as http:
        channel = DepopChannel(make_settings(api_key=None), http=http)
        with pytest.raises(Permanent, match="DEPOP_API_KEY is not set"):
            channel.update_listing("SKU-A", 0)
    assert sim.calls == []


def test_missing_scope_is_permanent_naming_the_scope(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("SKU-A")
    sim.scopes = {"orders_read", "orders_write"}
    with pytest.raises(Permanent) as failure:
        channel.update_listing("SKU-A", 0)
    assert failure.value.code == "insufficient_scope"
    assert "products_write" in failure.value.reason


def test_listing_at_zero_is_marked_as_sold(sim: DepopSimulator, channel: DepopChannel) -> None:
    sim.add_product("SKU-A", quantity=3)
    channel.update_listing("SKU-A", 0)
    assert sim.products["SKU-A"]["status"] == "STATUS_MARKED_AS_SOLD"
    channel.update_listing("SKU-A", 0)  # Depop: a product not on sale stays and the call succeeds


def test_listing_quantity_is_patched_while_on_sale(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("SKU-A", quantity=1)
    channel.update_listing("SKU-A", 4)
    assert sim.products["SKU-A"]["quantity"] == 4
    assert [c.json for c in sim.calls_to("PATCH", "/api/v1/products/")] == [{"quantity": 4}]
    channel.update_listing("SKU-A", 4)
    assert len(sim.calls_to("PATCH", "/api/v1/products/")) == 1


def test_sold_listing_is_restocked_with_a_full_put(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("SKU-A", price="30.00", quantity=1)
    sim.purchase("SKU-A")
    assert sim.products["SKU-A"]["status"] == "STATUS_PURCHASED"
    channel.update_listing("SKU-A", 2)
    product = sim.products["SKU-A"]
    assert (product["status"], product["quantity"], product["price_amount"]) == (
        "STATUS_ONSALE",
        2,
        "30.00",
    )
    assert len(sim.calls_to("PUT", "/api/v1/products/")) == 1


def test_listing_update_of_an_unknown_sku_is_listing_not_found(channel: DepopChannel) -> None:
    for available in (0, 3):
        with pytest.raises(ListingNotFound):
            channel.update_listing("NOPE", available)


def test_deleted_listing_cannot_be_restocked(sim: DepopSimulator, channel: DepopChannel) -> None:
    sim.add_product("SKU-A")
    sim.products["SKU-A"]["status"] = "STATUS_PRODUCT_BANNED_ONSALE"
    with pytest.raises(Permanent) as failure:
        channel.update_listing("SKU-A", 1)
    assert failure.value.code == "product_unavailable"
