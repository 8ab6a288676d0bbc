"""Wire formats to canonical DTOs: the webhook page's example, money, times and status maps."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.aboutyou.transformers import (
    BATCH_STATUSES,
    ITEM_STATUSES,
    ORDER_STATUSES,
    BatchStatus,
    ItemStatus,
    OrderStatus,
    WireOrder,
    channel_order,
    from_minor,
    item_status,
    loads,
    order_status,
    parse_order,
    to_minor,
    to_utc,
)
from connectors.base import Address, ChannelOrderLine, ChannelOrderStatus, MalformedPayload

from .factories import SEED_BODY


def seed_message() -> bytes:
    return json.dumps(json.loads(SEED_BODY)["message"]).encode()


def seed_order(**changes: Any) -> WireOrder:
    data = loads(seed_message())
    data.update(changes)
    return WireOrder.model_validate(data)


def test_seed_example_parses_into_the_expected_canonical_order() -> None:
    order = parse_order(seed_message())

    assert order.channel == "aboutyou"
    assert order.channel_order_id == "text"  # the order number: orders document no id
    assert order.status is ChannelOrderStatus.OPEN
    assert order.channel_status == "open"
    assert order.currency == "text"
    assert order.total_amount == Decimal("0.01")  # cost_with_tax 1 is one cent
    assert order.placed_at == datetime(2025, 9, 18, 17, 5, 2, 525000, tzinfo=UTC)
    assert order.shipping_address == Address(
        name="text text",
        line1="text",
        line2="text",
        postal_code="text",
        city="text",
        country_code="text",
        company="text",
    )
    assert order.lines == (
        ChannelOrderLine(
            channel_line_id="1",
            sku="text",
            quantity=1,
            unit_price=Decimal("0.01"),
            attributes={"price_without_tax": "0.01", "vat": "19", "status": "open"},
        ),
    )
    attributes = order.attributes
    assert attributes["order_number"] == "text"
    assert attributes["fulfillment_type"] == "dropshipping"
    assert attributes["cost_without_tax"] == "0.01"
    assert attributes["shipping_collection_point"] == {
        "key": "text",
        "type": "text",
        "customer_key": "text",
        "description": "text",
    }
    assert attributes["billing_address"]["name"] == "text text"
    json.dumps(dict(attributes))  # attributes must stay JSON-serialisable


def test_amounts_are_in_the_smallest_currency_unit() -> None:
    order = channel_order(seed_order(currency_code="EUR", cost_with_tax=2499))
    assert order.total_amount == Decimal("24.99")
    assert from_minor(2499, "EUR") == Decimal("24.99")
    assert from_minor(2499, "JPY") == Decimal("2499")
    assert from_minor(2499, "KWD") == Decimal("2.499")


@pytest.mark.parametrize("value", [2499, "2499", " 2499 ", Decimal("2499"), Decimal("2499.00")])
def test_whole_amounts_are_read_from_integers_strings_and_numbers(value: object) -> None:
    assert to_minor(value) == 2499


@pytest.mark.parametrize("value", [24.99, 2499.0, True, None, "abc", "NaN", "24.99", [1]])
def test_amounts_that_are_not_whole_minor_units_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        to_minor(value)


def test_a_fractional_price_on_the_wire_makes_the_order_unreadable() -> None:
    raw = seed_message().replace(b'"price_with_tax": 1', b'"price_with_tax": 19.99')
    with pytest.raises(MalformedPayload):
        parse_order(raw)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_every_integer_amount_becomes_the_exact_decimal(cents: int) -> None:
    amount = from_minor(to_minor(loads(str(cents))), "EUR")
    assert isinstance(amount, Decimal)
    assert amount * 100 == cents


def test_total_falls_back_to_the_sum_of_items_when_cost_is_missing() -> None:
    data = loads(seed_message())
    del data["cost_with_tax"]
    data["currency_code"] = "EUR"
    data["order_items"].append({**data["order_items"][0], "id": 2, "price_with_tax": 250})
    assert channel_order(WireOrder.model_validate(data)).total_amount == Decimal("2.51")


def test_times_are_utc_aware_whatever_the_offset() -> None:
    assert to_utc("2025-09-18T19:05:02+02:00") == datetime(2025, 9, 18, 17, 5, 2, tzinfo=UTC)
    assert to_utc("2025-09-18T17:05:02").tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("open", ChannelOrderStatus.OPEN),
        ("shipped", ChannelOrderStatus.SHIPPED),
        ("returned", ChannelOrderStatus.SHIPPED),
        ("cancelled", ChannelOrderStatus.CANCELLED),
        ("on_hold", ChannelOrderStatus.UNSUPPORTED),
        (None, ChannelOrderStatus.UNSUPPORTED),
    ],
)
def test_order_status_map(raw: str | None, expected: ChannelOrderStatus) -> None:
    assert order_status(seed_order(status=raw)) is expected


def items(*statuses: str) -> list[dict[str, Any]]:
    return [{"id": n, "status": s, "price_with_tax": 100} for n, s in enumerate(statuses, 1)]


@pytest.mark.parametrize(
    ("item_statuses", "expected"),
    [
        (("shipped", "open"), ChannelOrderStatus.OPEN),
        (("cancelled", "open"), ChannelOrderStatus.OPEN),
        (("shipped", "cancelled"), ChannelOrderStatus.SHIPPED),
        (("returned", "cancelled"), ChannelOrderStatus.SHIPPED),
        (("shipped", "returned"), ChannelOrderStatus.SHIPPED),
        (("cancelled", "cancelled"), ChannelOrderStatus.CANCELLED),
        (("shipped", "lost"), ChannelOrderStatus.UNSUPPORTED),
        ((), ChannelOrderStatus.UNSUPPORTED),
    ],
)
def test_a_mixed_order_is_decided_by_its_items(
    item_statuses: tuple[str, ...], expected: ChannelOrderStatus
) -> None:
    order = seed_order(status="mixed", order_items=items(*item_statuses))
    assert order_status(order) is expected


def test_every_documented_status_has_a_mapping_and_nothing_else_does() -> None:
    assert set(ORDER_STATUSES) == {"open", "shipped", "cancelled", "returned", "mixed"}
    assert set(ORDER_STATUSES.values()) == set(OrderStatus) - {OrderStatus.UNSUPPORTED}
    assert set(ITEM_STATUSES) == {"open", "shipped", "cancelled", "returned"}
    assert set(ITEM_STATUSES.values()) == set(ItemStatus) - {ItemStatus.UNSUPPORTED}
    assert set(BATCH_STATUSES) == {"pending", "processing", "completed", "retry", "failed"}
    assert set(BATCH_STATUSES.values()) == set(BatchStatus) - {BatchStatus.UNSUPPORTED}
    assert item_status("lost") is ItemStatus.UNSUPPORTED
    for raw in ORDER_STATUSES:
        mapped = order_status(seed_order(status=raw, order_items=items("open")))
        assert mapped is not ChannelOrderStatus.UNSUPPORTED


def test_missing_shipping_street_gives_no_address_rather_than_a_blank_one() -> None:
    assert channel_order(seed_order(shipping_street=None)).shipping_address is None


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"order_number": "x"}',
        seed_message().replace(b'"id": 1', b'"id": "x"'),
        seed_message().replace(b'"currency_code": "text",', b""),
    ],
)
def test_unreadable_order_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse_order(raw)
