"""The seed's example payloads, the status map and the parcel arithmetic of Depop's mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import (
    Address,
    ChannelEvent,
    ChannelOrderStatus,
    EventKind,
    MalformedPayload,
    OrderLineView,
    OrderView,
    ShipmentLineView,
    ShipmentView,
)
from connectors.depop.spec import OPENAPI
from connectors.depop.transformers import (
    ORDER_STATUS,
    identify,
    loads,
    parcels_completed_by,
    parse_envelope,
    parse_order,
    parse_orders_page,
    refund_validation_errors,
    restock_body,
    to_channel_order,
    to_event,
)

from .seed_payloads import (
    GET_ORDER_RESPONSE,
    LIST_ORDERS_RESPONSE,
    ORDER_NEW_WEBHOOK,
    ORDER_REFUND_WEBHOOK,
    PRODUCT_LIKE_WEBHOOK,
    PRODUCT_UNLIKE_WEBHOOK,
)

SEED_PARCEL = "6e3538ca-6653-3c25-bf0a-a2be876b17e4"


def _event(body: bytes) -> ChannelEvent:
    return to_event(parse_envelope(body))


def test_seed_order_new_webhook_parses_into_the_canonical_order() -> None:
    event = _event(ORDER_NEW_WEBHOOK)
    assert event.kind is EventKind.ORDER_PLACED
    assert event.event_type == "v1:order.new"
    assert event.channel_order_id == "123456"
    order = event.order
    assert order is not None
    assert order.channel == "depop"
    assert order.channel_order_id == "123456"
    assert order.status is ChannelOrderStatus.OPEN
    assert order.channel_status == "SHIPPING_PENDING"
    assert order.currency == "GBP"
    assert order.total_amount == Decimal("50.99")
    assert order.placed_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert order.shipping_address == Address(
        name="John Doe",
        line1="123 Main St",
        line2="Apt 1",
        city="London",
        postal_code="EC1V 4PW",
        region="Greater London",
        country_code="GB",
    )
    (line,) = order.lines
    assert line.channel_line_id == "2385551"
    assert line.sku == "ABC-12345-S-BL"
    assert line.quantity == 1
    assert line.unit_price == Decimal("25.99")
    assert line.parcel_ref == SEED_PARCEL
    assert dict(line.attributes) == {
        "product_id": 7021251,
        "slug": "vintage-nike-t-shirt-7021251",
        "original_price": "29.99",
    }
    assert dict(order.attributes) == {
        "seller_id": 123456,
        "seller_receives_amount": "45.99",
        "buyer_shipping_price": "5.00",
        "buyer_tax_amount": "3.24",
        "fee_amount": "5.00",  # the guide's webhook has the breakdown only; its sum
        "fees": [
            {"fee_type": "DEPOP_FEE", "amount": "3.00", "currency": "GBP"},
            {"fee_type": "PAYMENT_FEE", "amount": "2.00", "currency": "GBP"},
            {"fee_type": "SHIPPING_FEE", "amount": "0.00", "currency": "GBP"},
        ],
    }
    json.dumps(dict(order.attributes))  # the hub stores attributes as JSON


def test_seed_get_order_response_maps_like_the_webhook() -> None:
    fetched = to_channel_order(parse_order(loads(GET_ORDER_RESPONSE)))
    from_webhook = _event(ORDER_NEW_WEBHOOK).order
    assert from_webhook is not None
    assert fetched.lines == from_webhook.lines
    assert fetched.total_amount == from_webhook.total_amount
    assert fetched.placed_at == datetime(2025, 1, 1, 12, tzinfo=UTC)


def test_seed_orders_page_is_empty_and_final() -> None:
    page = parse_orders_page(loads(LIST_ORDERS_RESPONSE))
    assert page.data == []
    assert page.meta.has_more is False
    assert page.meta.cursor == "123456789"


def test_seed_refund_webhook_asks_for_a_fetch() -> None:
    event = _event(ORDER_REFUND_WEBHOOK)
    assert event.kind is EventKind.ORDER_CHANGED
    assert event.channel_order_id == "123456"
    assert dict(event.detail) == {"refunded_by": "PARTNER"}
    assert event.order is None


@pytest.mark.parametrize("body", [PRODUCT_LIKE_WEBHOOK, PRODUCT_UNLIKE_WEBHOOK])
def test_seed_like_and_unlike_webhooks_are_ignored_with_a_note(body: bytes) -> None:
    event = _event(body)
    assert event.kind is EventKind.IGNORED
    assert event.note
    assert event.detail["sku"] == "ABC-12345-S-BL"


def test_identify_reads_the_envelope_id_and_type() -> None:
    identity = identify(PRODUCT_UNLIKE_WEBHOOK)
    assert identity.external_id == "c431045g-e3h5-6f06-c4df-9h30e80775g4"
    assert identity.event_type == "v1:product.unlike"


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"event_type": "v1:order.new"}', b'{"id": "x"}']
)
def test_identify_rejects_an_unreadable_envelope(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        identify(body)


def test_unknown_event_type_is_ignored_with_a_note() -> None:
    body = json.dumps(
        {
            "id": "e1",
            "event_type": "v2:order.teleported",
            "created_at": "2025-01-01T00:00:00Z",
            "data": {},
        }
    ).encode()
    event = _event(body)
    assert event.kind is EventKind.IGNORED
    assert "v2:order.teleported" in event.note


def test_order_new_without_line_items_is_malformed() -> None:
    envelope = json.loads(ORDER_NEW_WEBHOOK)
    del envelope["data"]["line_items"]
    with pytest.raises(MalformedPayload):
        _event(json.dumps(envelope).encode())


def test_line_without_sku_is_kept_with_sku_none() -> None:
    envelope = json.loads(ORDER_NEW_WEBHOOK)
    envelope["data"]["line_items"][0]["sku"] = None
    order = _event(json.dumps(envelope).encode()).order
    assert order is not None
    assert [line.sku for line in order.lines] == [None]
    assert order.lines[0].channel_line_id == "2385551"


def test_every_documented_order_status_is_mapped() -> None:
    documented = {"SHIPPING_PENDING", "SHIPPED", "REFUNDED", "CANCELLED", "COMPLETED"}
    assert set(ORDER_STATUS) == documented
    assert ORDER_STATUS["SHIPPING_PENDING"] is ChannelOrderStatus.OPEN
    assert ORDER_STATUS["SHIPPED"] is ChannelOrderStatus.SHIPPED
    assert ORDER_STATUS["COMPLETED"] is ChannelOrderStatus.SHIPPED
    assert ORDER_STATUS["REFUNDED"] is ChannelOrderStatus.CANCELLED
    assert ORDER_STATUS["CANCELLED"] is ChannelOrderStatus.CANCELLED


def test_unknown_order_status_is_unsupported_not_guessed() -> None:
    data = json.loads(GET_ORDER_RESPONSE)
    data["status"] = "LOST_IN_SPACE"
    order = to_channel_order(parse_order(data))
    assert order.status is ChannelOrderStatus.UNSUPPORTED
    assert order.channel_status == "LOST_IN_SPACE"


def test_refund_summary_is_carried_with_amounts_as_strings() -> None:
    data = json.loads(GET_ORDER_RESPONSE)
    data["status"] = "REFUNDED"
    data["refund_summary"] = {
        "buyer_refund_amount": "30.99",
        "seller_refund_amount": "1.00",
        "refund_date": "2025-01-02T10:00:00+01:00",
        "refunded_by": "DEPOP",
        "breakdown": {
            "refunded_to_buyer": {"item_refund_amount": "25.99", "shipping_refund_amount": "5.00"},
            "refunded_to_seller": {"depop_fee_refund_amount": "3.00"},
        },
    }
    order = to_channel_order(parse_order(loads(json.dumps(data))))
    assert order.status is ChannelOrderStatus.CANCELLED
    assert order.attributes["refund_summary"] == {
        "buyer_refund_amount": "30.99",
        "refund_date": "2025-01-02T09:00:00+00:00",
        "refunded_by": "DEPOP",
        "breakdown": {
            "refunded_to_buyer": {"item_refund_amount": "25.99", "shipping_refund_amount": "5.00"},
            "refunded_to_seller": {"depop_fee_refund_amount": "3.00"},
        },
    }


money = st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False)


@given(price=money, total=money)
def test_money_is_parsed_exactly_as_a_string_or_as_a_json_number(
    price: Decimal, total: Decimal
) -> None:
    data = json.loads(GET_ORDER_RESPONSE)
    data["line_items"][0]["sold_price"] = str(price)
    as_string = to_channel_order(parse_order(loads(json.dumps(data))))
    assert as_string.lines[0].unit_price == price
    raw = json.dumps(data).replace('"50.99"', str(total))  # buyer_pays_amount as a bare number
    as_number = to_channel_order(parse_order(loads(raw)))
    assert as_number.total_amount == total
    assert str(as_number.total_amount) == str(total)


def test_refund_checks_need_an_amount_and_a_positive_one() -> None:
    assert refund_validation_errors("9", None, None) == [
        "Refund for purchase id 9 must have an item amount or a shipping amount to refund."
    ]
    assert refund_validation_errors("9", Decimal("0"), None) == [
        "Refund for purchase id 9 must have a positive amount to refund."
    ]
    assert refund_validation_errors("9", Decimal("-1"), Decimal("5")) == [
        "Refund for purchase id 9 must have a positive amount to refund."
    ]
    assert refund_validation_errors("9", None, Decimal("0.01")) == []


def test_restock_body_rebuilds_a_put_from_a_product_read_back() -> None:
    product = {
        "sku": "A",
        "product_id": 1,
        "status": "STATUS_MARKED_AS_SOLD",
        "brand": "Nike",
        "pictures": [{"url": "https://x/1.jpg", "height": 1280, "width": 1280}],
        "national_shipping_cost": "3.50",
        "price_amount": "25.99",
        "quantity": 0,
        "is_boosted": True,
        "attributes": {},
    }
    body = restock_body(product, 4)
    assert body["quantity"] == 4
    assert body["brand_name"] == "Nike"
    assert body["pictures"] == [{"url": "https://x/1.jpg"}]
    assert body["national_shipping_cost"] == "3.50"
    assert "is_boosted" not in body and "status" not in body and "sku" not in body


# -- which parcels a shipment completes -------------------------------------------------------


def _line(cid: str, parcel: str | None, quantity: int = 1) -> OrderLineView:
    return OrderLineView(
        line_id=f"L{cid}",
        channel_line_id=cid,
        sku=f"SKU-{cid}",
        quantity=quantity,
        shipped_quantity=0,
        unit_price=Decimal("10.00"),
        parcel_ref=parcel,
    )


def _shipment(sid: str, numbers: tuple[str, ...], *lines: tuple[str, int]) -> ShipmentView:
    return ShipmentView(
        shipment_id=sid,
        carrier="Royal Mail",
        tracking_numbers=numbers,
        tracking_url=None,
        shipped_at=None,
        lines=tuple(
            ShipmentLineView(channel_line_id=c, sku=f"SKU-{c}", quantity=q) for c, q in lines
        ),
        pushed_to_channel=False,
    )


def _order(lines: tuple[OrderLineView, ...], shipments: tuple[ShipmentView, ...]) -> OrderView:
    return OrderView(
        order_id="o1",
        channel="depop",
        channel_order_id="123456",
        currency="GBP",
        lines=lines,
        shipments=shipments,
    )


def test_a_parcel_is_pushed_by_the_shipment_that_completes_it_with_every_tracking_number() -> None:
    lines = (_line("1", "P"), _line("2", "P"))
    first = _shipment("s1", ("TRK1",), ("1", 1))
    second = _shipment("s2", ("TRK2", "TRK3"), ("2", 1))
    order = _order(lines, (first, second))
    assert parcels_completed_by(order, "s1") == []
    assert parcels_completed_by(order, "s2") == [("P", ["TRK1", "TRK2", "TRK3"])]


def test_a_parcel_already_complete_is_not_completed_again() -> None:
    lines = (_line("1", "P", quantity=1),)
    order = _order(
        lines,
        (_shipment("s1", ("A",), ("1", 1)), _shipment("s2", ("B",), ("1", 1))),
    )
    assert parcels_completed_by(order, "s1") == [("P", ["A"])]
    assert parcels_completed_by(order, "s2") == []


def test_only_shipments_carrying_the_parcel_lend_it_tracking_numbers() -> None:
    lines = (_line("1", "P"), _line("2", "Q"))
    order = _order(lines, (_shipment("s1", ("A",), ("2", 1)), _shipment("s2", ("B",), ("1", 1))))
    assert parcels_completed_by(order, "s1") == [("Q", ["A"])]
    assert parcels_completed_by(order, "s2") == [("P", ["B"])]


def test_an_unknown_shipment_or_a_line_without_parcel_is_refused() -> None:
    order = _order((_line("1", None),), (_shipment("s1", ("A",), ("1", 1)),))
    with pytest.raises(KeyError):
        parcels_completed_by(order, "nope")
    with pytest.raises(ValueError, match="no Depop parcel id"):
        parcels_completed_by(order, "s1")


def test_an_order_without_buyer_name_or_street_parses() -> None:
    """Depop requires only city, postal code and country in the buyer's address."""
    example = OPENAPI.document["paths"]["/api/v1/orders/{purchase_id}/"]["get"]["responses"]["200"][
        "content"
    ]["application/json"]["example"]
    address = {"city": "London", "postal_code": "EC1V 4PW", "country_code": "GB"}
    order = to_channel_order(parse_order(example | {"buyer_address": address}))
    assert order.shipping_address is not None
    assert (order.shipping_address.city, order.shipping_address.name) == ("London", "")
