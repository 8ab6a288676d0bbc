"""Wire models and mappings: the seed's own text and payloads, status and error tables."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import Address, Permanent, ProviderOrderStatus, Retriable
from connectors.deliverr.spec import CONTRACT
from connectors.deliverr.transformers import (
    ERROR_RULES,
    PACKAGE_LEFT,
    STATUS_MAP,
    CreateOrderRequest,
    DeliverrErrorCode,
    DeliverrOrderStatus,
    Outcome,
    Shipment,
    ShipmentStatus,
    ShippedItem,
    StatusUpdateEvent,
    UnshippableAddress,
    create_order_body,
    error_for,
    format_time,
    idempotency_key,
    load_json,
    map_status,
    parse_order,
    shipment_id_for,
    shipto_address,
    status_update_to_fulfilment,
    to_fulfilment_status,
    to_provider_shipment,
)

from .conftest import make_request

# The Create Order example of seeds/deliverr-order-fulfillment.txt, verbatim.
SEED_CREATE_BODY = (
    '{ "externalOrderId": "string", "source": "string", "sourceOrderId": "string", '
    '"shiptoAddress": { "name": "string", "company": "string", "street1": "string", "street2": '
    '"string", "city": "string", "state": "string", "postcode": "string", "countryCode": '
    '"string" }, "lineItems": [ { "externalProductId": "string", "quantity": 0 } ], '
    '"orderDeliveryTime": "2019-08-24T14:15:22Z", "shipMethod": "string", "orderShipmentTime": '
    '"2019-08-24T14:15:22Z", "orderCreationTime": "2019-08-24T14:15:22Z" }'
)

# The seed's error table, verbatim (one line in the seed).
SEED_ERROR_TABLE = (
    "ORDER_INVENTORY_DSKU_NEVER_INBOUNDED The product associated has never been inbounded. "
    "Please create an inbound shipment for the product, before submitting orders against it. "
    "PRODUCT_NOT_APPROVED_FOR_SALE The product is not approved for sale. Please correct the "
    "product definition and ensure it has all the required fields such as dimensions or "
    "verification of hazardous material. ORDER_CANNOT_BE_FULFILLED Missing lineItems object "
    "representing the products to fulfill. Please update the order definition. "
    "ORDER_MISSING_LINE_ITEM Missing externalproductID for one of the lineItems objects. Please "
    "update the order definition. ORDER_MISSING_SHIPPING_ADDRESS Missing shiptoAddress object. "
    "Please update the order definition. ORDER_MISSING_ADDRESS_LINE Missing street1 address "
    "field. Please update the order definition. ORDER_MISSING_CITY Missing city field. Please "
    "update the order definition. ORDER_MISSING_STATE_ZIP Missing state or zip fields; both are "
    "required for domestic orders. Please update the order definition. "
    "ORDER_INVALID_COUNTRY_CODE The countryCode field is invalid. Please update the order "
    "definition with a valid country code. ORDER_PRODUCT_MISSING_CUSTOMS Product does not have "
    "the minimum customs information required. Please update product definition. "
    "ORDER_PREVIOUSLY_SEEN_ERROR This order was already created in the last hour and it failed "
    "with an error. Please wait at least one hour before re-creating orders with errors. "
    "ORDER_SUBMITTED_TOO_EARLY This order was created within the order ingestion delay set for "
    "the merchant's account. Please wait until the ingestion delay window has passed, before "
    "re-creating the order. PRODUCT_NOT_AVAILABLE Contains item(s) that have never been "
    "inbounded. Please ensure that the product has inventory before creating orders against it."
)


def seed_errors() -> dict[str, str]:
    """Error type -> explanation, split out of the seed's table."""
    parts = re.split(r"\b([A-Z][A-Z_]{5,})\b ", SEED_ERROR_TABLE)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def test_seed_create_order_example_parses_verbatim() -> None:
    wire = CreateOrderRequest.model_validate(load_json(SEED_CREATE_BODY))

    assert wire.externalOrderId == "string"
    assert wire.shiptoAddress is not None and wire.shiptoAddress.countryCode == "string"
    assert wire.lineItems is not None
    assert [(i.externalProductId, i.quantity) for i in wire.lineItems] == [("string", 0)]
    expected = datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC)
    assert wire.orderCreationTime == expected
    assert wire.orderDeliveryTime == expected
    assert wire.orderShipmentTime == expected


def test_create_order_body_has_the_seed_fields_and_shapes() -> None:
    body = create_order_body(make_request(), "Standard")
    seed = json.loads(SEED_CREATE_BODY)

    assert set(body) <= set(seed)
    assert set(body["shiptoAddress"]) <= set(seed["shiptoAddress"])
    assert body["orderCreationTime"] == "2024-05-01T12:30:00Z"
    assert body["externalOrderId"] == "ord_01"


def test_create_order_body_leaves_out_what_the_order_lacks() -> None:
    address = Address(name="Jo Weber", line1="1 Rue", city="Paris", country_code="fr")
    body = create_order_body(make_request(address=address), None)

    # state and postcode are required fields of Deliverr's Address, even where none applies.
    assert body["shiptoAddress"] == {
        "name": "Jo Weber",
        "street1": "1 Rue",
        "city": "Paris",
        "state": "",
        "postcode": "",
        "countryCode": "FR",
    }
    assert "shipMethod" not in body


def test_order_creation_time_is_written_in_utc() -> None:
    placed = datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    body = create_order_body(replace(make_request(), placed_at=placed), None)

    assert body["orderCreationTime"] == "2024-05-01T12:30:00Z"


def test_a_naive_time_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError):
        format_time(datetime(2024, 5, 1, 12, 30))


def test_every_deliverr_status_is_mapped() -> None:
    assert set(STATUS_MAP) == set(DeliverrOrderStatus)
    assert {s.value for s in DeliverrOrderStatus} == {
        "CREATED",
        "PROCESSING",
        "PARTIALLY_SHIPPED",
        "SHIPPED",
        "DELIVERED",
        "CANCELLED",
        "ERROR",
    }
    assert ProviderOrderStatus.UNSUPPORTED not in STATUS_MAP.values()


@given(st.text().filter(lambda s: s not in {m.value for m in DeliverrOrderStatus}))
def test_an_unknown_status_is_unsupported(raw: str) -> None:
    assert map_status(raw) is ProviderOrderStatus.UNSUPPORTED


def test_every_seed_error_code_has_a_rule_with_the_seed_explanation() -> None:
    table = seed_errors()

    assert set(table) == {code.value for code in DeliverrErrorCode}
    assert set(ERROR_RULES) == set(DeliverrErrorCode)
    for code, explanation in table.items():
        assert ERROR_RULES[DeliverrErrorCode(code)].explanation == explanation


def test_only_waiting_errors_are_retried() -> None:
    retried = {code for code, rule in ERROR_RULES.items() if rule.outcome is Outcome.RETRY}

    assert retried == {
        DeliverrErrorCode.ORDER_SUBMITTED_TOO_EARLY,
        DeliverrErrorCode.ORDER_PREVIOUSLY_SEEN_ERROR,
    }


@pytest.mark.parametrize("code", list(DeliverrErrorCode), ids=str)
def test_error_for_a_seed_code_follows_its_rule(code: DeliverrErrorCode) -> None:
    failure = error_for(code.value, "ignored", context="create")

    if ERROR_RULES[code].outcome is Outcome.RETRY:
        assert isinstance(failure, Retriable)
        assert failure.after == ERROR_RULES[code].retry_after
    else:
        assert isinstance(failure, Permanent)
        assert (failure.reason, failure.code) == (ERROR_RULES[code].explanation, code.value)


@given(st.text(min_size=1).filter(lambda s: s not in {m.value for m in DeliverrErrorCode}))
def test_an_unknown_error_code_is_permanent_and_named(code: str) -> None:
    failure = error_for(code, None, context="create")

    assert isinstance(failure, Permanent)
    assert failure.code == code
    assert code in failure.reason


def _shipment(tracking: str | None, items: list[tuple[str, str, int]]) -> Shipment:
    return Shipment(
        trackingNumber=tracking,
        shippingCarrier="UPS",
        shippedTime=datetime(2024, 5, 2, 9, 0, tzinfo=UTC),
        warehouseId="WH1",
        shippedItems=[
            ShippedItem(externalProductId=sku, lineItemId=line, quantity=qty)
            for sku, line, qty in items
        ],
    )


@given(st.text(min_size=1), st.text(min_size=1))
def test_shipment_ids_are_stable_and_tell_packages_apart(first: str, second: str) -> None:
    a = _shipment(first, [("SKU-A", "l1", 1)])

    assert shipment_id_for("100", a) == shipment_id_for("100", _shipment(first, []))
    assert (shipment_id_for("100", a) == shipment_id_for("100", _shipment(second, []))) is (
        first == second
    )


def test_an_untracked_shipment_id_ignores_item_order() -> None:
    one = _shipment(None, [("SKU-A", "l1", 1), ("SKU-B", "l2", 2)])
    other = _shipment(None, [("SKU-B", "l2", 2), ("SKU-A", "l1", 1)])
    different = _shipment(None, [("SKU-A", "l1", 2)])

    assert shipment_id_for("100", one) == shipment_id_for("100", other)
    assert shipment_id_for("100", one) != shipment_id_for("100", different)


def test_items_with_nothing_in_the_package_are_not_lines() -> None:
    shipment = to_provider_shipment(
        "100", _shipment("T1", [("SKU-A", "l1", 2), ("SKU-B", "l2", 0)])
    )

    assert [(ln.sku, ln.line_id, ln.quantity) for ln in shipment.lines] == [("SKU-A", "l1", 2)]
    assert shipment.tracking_numbers == ("T1",)


def test_order_times_without_an_offset_are_read_as_utc() -> None:
    order = parse_order(
        json.dumps(
            {
                "orderId": "1",
                "status": "SHIPPED",
                "shipments": [
                    {
                        "trackingNumber": "T",
                        "shippedTime": "2024-05-02T09:00:00",
                        "shippedItems": [],
                    },
                    {
                        "trackingNumber": "U",
                        "shippedTime": "2024-05-02T11:00:00+02:00",
                        "shippedItems": [],
                    },
                ],
            }
        )
    )

    assert [s.shippedTime for s in order.shipments] == [
        datetime(2024, 5, 2, 9, 0, tzinfo=UTC),
        datetime(2024, 5, 2, 9, 0, tzinfo=UTC),
    ]


@given(st.decimals(allow_nan=False, allow_infinity=False, places=2))
def test_numbers_are_read_as_decimals_never_floats(value: Decimal) -> None:
    parsed = load_json(f'{{"amount": {value}}}')

    assert not isinstance(parsed["amount"], float)
    assert parsed["amount"] == value


def _described_enum(schema: str) -> set[str]:
    return set(CONTRACT.document["components"]["schemas"][schema]["enum"])


def test_order_statuses_are_exactly_those_deliverr_describes() -> None:
    assert {s.value for s in DeliverrOrderStatus} == _described_enum("ApiOrderStatus")


def test_every_package_status_deliverr_describes_is_decided() -> None:
    assert {s.value for s in ShipmentStatus} == _described_enum("ApiOrderShipmentStatus")
    assert set(PACKAGE_LEFT) == set(ShipmentStatus)


def _package(tracking: str, status: str) -> dict[str, object]:
    return {
        "trackingNumber": tracking,
        "shippingCarrier": "UPS",
        "shippingService": "UPS.GROUND",
        "shippedTime": "2024-05-02T09:00:00Z",
        "warehouseId": "ATL1FC",
        "status": status,
        "shippedItems": [
            {
                "externalProductId": "SKU-A",
                "productId": "DABCDEFGHIJ",
                "status": status,
                "quantityOrdered": 1,
                "quantity": 1,
                "lotNumber": "LOT-7",
            }
        ],
    }


def test_only_packages_that_left_the_warehouse_are_shipments() -> None:
    order = parse_order(
        json.dumps(
            {
                "orderId": "1",
                "status": "PARTIALLY_SHIPPED",
                "shipments": [_package(f"T-{s.value}", s.value) for s in ShipmentStatus],
            }
        )
    )

    report = to_fulfilment_status(order)

    assert report.status is ProviderOrderStatus.PARTIALLY_SHIPPED
    assert [s.tracking_numbers for s in report.shipments] == [
        ("T-PARTIALLY_SHIPPED",),
        ("T-SHIPPED",),
    ]
    # Deliverr reports lots and expiry dates, never serial numbers.
    assert all(line.serial_numbers == () for s in report.shipments for line in s.lines)


def test_a_package_in_a_status_deliverr_never_described_is_not_guessed() -> None:
    order = parse_order(
        json.dumps(
            {
                "orderId": "1",
                "status": "SHIPPED",
                "shipments": [_package("T1", "SHIPPED"), _package("T2", "LOST_IN_TRANSIT")],
            }
        )
    )

    report = to_fulfilment_status(order)

    assert report.status is ProviderOrderStatus.UNSUPPORTED
    assert report.raw_status == "package LOST_IN_TRANSIT"
    assert [s.tracking_numbers for s in report.shipments] == [("T1",)]


def test_a_status_update_names_deliverrs_order_id_only() -> None:
    event = StatusUpdateEvent.model_validate(
        {
            "eventId": "e1",
            "eventTime": "2024-05-02T09:00:00Z",
            "type": "ORDER_STATUS_UPDATE",
            "updateType": "SHIPPED",
            "oldStatus": "CREATED",
            "newStatus": "SHIPPED",
            "orderId": "100000001",
            "shipments": [_package("T1", "SHIPPED")],
        }
    )

    report = status_update_to_fulfilment(event)

    assert (report.provider_order_id, report.external_order_id) == ("100000001", None)
    assert report.status is ProviderOrderStatus.SHIPPED
    assert [s.shipment_id for s in report.shipments] == ["100000001:T1"]


def test_idempotency_keys_are_uuid4_drawn_from_order_body_and_round() -> None:
    body = create_order_body(make_request(), "Standard")
    key = idempotency_key("ord_01", body)

    assert uuid.UUID(key).version == 4
    assert re.fullmatch(
        CONTRACT.document["components"]["schemas"]["IdempotencyHeaderType"]["pattern"], key
    )
    assert key == idempotency_key("ord_01", dict(body))
    assert key != idempotency_key("ord_02", body)
    assert key != idempotency_key("ord_01", {**body, "shipMethod": "Expedited"})
    assert key != idempotency_key("ord_01", body, 1)


def test_an_address_is_cut_only_where_cutting_loses_no_destination() -> None:
    long_name = Address(
        name="N" * 40, company="C" * 31, line1="1 Way", city="Austin", country_code="US"
    )
    assert shipto_address(long_name).name == "N" * 35
    with pytest.raises(UnshippableAddress, match="street1"):
        shipto_address(replace(long_name, line1="x" * 51))
    with pytest.raises(UnshippableAddress, match="at least 3"):
        shipto_address(replace(long_name, name=" A ", company=None))
    assert shipto_address(replace(long_name, name="", company="ACME Ltd")).name == "ACME Ltd"
