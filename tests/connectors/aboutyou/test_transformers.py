"""Wire formats to canonical DTOs: the seed example, money, times and the status maps."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.aboutyou.transformers import (
    ITEM_STATUSES,
    ORDER_STATUSES,
    ItemStatus,
    WireOrder,
    channel_order,
    item_status,
    loads,
    order_status,
    parse_order,
    to_money,
    to_utc,
)
from connectors.base import Address, ChannelOrderLine, ChannelOrderStatus, MalformedPayload

from .factories import SEED_BODY


def seed_message() -> bytes:
    return json.dumps(json.loads(SEED_BODY)["message"]).encode()


def test_seed_example_parses_into_the_expected_canonical_order() -> None:
    order = parse_order(seed_message())

    assert order.channel == "aboutyou"
    # The seed's order shows no id of its own, so its number stands in.
    assert order.channel_order_id == "text"
    assert order.status is ChannelOrderStatus.OPEN
    assert order.channel_status == "open"
    assert order.currency == "text"
    assert order.total_amount == Decimal("1")
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
            unit_price=Decimal("1"),
            attributes={"price_without_tax": "1", "vat": "19", "status": "open"},
        ),
    )
    attributes = order.attributes
    assert attributes["order_number"] == "text"
    assert attributes["order_id"] is None
    assert attributes["fulfillment_type"] == "dropshipping"
    assert attributes["cost_without_tax"] == "1"
    assert attributes["shipping_collection_point"] == {
        "key": "text",
        "type": "text",
        "customer_key": "text",
        "description": "text",
    }
    assert attributes["billing_address"] == {
        "name": "text text",
        "gender": "text",
        "street": "text",
        "additional": "text",
        "zip_code": "text",
        "city": "text",
        "country_code": "text",
    }
    json.dumps(dict(attributes))  # attributes must stay JSON-serialisable


def test_order_with_an_id_is_keyed_by_the_id_not_the_number() -> None:
    data = loads(seed_message())
    data["id"] = 4711
    assert channel_order(WireOrder.model_validate(data)).channel_order_id == "4711"


def test_fractional_prices_keep_every_digit() -> None:
    raw = seed_message().replace(b'"price_with_tax": 1', b'"price_with_tax": 19.99')
    raw = raw.replace(b'"cost_with_tax": 1', b'"cost_with_tax": 0.30000000000000004441')
    order = parse_order(raw)
    assert order.lines[0].unit_price == Decimal("19.99")
    assert order.total_amount == Decimal("0.30000000000000004441")


@given(
    st.decimals(
        min_value=Decimal("-1000000"),
        max_value=Decimal("1000000"),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_any_json_amount_parses_to_the_exact_decimal(amount: Decimal) -> None:
    assert to_money(loads(format(amount, "f"))) == amount


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_integer_amounts_become_decimals(amount: int) -> None:
    parsed = to_money(loads(str(amount)))
    assert isinstance(parsed, Decimal)
    assert parsed == amount


@pytest.mark.parametrize("value", [19.99, True, None, "abc", "NaN", [1]])
def test_values_that_are_not_exact_amounts_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        to_money(value)


def test_total_falls_back_to_the_sum_of_items_when_cost_is_missing() -> None:
    data = loads(seed_message())
    del data["cost_with_tax"]
    data["order_items"].append(
        {**data["order_items"][0], "id": 2, "price_with_tax": Decimal("2.5")}
    )
    assert channel_order(WireOrder.model_validate(data)).total_amount == Decimal("3.5")


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
    assert order_status(raw) is expected


def test_status_maps_never_map_a_known_value_to_unsupported() -> None:
    assert ChannelOrderStatus.UNSUPPORTED not in ORDER_STATUSES.values()
    assert set(ITEM_STATUSES.values()) == set(ItemStatus) - {ItemStatus.UNSUPPORTED}
    assert item_status("lost") is ItemStatus.UNSUPPORTED


def test_missing_shipping_street_gives_no_address_rather_than_a_blank_one() -> None:
    data = loads(seed_message())
    data["shipping_street"] = None
    assert channel_order(WireOrder.model_validate(data)).shipping_address is None


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"order_number": "x"}',
        seed_message().replace(b'"id": 1', b'"id": "x"'),
    ],
)
def test_unreadable_order_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse_order(raw)
