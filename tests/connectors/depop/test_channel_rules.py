"""Depop's rules the channel follows: refunds on cancellation, tracking per parcel, rate limits."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from fastapi.testclient import TestClient

from connectors.base import OrderView, Permanent, Retriable
from connectors.depop import DepopChannel
from connectors.depop.client import LIMIT, LISTINGS_LIMIT, MAX_WAIT
from connectors.depop.simulator import HOST, DepopError, DepopSimulator
from connectors.ratelimit import RateLimit

from .conftest import make_settings
from .test_client import order_view, run_job, shipment


def refunded_to_buyer(sim: DepopSimulator, purchase_id: str) -> dict[str, str]:
    return dict(sim.orders[purchase_id]["refund_summary"]["breakdown"]["refunded_to_buyer"])


def line_ids(sim: DepopSimulator, purchase_id: str) -> list[str]:
    return [str(item["purchase_item_id"]) for item in sim.orders[purchase_id]["line_items"]]


def with_shipped(view: OrderView, *channel_line_ids: str) -> OrderView:
    lines = tuple(
        dataclasses.replace(line, shipped_quantity=line.quantity)
        if line.channel_line_id in channel_line_ids
        else line
        for line in view.lines
    )
    return dataclasses.replace(view, lines=lines)


def before_refund(channel: DepopChannel, action: Callable[[], None]) -> None:
    """Run `action` just before the channel's refund call (to inject a fault into it alone)."""
    original = channel.client.refund

    def refund(purchase_id: str, **amounts: Decimal | str | None) -> None:
        action()
        original(purchase_id, **amounts)  # type: ignore[arg-type]

    channel.client.refund = refund  # type: ignore[method-assign]


# -- cancellation ------------------------------------------------------------------------------


def test_cancel_before_shipping_refunds_items_and_shipping_in_full(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("A", price="20.00")
    sim.add_product("B", price="10.00")
    purchase_id = sim.purchase("A", "B", shipping_price="4.50")
    channel.cancel(order_view(channel, purchase_id), "we cannot ship this")
    assert sim.orders[purchase_id]["status"] == "REFUNDED"
    refund = refunded_to_buyer(sim, purchase_id)
    assert (refund["item_refund_amount"], refund["shipping_refund_amount"]) == ("30.00", "4.50")


def test_cancel_of_the_open_units_leaves_depop_shipping_unrefunded(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("A", price="20.00")
    sim.add_product("B", price="10.00")
    purchase_id = sim.purchase(
        "A", "B", depop_shipping={"shipping_provider_id": "MY_HERMES"}, parcel_per_item=True
    )
    first, _ = line_ids(sim, purchase_id)
    channel.cancel(with_shipped(order_view(channel, purchase_id), first), "second item lost")
    # Only the open unit: Depop refunds its own shipping in a full refund alone.
    refund = refunded_to_buyer(sim, purchase_id)
    assert (refund["item_refund_amount"], refund["shipping_refund_amount"]) == ("10.00", "0.00")
    assert sim.orders[purchase_id]["status"] == "SHIPPING_PENDING"


def test_cancel_retried_after_its_refund_took_effect_refunds_nothing_twice(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("A", price="20.00")
    purchase_id = sim.purchase("A")
    view = order_view(channel, purchase_id)
    before_refund(channel, lambda: sim.timeout_next(1, after_processing=True))
    with pytest.raises(Retriable):
        channel.cancel(view, "sorry")
    run_job(lambda: channel.cancel(view, "sorry"))
    assert len(sim.calls_to("POST", f"/api/v1/orders/{purchase_id}/refund/")) == 1
    assert refunded_to_buyer(sim, purchase_id)["item_refund_amount"] == "20.00"


def test_a_refused_cancellation_is_permanent_with_depops_message(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("A", price="20.00")
    purchase_id = sim.purchase("A")
    message = f"Refund for purchase id {purchase_id} must have a positive amount to refund."
    before_refund(
        channel,
        lambda: sim.fail_next(1, 422, DepopError(422, [("validation", message)]).body()),
    )
    with pytest.raises(Permanent) as refusal:
        channel.cancel(order_view(channel, purchase_id), "sorry")
    assert message in refusal.value.reason
    assert refusal.value.code == "validation"


# -- tracking per parcel -------------------------------------------------------------------------


def test_a_retried_mark_as_shipped_of_one_parcel_of_two_finishes(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("A")
    sim.add_product("B")
    purchase_id = sim.purchase("A", "B", parcel_per_item=True)
    first, _ = line_ids(sim, purchase_id)
    view = order_view(channel, purchase_id, shipment("S1", [first], ("RM1GB",)))
    sim.timeout_next(1, after_processing=True)  # Depop took the tracking; the answer was lost
    with pytest.raises(Retriable):
        channel.push_tracking(view, "S1")
    # The retry meets Depop's "already marked" 400 while the other parcel keeps the order open.
    run_job(lambda: channel.push_tracking(view, "S1"))
    assert sim.orders[purchase_id]["status"] == "SHIPPING_PENDING"
    assert len(sim.shipped_parcels[purchase_id]) == 1


def test_a_400_for_a_parcel_depop_has_not_marked_stays_permanent(
    sim: DepopSimulator, channel: DepopChannel
) -> None:
    sim.add_product("A")
    sim.add_product("B")
    purchase_id = sim.purchase("A", "B", parcel_per_item=True)
    first, _ = line_ids(sim, purchase_id)
    view = order_view(channel, purchase_id, shipment("S1", [first], ("BAD",)))
    message = "Tracking number BAD is not valid for Royal Mail"
    sim.fail_next(1, 400, DepopError(400, [("bad-request", message)]).body())
    with pytest.raises(Permanent, match=message):
        channel.push_tracking(view, "S1")


# -- rate limits -------------------------------------------------------------------------------


class RecordingLimiter:
    def __init__(self, refuse: bool = False) -> None:
        self.asked: list[tuple[str, float]] = []
        self.refuse = refuse

    def acquire(self, limit: RateLimit, *, max_wait: float) -> None:
        self.asked.append((limit.key, max_wait))
        if self.refuse:
            raise Retriable(f"{limit.key}: over the limit", after=0.4)


def test_depops_documented_limits_are_declared() -> None:
    assert (LIMIT.requests, LIMIT.per_seconds) == (100, 1.0)
    assert (LISTINGS_LIMIT.requests, LISTINGS_LIMIT.per_seconds) == (20, 1.0)
    assert MAX_WAIT < 30  # well under a job's lease


def test_every_call_asks_the_limiter_first_listings_in_their_own_bucket(
    sim: DepopSimulator,
) -> None:
    limiter = RecordingLimiter()
    sim.add_product("A")
    with TestClient(sim.app, base_url=HOST) as http:
        channel = DepopChannel(make_settings(), http=http, limiter=limiter)
        channel.update_listing("A", 0)  # mark-as-sold
        channel.update_listing("A", 2)  # GET, then the restocking PUT
    assert [key for key, _ in limiter.asked] == ["depop", "depop", "depop:listings"]
    assert len(sim.calls) == 3


def test_a_limiter_that_refuses_makes_the_call_retriable_without_sending(
    sim: DepopSimulator,
) -> None:
    sim.add_product("A")
    with TestClient(sim.app, base_url=HOST) as http:
        channel = DepopChannel(make_settings(), http=http, limiter=RecordingLimiter(refuse=True))
        with pytest.raises(Retriable) as refused:
            channel.update_listing("A", 0)
    assert refused.value.after == 0.4
    assert sim.calls == []


def test_a_429_is_retriable_after_its_retry_after_and_a_timeout_is_retriable() -> None:
    def depop(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("mark-as-sold/"):
            body = DepopError(429, [("too_many_requests", "Rate limit exceeded.")]).body()
            return httpx.Response(429, json=body, headers={"Retry-After": "7"})
        raise httpx.ReadTimeout("slow", request=request)

    http = httpx.Client(transport=httpx.MockTransport(depop), base_url=HOST)
    channel = DepopChannel(make_settings(), http=http)
    with pytest.raises(Retriable, match="429") as limited:
        channel.update_listing("A", 0)
    assert limited.value.after == 7.0
    with pytest.raises(Retriable, match="timed out"):
        channel.fetch_order("1")
