"""The real AboutYouChannel driven against the simulator through httpx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from connectors.aboutyou.client import PAGE_SIZE
from connectors.aboutyou.simulator import AboutYouSimulator
from connectors.aboutyou.transformers import ship_body
from connectors.base import (
    ChannelOrderStatus,
    FlowNotSupported,
    Permanent,
    Retriable,
    SalesChannel,
)

from .factories import API_KEY, WEBHOOK_KEY, SleepLog, channel_for, order_view, shipment


@pytest.fixture
def sim() -> AboutYouSimulator:
    return AboutYouSimulator(API_KEY, WEBHOOK_KEY)


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


def test_fetch_order_returns_the_canonical_order(sim: AboutYouSimulator) -> None:
    order_id = sim.create_order("SKU-1", prices={"SKU-1": Decimal("29.90")})
    order = channel_for(sim).fetch_order(str(order_id))
    assert order.channel_order_id == str(order_id)
    assert order.status is ChannelOrderStatus.OPEN
    assert order.lines[0].unit_price == Decimal("29.90")
    assert order.attributes["order_number"] == f"AY-{order_id}"
    assert sim.calls_to("GET", "/api/v1/orders/")[0].headers["x-api-key"] == API_KEY


def test_fetch_order_by_number_when_the_order_had_no_id(sim: AboutYouSimulator) -> None:
    order_id = sim.create_order("SKU-1")
    order = channel_for(sim).fetch_order(f"AY-{order_id}")
    assert order.attributes["order_number"] == f"AY-{order_id}"
    assert sim.calls[-1].query["order_number"] == f"AY-{order_id}"


def test_fetch_of_an_unknown_order_is_permanent(sim: AboutYouSimulator) -> None:
    with pytest.raises(Permanent) as caught:
        channel_for(sim).fetch_order("999999")
    assert caught.value.code == "not_found"


def test_list_orders_reads_every_page_and_skips_marketplace_orders(
    sim: AboutYouSimulator,
) -> None:
    start = datetime(2025, 9, 18, tzinfo=UTC)
    tick = iter(range(10_000))
    sim.clock = lambda: start + timedelta(seconds=next(tick))
    ours = [sim.create_order(f"SKU-{n}") for n in range(PAGE_SIZE + 3)]
    sim.create_order("SKU-X", fulfillment_type="fulfillment_by_marketplace")

    listed = list(channel_for(sim).list_orders(start, start + timedelta(days=1)))

    assert [o.channel_order_id for o in listed] == [str(i) for i in ours]
    pages = sim.calls_to("GET", "/api/v1/orders/")
    assert [c.query["page"] for c in pages] == ["1", "2"]
    assert pages[0].query["updated_from"] == "2025-09-18T00:00:00Z"


def test_list_orders_honours_the_window(sim: AboutYouSimulator) -> None:
    start = datetime(2025, 9, 18, tzinfo=UTC)
    sim.clock = lambda: start
    sim.create_order("SKU-1")
    assert (
        list(channel_for(sim).list_orders(start + timedelta(seconds=1), start + timedelta(1))) == []
    )


def test_push_tracking_ships_the_parcel_and_waits_for_the_batch(sim: AboutYouSimulator) -> None:
    order_id = sim.create_order("SKU-1", "SKU-2")
    first, second = sim.item_ids(order_id)
    sleep = SleepLog()
    channel = channel_for(sim, sleep=sleep)

    channel.push_tracking(order_view(sim, order_id, [shipment([first, second])]), "shp-1")

    (call,) = sim.calls_to("POST", "/api/v1/orders/ship")
    assert call.json == {
        "items": [
            {
                "order_items": [first, second],
                "carrier_key": "DHL",
                "shipment_tracking_key": "00340434161234567890",
                "return_tracking_key": "00340434161234567890",
            }
        ]
    }
    assert len(sim.calls_to("GET", "/api/v1/results/ship-orders")) == 2  # pending, then done
    assert sleep.waits == [2.0]
    order = sim.order(order_id)
    assert order["status"] == "shipped"
    assert {i["status"] for i in order["order_items"]} == {"shipped"}


def test_carrier_names_are_matched_case_insensitively(sim: AboutYouSimulator) -> None:
    order_id = sim.create_order("SKU-1")
    (item,) = sim.item_ids(order_id)
    view = order_view(sim, order_id, [shipment([item], carrier=" Hermes ")])
    channel_for(sim).push_tracking(view, "shp-1")
    assert (
        sim.calls_to("POST", "/api/v1/orders/ship")[0].json["items"][0]["carrier_key"] == "HERMES"
    )


def test_unmapped_carrier_is_permanent_and_nothing_is_sent(sim: AboutYouSimulator) -> None:
    order_id = sim.create_order("SKU-1")
    (item,) = sim.item_ids(order_id)
    view = order_view(sim, order_id, [shipment([item], carrier="Pigeon Post")])
    with pytest.raises(Permanent) as caught:
        channel_for(sim).push_tracking(view, "shp-1")
    assert "Pigeon Post" in caught.value.reason
    assert caught.value.code == "unmapped_carrier"
    assert sim.calls_to("POST", "/api/v1/orders/ship") == []


def test_configured_carrier_map_replaces_the_default(sim: AboutYouSimulator) -> None:
    order_id = sim.create_order("SKU-1")
    (item,) = sim.item_ids(order_id)
    channel = channel_for(sim, carrier_map={"DHL Parcel": "DHL_EXPRESS"})
    channel.push_tracking(
        order_view(sim, order_id, [shipment([item], carrier="dhl parcel")]), "shp-1"
    )
    assert sim.calls_to("POST", "/api/v1/orders/ship")[0].json["items"][0]["carrier_key"] == (
        "DHL_EXPRESS"
    )


def test_still_pending_batch_is_retriable_and_the_retry_polls_not_ships(
    sim: AboutYouSimulator,
) -> None:
    sim.pending_polls = 4
    order_id = sim.create_order("SKU-1")
    (item,) = sim.item_ids(order_id)
    view = order_view(sim, order_id, [shipment([item])])
    channel = channel_for(sim, poll_attempts=3)

    with pytest.raises(Retriable):
        channel.push_tracking(view, "shp-1")
    channel.push_tracking(view, "shp-1")

    assert len(sim.calls_to("POST", "/api/v1/orders/ship")) == 1
    assert len(sim.calls_to("GET", "/api/v1/results/ship-orders")) == 5


def test_a_new_process_does_not_ship_items_about_you_shows_shipped(
    sim: AboutYouSimulator,
) -> None:
    order_id = sim.create_order("SKU-1")
    (item,) = sim.item_ids(order_id)
    view = order_view(sim, order_id, [shipment([item])])
    channel_for(sim).push_tracking(view, "shp-1")

    channel_for(sim).push_tracking(view, "shp-1")

    assert len(sim.calls_to("POST", "/api/v1/orders/ship")) == 1


def test_ship_whose_answer_was_lost_is_not_sent_again(sim: AboutYouSimulator) -> None:
    order_id = sim.create_order("SKU-1")
    (item,) = sim.item_ids(order_id)
    view = order_view(sim, order_id, [shipment([item])])
    channel = channel_for(sim)
    sim.timeout_next(1, after_processing=True)
    body = ship_body([item], carrier_key="DHL", tracking_key="T-1", return_key="T-1")
    with pytest.raises(Retriable):
        channel.client.ship(body)

    channel.push_tracking(view, "shp-1")

    assert len(sim.calls_to("POST", "/api/v1/orders/ship")) == 1
    assert sim.order(order_id)["order_items"][0]["shipment_tracking_key"] == "T-1"


def test_item_cancelled_at_about_you_fails_the_shipment_with_its_message(
    sim: AboutYouSimulator,
) -> None:
    order_id = sim.create_order("SKU-1", "SKU-2")
    first, second = sim.item_ids(order_id)
    view = order_view(sim, order_id, [shipment([first, second])])
    sim.cancel_items(order_id, [second])

    with pytest.raises(Permanent) as caught:
        channel_for(sim).push_tracking(view, "shp-1")

    assert f"Order item {second} is cancelled." in caught.value.reason
    assert caught.value.code == "not_shippable"
    assert sim.order(order_id)["order_items"][0]["status"] == "shipped"


def test_tracking_key_over_255_characters_is_refused_with_about_yous_message(
    sim: AboutYouSimulator,
) -> None:
    order_id = sim.create_order("SKU-1")
    (item,) = sim.item_ids(order_id)
    view = order_view(sim, order_id, [shipment([item], tracking=("T" * 256,))])
    with pytest.raises(Permanent) as caught:
        channel_for(sim).push_tracking(view, "shp-1")
    assert caught.value.code == "invalid_request"
    assert "items.0.shipment_tracking_key" in caught.value.reason
    assert sim.order(order_id)["order_items"][0]["status"] == "open"


def test_shipment_without_tracking_number_is_permanent(sim: AboutYouSimulator) -> None:
    order_id = sim.create_order("SKU-1")
    (item,) = sim.item_ids(order_id)
    view = order_view(sim, order_id, [shipment([item], tracking=())])
    with pytest.raises(Permanent):
        channel_for(sim).push_tracking(view, "shp-1")
    assert sim.calls_to("POST", "/api/v1/orders/ship") == []


def test_unknown_shipment_id_is_permanent(sim: AboutYouSimulator) -> None:
    order_id = sim.create_order("SKU-1")
    with pytest.raises(Permanent):
        channel_for(sim).push_tracking(order_view(sim, order_id), "shp-404")


def test_reject_cancels_every_unshipped_item(sim: AboutYouSimulator) -> None:
    order_id = sim.create_order("SKU-1", "SKU-2")
    first, second = sim.item_ids(order_id)

    channel_for(sim).reject(order_view(sim, order_id), "out of stock")

    assert sim.calls_to("POST", "/api/v1/orders/cancel")[0].json == {
        "items": [{"id": first}, {"id": second}]
    }
    assert sim.order(order_id)["status"] == "cancelled"


def test_reject_leaves_shipped_items_out(sim: AboutYouSimulator) -> None:
    order_id = sim.create_order("SKU-1", "SKU-2")
    first, second = sim.item_ids(order_id)
    channel_for(sim).reject(order_view(sim, order_id, shipped=[first]), "out of stock")
    assert sim.calls_to("POST", "/api/v1/orders/cancel")[0].json == {"items": [{"id": second}]}


def test_reject_counts_items_the_customer_already_cancelled_as_done(
    sim: AboutYouSimulator,
) -> None:
    order_id = sim.create_order("SKU-1", "SKU-2")
    first, _ = sim.item_ids(order_id)
    view = order_view(sim, order_id)
    sim.cancel_items(order_id, [first])

    channel_for(sim).reject(view, "out of stock")

    assert {i["status"] for i in sim.order(order_id)["order_items"]} == {"cancelled"}


def test_reject_after_shipping_is_permanent(sim: AboutYouSimulator) -> None:
    order_id = sim.create_order("SKU-1")
    (item,) = sim.item_ids(order_id)
    channel = channel_for(sim)
    channel.push_tracking(order_view(sim, order_id, [shipment([item])]), "shp-1")
    with pytest.raises(Permanent) as caught:
        channel.reject(order_view(sim, order_id), "too late")
    assert "already been shipped" in caught.value.reason


def test_update_listing_sets_the_stock_and_waits_for_the_result(sim: AboutYouSimulator) -> None:
    sim.add_product("SKU-9", 5)
    channel_for(sim).update_listing("SKU-9", 0)
    assert sim.stocks["SKU-9"] == 0
    assert sim.calls_to("PUT", "/api/v1/products/stocks")[0].json == {
        "items": [{"sku": "SKU-9", "quantity": 0}]
    }
    assert len(sim.calls_to("GET", "/api/v1/results/stocks")) == 2


def test_stock_for_an_unknown_sku_is_permanent_with_about_yous_message(
    sim: AboutYouSimulator,
) -> None:
    with pytest.raises(Permanent) as caught:
        channel_for(sim).update_listing("NOPE", 3)
    assert "Product variant with SKU NOPE not found." in caught.value.reason


def test_wrong_api_key_is_permanent_and_names_the_setting(sim: AboutYouSimulator) -> None:
    with pytest.raises(Permanent) as caught:
        channel_for(sim, api_key="wrong").fetch_order("1000")
    assert "ABOUTYOU_API_KEY" in caught.value.reason
    assert caught.value.code == "unauthorized"


def test_unset_api_key_is_permanent_without_calling(sim: AboutYouSimulator) -> None:
    channel = channel_for(sim, api_key="")
    with pytest.raises(Permanent) as caught:
        channel.fetch_order("1000")
    assert "ABOUTYOU_API_KEY" in caught.value.reason
    assert sim.calls == []


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_are_retriable(sim: AboutYouSimulator, status: int) -> None:
    order_id = sim.create_order("SKU-1")
    sim.fail_next(1, status=status)
    with pytest.raises(Retriable):
        channel_for(sim).fetch_order(str(order_id))


def test_carriers_lists_about_yous_keys(sim: AboutYouSimulator) -> None:
    keys = channel_for(sim).client.carriers()
    assert {"DHL", "UPS", "DPD", "HERMES"} <= set(keys)
