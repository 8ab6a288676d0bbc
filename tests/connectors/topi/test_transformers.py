"""Mapping topi's wire format to the canonical model, and choosing the units a shipment reports."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import ChannelOrderStatus, ShipmentLineView
from connectors.topi.transformers import (
    STATUS_MAP,
    ShipmentUnit,
    UnmappableLine,
    WireOrder,
    WireOrdersPage,
    decimal_to_minor,
    loads,
    map_status,
    minor_to_decimal,
    parse_order,
    shipment_body,
    to_channel_order,
    units_to_report,
)
from tests.connectors.topi.conftest import shipment, view_of
from tests.connectors.topi.examples import (
    FULL_ORDER_EXAMPLE,
    ORDER_RESULT_EXAMPLE,
    PAGINATED_EXAMPLE,
    SHIPMENT_REQUEST_EXAMPLE,
)

# OrderResult.status / OrderSummary.status in topi's order OpenAPI.
OPENAPI_ORDER_STATUSES = {
    "created",
    "confirmed",
    "acknowledged",
    "accepted",
    "partially_fulfilled",
    "completed",
    "canceled",
    "rejected",
}


def test_full_order_example_parses_into_the_canonical_order() -> None:
    order = to_channel_order(parse_order(loads(FULL_ORDER_EXAMPLE)), "sap")
    assert order.channel == "topi"
    assert order.channel_order_id == "739b63c2-9e58-4964-b38d-4ebb424de242"
    assert order.status is ChannelOrderStatus.OPEN
    assert order.channel_status == "confirmed"
    assert order.currency == "EUR"
    assert order.placed_at == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert order.buyer_email == "alice@example.com"
    assert len(order.lines) == 1
    line = order.lines[0]
    assert (line.channel_line_id, line.sku, line.quantity) == ("123ab-5343", "123ab-5343", 1)
    assert line.unit_price == Decimal("1190.00")
    assert line.attributes["serial_required"] is True
    assert line.attributes["contract_type"] == "rent"
    assert line.attributes["unit_price_net"] == "1000.00"
    assert line.attributes["monthly_price"] == "1190.00"
    assert line.attributes["duration_months"] == 6
    assert line.attributes["asset_ids"] == ["739b63c2-9e58-4964-b38d-4ebb424de242"]
    assert line.attributes["reference"] == {"source": "sap", "reference": "123ab-5343"}
    # The line plus the gross shipping price of the example.
    assert order.total_amount == Decimal("2380.00")
    assert order.attributes["seller_offer_reference"] == "abc123"
    assert order.attributes["prices_known"] is True
    assert order.attributes["shipping_price"] == "1190.00"
    assert order.shipping_service == "Sandbox Shipping Service"
    address = order.shipping_address
    assert address is not None
    assert address.name == "Felix Wolf"
    assert (address.line1, address.line2, address.postal_code) == (
        "10 Downing Street",
        "Flat 42",
        "10243",
    )
    assert (address.city, address.region, address.country_code) == ("Munich", "Bavaria", "DE")
    assert address.company == "Unicorn Corp"


def test_full_order_example_without_our_sku_source_has_an_unmapped_line() -> None:
    order = to_channel_order(parse_order(loads(FULL_ORDER_EXAMPLE)), "sku")
    assert [(line.channel_line_id, line.sku, line.quantity) for line in order.lines] == [
        ("asset:739b63c2-9e58-4964-b38d-4ebb424de242", None, 1)
    ]


def test_without_a_configured_source_the_examples_own_source_is_used() -> None:
    """The example's seller names `abc123` as its source, which none of its references use."""
    wire = parse_order(loads(FULL_ORDER_EXAMPLE))
    assert wire.seller_info is not None
    assert wire.seller_info.product_reference_source == "abc123"
    order = to_channel_order(wire, None)
    assert [line.sku for line in order.lines] == [None]
    assert order.lines[0].attributes["reference"] == {"source": "sap", "reference": "123ab-5343"}


def test_a_webhook_order_without_a_source_keeps_every_asset_unmapped() -> None:
    wire = parse_order(loads(ORDER_RESULT_EXAMPLE))
    order = to_channel_order(wire, None, received_at=datetime(2025, 3, 1, tzinfo=UTC))
    assert [(line.channel_line_id, line.sku) for line in order.lines] == [
        ("asset:739b63c2-9e58-4964-b38d-4ebb424de242", None)
    ]
    assert order.attributes["prices_known"] is False


def test_order_result_example_parses_and_needs_a_received_time() -> None:
    wire = parse_order(loads(ORDER_RESULT_EXAMPLE))
    with pytest.raises(ValueError):
        to_channel_order(wire, "sap")
    received = datetime(2025, 3, 1, tzinfo=UTC)
    order = to_channel_order(wire, "sap", received_at=received)
    assert order.placed_at == received
    assert order.attributes["placed_at_estimated"] is True
    assert order.shipping_address is None
    assert [(line.sku, line.quantity) for line in order.lines] == [("123ab-5343", 1)]


def test_paginated_example_parses() -> None:
    page = WireOrdersPage.model_validate(loads(PAGINATED_EXAMPLE))
    assert [o.id for o in page.orders] == ["739b63c2-9e58-4964-b38d-4ebb424de242"]
    assert page.pagination.total_pages == 1


def test_status_map_covers_every_status_topi_documents() -> None:
    assert set(STATUS_MAP) == OPENAPI_ORDER_STATUSES


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("created", ChannelOrderStatus.OPEN),
        ("acknowledged", ChannelOrderStatus.OPEN),
        ("confirmed", ChannelOrderStatus.OPEN),
        ("partially_fulfilled", ChannelOrderStatus.OPEN),
        ("completed", ChannelOrderStatus.SHIPPED),
        ("canceled", ChannelOrderStatus.CANCELLED),
        ("rejected", ChannelOrderStatus.CANCELLED),
        ("on_hold", ChannelOrderStatus.UNSUPPORTED),
        ("", ChannelOrderStatus.UNSUPPORTED),
    ],
)
def test_status_maps_exhaustively_and_unknown_is_unsupported(
    status: str, expected: ChannelOrderStatus
) -> None:
    assert map_status(status) is expected


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_minor_units_round_trip_through_decimal(minor: int) -> None:
    amount = minor_to_decimal(minor)
    assert amount.as_tuple().exponent == -2
    assert decimal_to_minor(amount) == minor


def test_fractions_of_a_cent_are_refused_not_rounded() -> None:
    with pytest.raises(ValueError):
        decimal_to_minor(Decimal("1.005"))


@given(st.decimals(allow_nan=False, allow_infinity=False, places=2, max_value=10**9))
def test_json_numbers_are_read_as_decimal_never_float(amount: Decimal) -> None:
    parsed = loads(f'{{"amount": {amount:.2f}}}')["amount"]
    assert isinstance(parsed, Decimal | int)
    assert Decimal(parsed) == amount


def _order(
    *assets: tuple[str, str, str | None], lines: list[dict[str, object]] | None = None
) -> WireOrder:
    """A topi order of (sku, asset status, serial) assets."""
    return parse_order(
        {
            "id": "order-1",
            "status": "partially_fulfilled",
            "created_at": "2025-03-01T10:00:00Z",
            "assets": [
                {
                    "id": f"asset-{i}",
                    "status": status,
                    "serial_number": serial,
                    "seller_product_references": [{"source": "sku", "reference": sku}],
                }
                for i, (sku, status, serial) in enumerate(assets)
            ],
            "order_lines": lines or [],
        }
    )


def _units(*units: tuple[str, str]) -> list[ShipmentUnit]:
    return [ShipmentUnit("sku", sku, serial) for sku, serial in units]


def test_every_unit_of_a_new_shipment_is_reported() -> None:
    topi = _order(("A", "created", None), ("A", "created", None), ("B", "created", None))
    view = view_of(
        to_channel_order(topi, "sku"), (shipment("s1", ("A", 2, ("S1",)), ("B", 1, ())),)
    )
    assert units_to_report(view, view.shipments[0], topi, "sku") == _units(
        ("A", "S1"), ("A", ""), ("B", "")
    )


def test_a_retry_after_topi_recorded_the_shipment_reports_nothing() -> None:
    topi = _order(("A", "shipped", "S1"), ("A", "shipped", None))
    view = view_of(to_channel_order(topi, "sku"), (shipment("s1", ("A", 2, ("S1",))),))
    assert units_to_report(view, view.shipments[0], topi, "sku") == []


def test_second_partial_shipment_reports_only_its_own_units() -> None:
    topi = _order(("A", "shipped", None), ("A", "created", None), ("A", "created", None))
    first = shipment("s1", ("A", 1, ()), pushed=True)
    second = shipment("s2", ("A", 2, ()))
    view = view_of(to_channel_order(topi, "sku"), (first, second))
    assert units_to_report(view, second, topi, "sku") == _units(("A", ""), ("A", ""))


def test_shipments_pushed_out_of_order_still_report_every_unit_once() -> None:
    topi = _order(("A", "shipped", None), ("A", "shipped", None), ("A", "created", None))
    first = shipment("s1", ("A", 1, ()))
    second = shipment("s2", ("A", 2, ()), pushed=True)
    view = view_of(to_channel_order(topi, "sku"), (first, second))
    assert units_to_report(view, first, topi, "sku") == _units(("A", ""))


def test_a_serial_topi_already_holds_is_not_reported_again() -> None:
    topi = _order(("A", "shipped", "S1"), ("A", "created", None))
    view = view_of(to_channel_order(topi, "sku"), (shipment("s1", ("A", 2, ("S1", "S2"))),))
    assert units_to_report(view, view.shipments[0], topi, "sku") == _units(("A", "S2"))


def test_a_line_without_reference_or_sku_cannot_be_shipped() -> None:
    topi = _order(("A", "created", None))
    view = view_of(to_channel_order(topi, "sku"))
    unnamed = replace(
        shipment("s1", ("A", 1, ())),
        lines=(ShipmentLineView(channel_line_id="gone", sku=None, quantity=1),),
    )
    with pytest.raises(UnmappableLine):
        units_to_report(view, unnamed, topi, "sku")


def test_shipment_body_has_the_shape_of_topis_example() -> None:
    expected = loads(SHIPMENT_REQUEST_EXAMPLE)
    view_shipment = replace(
        shipment("s1", ("123ab-5343", 1, ("BA-3456786-334-9",))),
        carrier=None,
        tracking_numbers=("123456",),
        tracking_url="https://example.com/foo",
    )
    body = shipment_body(
        "739b63c2-9e58-4964-b38d-4ebb424de242",
        [ShipmentUnit("sap", "123ab-5343", "BA-3456786-334-9")],
        view_shipment,
    )
    assert body == expected
