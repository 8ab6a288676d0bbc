"""The real AboutYouChannel driven against the simulator through httpx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.aboutyou.client import (
    ORDERS_LIMIT,
    PAGE_SIZE,
    PENDING_AFTER,
    RESULT_LIMITS,
    RETRY_AFTER,
    SUBMIT_LIMITS,
    AboutYouChannel,
    Operation,
)
from connectors.aboutyou.config import ReturnLabelPolicy
from connectors.aboutyou.simulator import AboutYouSimulator
from connectors.aboutyou.transformers import ship_body, ship_item
from connectors.base import (
    ChannelOrderStatus,
    FlowNotSupported,
    ListingNotFound,
    NeedsInput,
    Pending,
    Permanent,
    Retriable,
    SalesChannel,
)
from connectors.ratelimit import LocalRateLimiter

from .factories import (
    API_KEY,
    HOST,
    RETURN_LABEL,
    WEBHOOK_KEY,
    FakeTime,
    LimiterLog,
    channel_for,
    order_view,
    settings,
    shipment,
)

SHIP = "/api/v1/orders/ship"
CANCEL = "/api/v1/orders/cancel"
RETURN = "/api/v1/orders/return"
STOCKS = "/api/v1/products/stocks"
SHIP_RESULTS = "/api/v1/results/ship-orders"
CANCEL_RESULTS = "/api/v1/results/cancel-orders"
STOCK_RESULTS = "/api/v1/results/stocks"


@pytest.fixture
def sim() -> AboutYouSimulator:
    return AboutYouSimulator(API_KEY, WEBHOOK_KEY)


def statuses(sim: AboutYouSimulator, number: str) -> list[str]:
    return [item["status"] for item in sim.order(number)["order_items"]]


def pending(call: Any, *args: Any, **kwargs: Any) -> Pending:
    with pytest.raises(Pending) as caught:
        call(*args, **kwargs)
    return caught.value


def test_channel_satisfies_the_sales_channel_protocol(sim: AboutYouSimulator) -> None:
    channel: SalesChannel = channel_for(sim)  # mypy checks the structure, isinstance the names
    assert isinstance(channel, SalesChannel)
    assert channel.name == "aboutyou"


def test_acknowledge_and_accept_do_not_exist_at_about_you(sim: AboutYouSimulator) -> None:
    channel = channel_for(sim)
    view = order_view(sim, sim.create_order("SKU-1"))
    with pytest.raises(FlowNotSupported):
        channel.acknowledge(view)
    with pytest.raises(FlowNotSupported):
        channel.accept(view)
    assert sim.calls == []


# -- reading orders ---------------------------------------------------------------------------


def test_one_order_is_read_through_the_order_number_filter(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1", prices={"SKU-1": Decimal("29.90")})
    order = channel_for(sim).fetch_order(number)

    assert order.channel_order_id == number
    assert order.status is ChannelOrderStatus.OPEN
    assert order.lines[0].unit_price == Decimal("29.90")
    (call,) = sim.calls
    assert (call.method, call.path) == ("GET", "/api/v1/orders/")
    assert call.query["order_number"] == number
    assert call.headers["x-api-key"] == API_KEY


def test_fetch_of_an_unknown_order_is_permanent(sim: AboutYouSimulator) -> None:
    with pytest.raises(Permanent) as caught:
        channel_for(sim).fetch_order("AY-404")
    assert caught.value.code == "not_found"


def test_an_ignored_order_number_filter_is_not_taken_for_the_order() -> None:
    # The filter is third-party knowledge: a server that ignores it lists other orders.
    def handler(request: httpx.Request) -> httpx.Response:
        other = {
            "order_number": "AY-1",
            "currency_code": "EUR",
            "created_at": "2025-09-18T17:05:02Z",
            "order_items": [],
        }
        return httpx.Response(200, json={"items": [other], "pagination": {"per_page": 50}})

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url=HOST)
    channel = AboutYouChannel(settings(), http=http, limiter=LimiterLog())
    with pytest.raises(Permanent) as caught:
        channel.fetch_order("AY-2")
    assert caught.value.code == "filter_ignored"


def test_list_orders_reads_every_page_and_skips_marketplace_orders(
    sim: AboutYouSimulator,
) -> None:
    start = datetime(2025, 9, 18, tzinfo=UTC)
    tick = iter(range(10_000))
    sim.clock = lambda: start + timedelta(seconds=next(tick))
    ours = [sim.create_order(f"SKU-{n}") for n in range(PAGE_SIZE + 3)]
    sim.create_order("SKU-X", fulfillment_type="fulfillment_by_marketplace")

    listed = list(channel_for(sim).list_orders(start, start + timedelta(days=1)))

    assert [o.channel_order_id for o in listed] == ours
    pages = sim.calls_to("GET", "/api/v1/orders/")
    assert [c.query["page"] for c in pages] == ["1", "2"]
    assert pages[0].query["orders_from"] == "2025-09-18T00:00:00Z"
    assert pages[0].query["orders_to"] == "2025-09-19T00:00:00Z"


def test_list_orders_keeps_to_the_window_even_if_the_server_does_not(
    sim: AboutYouSimulator,
) -> None:
    start = datetime(2025, 9, 18, tzinfo=UTC)
    sim.clock = lambda: start
    sim.create_order("SKU-1")
    # orders_to is inclusive at the simulator, as it may be at ABOUT YOU; until is exclusive.
    assert list(channel_for(sim).list_orders(start - timedelta(days=1), start)) == []
    assert len(list(channel_for(sim).list_orders(start, start + timedelta(1)))) == 1


def test_list_orders_stops_when_the_server_ignores_the_page_parameter() -> None:
    seen: list[str] = []
    order = {
        "order_number": "AY-1",
        "currency_code": "EUR",
        "created_at": "2025-09-18T17:05:02Z",
        "fulfillment_type": "dropshipping",
        "order_items": [{"id": 1, "price_with_tax": 100}],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["page"])
        return httpx.Response(200, json={"items": [order], "pagination": {"per_page": 1}})

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url=HOST)
    channel = AboutYouChannel(settings(), http=http, limiter=LimiterLog())
    start = datetime(2025, 9, 18, tzinfo=UTC)
    listed = list(channel.list_orders(start, start + timedelta(days=1)))
    assert [o.channel_order_id for o in listed] == ["AY-1"]
    assert seen == ["1", "2"]


# -- shipping ---------------------------------------------------------------------------------


def test_push_tracking_ships_the_parcel_and_polls_until_completed(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1", "SKU-2")
    first, second = sim.item_ids(number)
    time = FakeTime()

    channel_for(sim, time=time).push_tracking(
        order_view(sim, number, [shipment([first, second])]), "shp-1"
    )

    (call,) = sim.calls_to("POST", SHIP)
    assert call.json == {
        "items": [
            {
                "order_items": [first, second],
                "carrier_key": "DHL",
                "shipment_tracking_key": "00340434161234567890",
                "return_tracking_key": RETURN_LABEL,
            }
        ]
    }
    assert call.status == 200
    assert len(sim.calls_to("GET", SHIP_RESULTS)) == 2  # pending, then completed
    assert 2.0 in time.waits
    assert sim.order(number)["status"] == "shipped"
    assert statuses(sim, number) == ["shipped", "shipped"]


def test_the_outbound_tracking_number_is_never_sent_as_the_return_key(
    sim: AboutYouSimulator,
) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    channel = channel_for(sim, return_label_policy=ReturnLabelPolicy.NEEDS_INPUT)

    with pytest.raises(NeedsInput) as caught:
        channel.push_tracking(order_view(sim, number, [shipment([item])]), "shp-1")

    assert caught.value.code == "return_tracking_key"
    assert "ABOUTYOU_RETURN_LABEL_POLICY" in caught.value.reason
    assert sim.calls_to("POST", SHIP) == []
    assert statuses(sim, number) == ["open"]


def test_a_batch_still_pending_raises_pending_and_the_resume_polls_it(
    sim: AboutYouSimulator,
) -> None:
    sim.pending_polls = 4
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    view = order_view(sim, number, [shipment([item])])

    waiting = pending(channel_for(sim, poll_attempts=3).push_tracking, view, "shp-1")

    (batch,) = sim.batches
    assert waiting.resume == {"operation": "ship", "subject": "shp-1", "batch_request_id": batch}
    assert waiting.after == PENDING_AFTER
    # Another worker, after a restart: it holds nothing but what the job stored.
    channel_for(sim).push_tracking(view, "shp-1", resume=waiting.resume)

    assert len(sim.calls_to("POST", SHIP)) == 1
    polled = [c.query["batch_request_id"] for c in sim.calls_to("GET", SHIP_RESULTS)]
    assert polled == [batch] * 5
    assert statuses(sim, number) == ["shipped"]


def test_a_batch_in_retry_is_asked_about_later_not_at_once(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    view = order_view(sim, number, [shipment([item])])
    sim.plan_next_batch("processing", "retry")
    channel = channel_for(sim, poll_attempts=5)

    waiting = pending(channel.push_tracking, view, "shp-1")

    assert waiting.after == RETRY_AFTER
    assert len(sim.calls_to("GET", SHIP_RESULTS)) == 2
    channel.push_tracking(view, "shp-1", resume=waiting.resume)
    assert statuses(sim, number) == ["shipped"]


def test_a_call_without_its_resume_gets_the_batch_in_flight_not_a_second_one(
    sim: AboutYouSimulator,
) -> None:
    sim.pending_polls = 4
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    view = order_view(sim, number, [shipment([item])])
    channel = channel_for(sim)

    pending(channel.push_tracking, view, "shp-1")
    channel.push_tracking(view, "shp-1")  # the hub lost the resume

    assert len(sim.batches) == 1
    assert {c.query["batch_request_id"] for c in sim.calls_to("GET", SHIP_RESULTS)} == set(
        sim.batches
    )
    assert statuses(sim, number) == ["shipped"]


def test_an_expired_batch_whose_items_shipped_is_not_sent_again(sim: AboutYouSimulator) -> None:
    sim.pending_polls = 4
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    view = order_view(sim, number, [shipment([item])])
    waiting = pending(channel_for(sim).push_tracking, view, "shp-1")
    sim.expire_batch(waiting.resume["batch_request_id"])

    channel_for(sim).push_tracking(view, "shp-1", resume=waiting.resume)

    assert len(sim.calls_to("POST", SHIP)) == 1
    assert statuses(sim, number) == ["shipped"]


def test_an_expired_batch_whose_items_did_not_ship_is_sent_once_more(
    sim: AboutYouSimulator,
) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    view = order_view(sim, number, [shipment([item])])
    sim.plan_next_batch("pending", "pending", "pending", final="failed")
    waiting = pending(channel_for(sim).push_tracking, view, "shp-1")
    sim.expire_batch(waiting.resume["batch_request_id"])

    channel_for(sim).push_tracking(view, "shp-1", resume=waiting.resume)

    assert len(sim.calls_to("POST", SHIP)) == 2
    assert statuses(sim, number) == ["shipped"]


def test_a_failed_batch_is_permanent_with_about_yous_message(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    sim.plan_next_batch(final="failed")

    with pytest.raises(Permanent) as caught:
        channel_for(sim).push_tracking(order_view(sim, number, [shipment([item])]), "shp-1")

    assert caught.value.code == "ship_refused"
    assert "The batch could not be processed." in caught.value.reason
    assert statuses(sim, number) == ["open"]


def test_an_item_about_you_refuses_to_ship_is_permanent_with_its_message(
    sim: AboutYouSimulator,
) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    view = order_view(sim, number, [shipment([item], carrier="Pigeon Post")])
    channel = channel_for(sim, carrier_map={"pigeon post": "PIGEON"})

    with pytest.raises(Permanent) as caught:
        channel.push_tracking(view, "shp-1")

    assert "Carrier key 'PIGEON' is not active." in caught.value.reason
    assert statuses(sim, number) == ["open"]


def test_an_item_cancelled_while_the_batch_waited_fails_with_about_yous_message(
    sim: AboutYouSimulator,
) -> None:
    sim.pending_polls = 4
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    view = order_view(sim, number, [shipment([item])])
    waiting = pending(channel_for(sim).push_tracking, view, "shp-1")
    sim.cancel_items(number, [item])

    with pytest.raises(Permanent) as caught:
        channel_for(sim).push_tracking(view, "shp-1", resume=waiting.resume)

    assert f"Order item {item} is cancelled and cannot be shipped." in caught.value.reason


def test_items_cancelled_at_about_you_are_left_out_and_named(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1", "SKU-2")
    first, second = sim.item_ids(number)
    view = order_view(sim, number, [shipment([first, second])])
    sim.cancel_items(number, [second])

    with pytest.raises(Permanent) as caught:
        channel_for(sim).push_tracking(view, "shp-1")

    assert [c.json["items"][0]["order_items"] for c in sim.calls_to("POST", SHIP)] == [[first]]
    assert caught.value.code == "shipped_cancelled_items"
    assert str(second) in caught.value.reason
    assert statuses(sim, number) == ["shipped", "cancelled"]
    assert sim.order(number)["status"] == "mixed"


def test_pushing_a_reported_parcel_again_sends_nothing(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    view = order_view(sim, number, [shipment([item])])
    channel_for(sim).push_tracking(view, "shp-1")

    channel_for(sim).push_tracking(view, "shp-1")

    assert len(sim.calls_to("POST", SHIP)) == 1


def test_a_ship_whose_answer_was_lost_is_not_sent_twice(sim: AboutYouSimulator) -> None:
    sim.pending_polls = 2
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    view = order_view(sim, number, [shipment([item])])
    channel = channel_for(sim)
    parcel = ship_item(
        [item], carrier_key="DHL", tracking_key="00340434161234567890", return_key=RETURN_LABEL
    )
    sim.timeout_next(1, after_processing=True)
    with pytest.raises(Retriable):
        channel.client.submit(Operation.SHIP, ship_body([parcel]))

    channel.push_tracking(view, "shp-1")

    assert len(sim.calls_to("POST", SHIP)) == 2
    assert len(sim.batches) == 1  # the same payload in flight: ABOUT YOU's id, not a new batch
    assert statuses(sim, number) == ["shipped"]


def test_carrier_names_are_matched_case_insensitively(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    channel_for(sim).push_tracking(
        order_view(sim, number, [shipment([item], carrier=" Hermes ")]), "shp-1"
    )
    assert sim.calls_to("POST", SHIP)[0].json["items"][0]["carrier_key"] == "HERMES"


def test_unmapped_carrier_is_permanent_and_nothing_is_sent(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    view = order_view(sim, number, [shipment([item], carrier="Pigeon Post")])
    with pytest.raises(Permanent) as caught:
        channel_for(sim).push_tracking(view, "shp-1")
    assert "Pigeon Post" in caught.value.reason
    assert caught.value.code == "unmapped_carrier"
    assert sim.calls_to("POST", SHIP) == []


@pytest.mark.parametrize(
    ("tracking", "code"), [((), "no_tracking_number"), (("T" * 256,), "bad_tracking_number")]
)
def test_a_tracking_number_about_you_cannot_take_is_permanent_and_not_sent(
    sim: AboutYouSimulator, tracking: tuple[str, ...], code: str
) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    view = order_view(sim, number, [shipment([item], tracking=tracking)])
    with pytest.raises(Permanent) as caught:
        channel_for(sim).push_tracking(view, "shp-1")
    assert caught.value.code == code
    assert sim.calls_to("POST", SHIP) == []


def test_a_parcel_naming_an_item_of_another_order_is_permanent(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1")
    (other,) = sim.item_ids(sim.create_order("SKU-2"))
    with pytest.raises(Permanent) as caught:
        channel_for(sim).push_tracking(order_view(sim, number, [shipment([other])]), "shp-1")
    assert caught.value.code == "unknown_item"


def test_unknown_shipment_id_is_permanent(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1")
    with pytest.raises(Permanent):
        channel_for(sim).push_tracking(order_view(sim, number), "shp-404")


def test_a_resume_of_another_call_is_refused(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    view = order_view(sim, number, [shipment([item])])
    resume = {"operation": "cancel", "subject": number, "batch_request_id": "b"}
    with pytest.raises(Permanent) as caught:
        channel_for(sim).push_tracking(view, "shp-1", resume=resume)
    assert caught.value.code == "bad_resume"
    assert sim.calls == []


# -- cancelling and rejecting -----------------------------------------------------------------


def test_reject_cancels_every_unshipped_item_through_a_polled_batch(
    sim: AboutYouSimulator,
) -> None:
    number = sim.create_order("SKU-1", "SKU-2")
    first, second = sim.item_ids(number)

    channel_for(sim).reject(order_view(sim, number), "out of stock")

    assert sim.calls_to("POST", CANCEL)[0].json == {"items": [{"id": first}, {"id": second}]}
    assert len(sim.calls_to("GET", CANCEL_RESULTS)) == 2
    assert sim.order(number)["status"] == "cancelled"


def test_cancel_leaves_items_the_hub_shipped_out(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1", "SKU-2")
    first, second = sim.item_ids(number)
    channel = channel_for(sim)
    channel.push_tracking(order_view(sim, number, [shipment([first])]), "shp-1")

    channel.cancel(order_view(sim, number, shipped=[first]), "seller cancels the rest")

    assert sim.calls_to("POST", CANCEL)[0].json == {"items": [{"id": second}]}
    assert statuses(sim, number) == ["shipped", "cancelled"]


def test_items_the_customer_already_cancelled_are_not_sent_again(
    sim: AboutYouSimulator,
) -> None:
    number = sim.create_order("SKU-1", "SKU-2")
    first, second = sim.item_ids(number)
    view = order_view(sim, number)
    sim.cancel_items(number, [first])

    channel_for(sim).cancel(view, "out of stock")

    assert sim.calls_to("POST", CANCEL)[0].json == {"items": [{"id": second}]}
    assert statuses(sim, number) == ["cancelled", "cancelled"]


def test_cancelling_what_about_you_shows_shipped_is_permanent(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    channel = channel_for(sim)
    channel.push_tracking(order_view(sim, number, [shipment([item])]), "shp-1")

    with pytest.raises(Permanent) as caught:
        channel.reject(order_view(sim, number), "too late")

    assert caught.value.code == "cancel_refused"
    assert f"{item} (shipped)" in caught.value.reason
    assert sim.calls_to("POST", CANCEL) == []


def test_a_cancel_still_pending_is_resumed_without_cancelling_twice(
    sim: AboutYouSimulator,
) -> None:
    sim.pending_polls = 4
    number = sim.create_order("SKU-1")
    view = order_view(sim, number)

    waiting = pending(channel_for(sim).cancel, view, "seller cancels")
    assert waiting.resume["operation"] == "cancel"
    assert waiting.resume["subject"] == number
    channel_for(sim).cancel(view, "seller cancels", resume=waiting.resume)

    assert len(sim.calls_to("POST", CANCEL)) == 1
    assert statuses(sim, number) == ["cancelled"]


def test_an_expired_cancel_batch_is_judged_by_the_items(sim: AboutYouSimulator) -> None:
    sim.pending_polls = 4
    number = sim.create_order("SKU-1")
    view = order_view(sim, number)
    waiting = pending(channel_for(sim).cancel, view, "seller cancels")
    sim.expire_batch(waiting.resume["batch_request_id"])

    channel_for(sim).cancel(view, "seller cancels", resume=waiting.resume)

    assert len(sim.calls_to("POST", CANCEL)) == 1
    assert statuses(sim, number) == ["cancelled"]


def test_a_mixed_order_reads_as_shipped_once_nothing_is_open(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1", "SKU-2")
    first, _ = sim.item_ids(number)
    channel = channel_for(sim)
    channel.push_tracking(order_view(sim, number, [shipment([first])]), "shp-1")
    assert channel.fetch_order(number).status is ChannelOrderStatus.OPEN
    channel.cancel(order_view(sim, number, shipped=[first]), "rest unavailable")

    order = channel.fetch_order(number)

    assert order.channel_status == "mixed"
    assert order.status is ChannelOrderStatus.SHIPPED


# -- returns ----------------------------------------------------------------------------------


def test_mark_returned_returns_items_under_their_return_key(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1", "SKU-2")
    first, second = sim.item_ids(number)
    channel = channel_for(sim)
    channel.push_tracking(order_view(sim, number, [shipment([first, second])]), "shp-1")

    channel.mark_returned(order_view(sim, number), [str(first)])

    assert sim.calls_to("POST", RETURN)[0].json == {
        "items": [{"order_items": [first], "return_tracking_key": RETURN_LABEL}]
    }
    assert statuses(sim, number) == ["returned", "shipped"]
    channel.mark_returned(order_view(sim, number), [str(first)])
    assert len(sim.calls_to("POST", RETURN)) == 1


def test_only_shipped_items_can_be_returned(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    with pytest.raises(Permanent) as caught:
        channel_for(sim).mark_returned(order_view(sim, number), [str(item)])
    assert caught.value.code == "not_returnable"
    assert sim.calls_to("POST", RETURN) == []


# -- stock ------------------------------------------------------------------------------------


def test_update_listing_sets_the_stock_with_its_time_and_polls_the_result(
    sim: AboutYouSimulator,
) -> None:
    sim.add_product("SKU-9", 5)
    now = datetime(2025, 9, 18, 12, 0, tzinfo=UTC)

    channel_for(sim, clock=lambda: now).update_listing("SKU-9", 0)

    assert sim.stocks["SKU-9"] == 0
    assert sim.calls_to("PUT", STOCKS)[0].json == {
        "items": [{"sku": "SKU-9", "quantity": 0, "valid_at": "2025-09-18T12:00:00Z"}]
    }
    assert len(sim.calls_to("GET", STOCK_RESULTS)) == 2


def test_quantities_are_kept_within_what_about_you_takes(sim: AboutYouSimulator) -> None:
    sim.add_product("SKU-9")
    channel = channel_for(sim)
    channel.update_listing("SKU-9", -3)
    channel.update_listing("SKU-9", 5_000_000)
    assert [c.json["items"][0]["quantity"] for c in sim.calls_to("PUT", STOCKS)] == [0, 1_000_000]


def test_stock_for_an_unknown_sku_is_listing_not_found_with_about_yous_message(
    sim: AboutYouSimulator,
) -> None:
    with pytest.raises(ListingNotFound) as caught:
        channel_for(sim).update_listing("NOPE", 3)
    assert "Product variant with SKU NOPE not found." in caught.value.reason


def test_a_failed_stock_batch_is_permanent_not_listing_not_found(sim: AboutYouSimulator) -> None:
    sim.add_product("SKU-9")
    sim.plan_next_batch(final="failed")
    with pytest.raises(Permanent) as caught:
        channel_for(sim).update_listing("SKU-9", 3)
    assert not isinstance(caught.value, ListingNotFound)
    assert "The batch could not be processed." in caught.value.reason


def test_a_pending_stock_update_is_resumed_not_sent_again(sim: AboutYouSimulator) -> None:
    sim.add_product("SKU-9")
    sim.pending_polls = 4
    waiting = pending(channel_for(sim).update_listing, "SKU-9", 7)
    assert waiting.resume["quantity"] == "7"

    channel_for(sim).update_listing("SKU-9", 7, resume=waiting.resume)

    assert len(sim.calls_to("PUT", STOCKS)) == 1
    assert sim.stocks["SKU-9"] == 7


def test_a_resumed_stock_update_whose_figure_changed_sends_the_new_one(
    sim: AboutYouSimulator,
) -> None:
    sim.add_product("SKU-9")
    sim.pending_polls = 3
    waiting = pending(channel_for(sim).update_listing, "SKU-9", 7)
    sim.pending_polls = 1

    channel_for(sim).update_listing("SKU-9", 4, resume=waiting.resume)

    assert [c.json["items"][0]["quantity"] for c in sim.calls_to("PUT", STOCKS)] == [7, 4]
    assert sim.stocks["SKU-9"] == 4


def test_an_expired_stock_batch_is_sent_again_with_its_original_time(
    sim: AboutYouSimulator,
) -> None:
    sim.add_product("SKU-9")
    sim.plan_next_batch("pending", "pending", "pending", final="failed")
    waiting = pending(channel_for(sim).update_listing, "SKU-9", 7)
    sim.expire_batch(waiting.resume["batch_request_id"])

    channel_for(sim).update_listing("SKU-9", 7, resume=waiting.resume)

    first, second = sim.calls_to("PUT", STOCKS)
    assert second.json == first.json
    assert sim.stocks["SKU-9"] == 7


def test_an_older_stock_figure_does_not_overwrite_a_newer_one(sim: AboutYouSimulator) -> None:
    sim.add_product("SKU-9")
    late = channel_for(sim, clock=lambda: datetime(2025, 9, 18, 12, 1, tzinfo=UTC))
    early = channel_for(sim, clock=lambda: datetime(2025, 9, 18, 12, 0, tzinfo=UTC))
    late.update_listing("SKU-9", 2)
    early.update_listing("SKU-9", 9)
    assert sim.stocks["SKU-9"] == 2


# -- rate limits and failures -----------------------------------------------------------------


def test_the_limiter_is_asked_before_each_call_with_the_endpoints_limit(
    sim: AboutYouSimulator,
) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    limiter = LimiterLog()
    channel = channel_for(sim, limiter=limiter)

    channel.push_tracking(order_view(sim, number, [shipment([item])]), "shp-1")

    assert limiter.asked == [
        ORDERS_LIMIT,
        SUBMIT_LIMITS[Operation.SHIP],
        RESULT_LIMITS[Operation.SHIP],
        RESULT_LIMITS[Operation.SHIP],
    ]
    assert len(limiter.asked) == len(sim.calls)


def test_declared_limits_are_about_yous_per_endpoint_and_minute() -> None:
    per_minute = {
        limit.key: limit.requests
        for limit in (ORDERS_LIMIT, *SUBMIT_LIMITS.values(), *RESULT_LIMITS.values())
        if limit.per_seconds == 60.0
    }
    assert per_minute == {
        "aboutyou:GET /api/v1/orders/": 100,
        "aboutyou:POST /api/v1/orders/ship": 50,
        "aboutyou:POST /api/v1/orders/cancel": 50,
        "aboutyou:POST /api/v1/orders/return": 50,
        "aboutyou:PUT /api/v1/products/stocks": 1000,
        "aboutyou:GET /api/v1/results/ship-orders": 200,
        "aboutyou:GET /api/v1/results/cancel-orders": 200,
        "aboutyou:GET /api/v1/results/return-orders": 200,
        "aboutyou:GET /api/v1/results/stocks": 200,
    }


def rate_limited(time: FakeTime) -> AboutYouSimulator:
    epoch = datetime(2025, 9, 18, tzinfo=UTC)
    return AboutYouSimulator(
        API_KEY,
        WEBHOOK_KEY,
        rate_limits=True,
        clock=lambda: epoch + timedelta(seconds=time.now),
    )


def test_a_429_is_retriable_after_about_yous_retry_after() -> None:
    time = FakeTime()
    sim = rate_limited(time)
    number = sim.create_order("SKU-1")
    channel = channel_for(sim, time=time, limiter=LimiterLog())
    for _ in range(100):
        channel.fetch_order(number)
        time.now += 0.5

    with pytest.raises(Retriable) as caught:
        channel.fetch_order(number)

    assert sim.calls[-1].status == 429
    assert caught.value.after == 10.0


def test_the_declared_limits_keep_the_client_clear_of_429() -> None:
    time = FakeTime()
    sim = rate_limited(time)
    number = sim.create_order("SKU-1")
    channel = channel_for(sim, time=time)

    for _ in range(150):
        channel.fetch_order(number)

    assert {call.status for call in sim.calls} == {200}
    assert time.now - 1000.0 > 89  # 150 calls at 100 a minute


def test_a_call_further_than_the_wait_allowed_is_retriable_without_calling(
    sim: AboutYouSimulator,
) -> None:
    frozen = LocalRateLimiter(clock=lambda: 0.0, sleep=lambda seconds: None)
    client = channel_for(sim, limiter=frozen).client
    body = ship_body([ship_item([1], carrier_key="DHL", tracking_key="T", return_key="R")])

    with pytest.raises(Retriable) as caught:
        for _ in range(20):
            client.submit(Operation.SHIP, body)

    # 50 a minute is one every 1.2 s: the tenth slot is 10.8 s away, past the 10 s allowed.
    assert len(sim.calls_to("POST", SHIP)) == 9
    assert caught.value.after == pytest.approx(10.8)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retriable(sim: AboutYouSimulator, status: int) -> None:
    number = sim.create_order("SKU-1")
    sim.fail_next(1, status=status)
    with pytest.raises(Retriable):
        channel_for(sim).fetch_order(number)


def test_a_timeout_is_retriable(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1")
    sim.timeout_next(1, after_processing=False)
    with pytest.raises(Retriable):
        channel_for(sim).fetch_order(number)


def test_wrong_api_key_is_permanent_and_names_the_setting(sim: AboutYouSimulator) -> None:
    with pytest.raises(Permanent) as caught:
        channel_for(sim, api_key="wrong").fetch_order("AY-1000")
    assert "ABOUTYOU_API_KEY" in caught.value.reason
    assert "Invalid or missing API key." in caught.value.reason
    assert caught.value.code == "unauthorized"


def test_unset_api_key_is_permanent_without_calling(sim: AboutYouSimulator) -> None:
    channel = channel_for(sim, api_key="")
    with pytest.raises(Permanent) as caught:
        channel.fetch_order("AY-1000")
    assert "ABOUTYOU_API_KEY" in caught.value.reason
    assert sim.calls == []


def test_a_refused_body_is_permanent_with_about_yous_validation_detail(
    sim: AboutYouSimulator,
) -> None:
    client = channel_for(sim).client
    body = {"items": [{"order_items": [1], "carrier_key": "DHL", "return_tracking_key": "R"}]}
    with pytest.raises(Permanent) as caught:
        client.submit(Operation.SHIP, body)
    assert caught.value.code == "invalid_request"
    assert "'shipment_tracking_key' is a required property" in caught.value.reason


def test_a_result_answer_that_does_not_fit_is_permanent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "completed"})

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url=HOST)
    channel = AboutYouChannel(settings(), http=http, limiter=LimiterLog())
    with pytest.raises(Permanent) as caught:
        channel.client.result(Operation.STOCKS, "b-1")
    assert caught.value.code == "bad_response"
    assert "batchRequestId" in caught.value.reason
