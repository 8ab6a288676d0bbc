"""How the provider classifies Flexport's answers (RFC 7807 problems, 429 with Retry-After,
5xx, 401, 423) and reads what Flexport reports: ids as strings or numbers, tracking per
package, statuses it does not know."""

from __future__ import annotations

import json

import pytest

from connectors.base import Permanent, ProviderOrderStatus, Retriable
from connectors.flexport import FlexportProvider
from connectors.flexport.simulator import FlexportSimulator
from connectors.flexport.transformers import parse_order, to_fulfilment_status
from tests.connectors.flexport.conftest import make_request


def test_a_429_is_retriable_after_the_seconds_flexport_asks_for(
    sim: FlexportSimulator, provider: FlexportProvider
) -> None:
    ref = provider.create_order(make_request("ord_1"))
    sim.throttle_next(7)
    with pytest.raises(Retriable) as caught:
        provider.get_order(ref)
    assert caught.value.after == 7
    assert provider.get_order(ref).provider_order_id == ref


def test_a_5xx_is_retriable_with_the_problems_detail_kept(
    sim: FlexportSimulator, provider: FlexportProvider
) -> None:
    sim.fail_next_with_problem(503, "warehouse system maintenance")
    with pytest.raises(Retriable) as caught:
        provider.create_order(make_request("ord_2"))
    assert "warehouse system maintenance" in caught.value.reason
    assert len(sim.orders) == 0


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [(401, "unauthenticated", "new token"), (423, "locked", "locked"), (403, "forbidden", "scope")],
)
def test_refusals_are_permanent_with_title_and_detail(
    sim: FlexportSimulator, provider: FlexportProvider, status: int, code: str, words: str
) -> None:
    ref = provider.create_order(make_request("ord_3"))
    sim.fail_next_with_problem(status, f"detail for {status}")
    with pytest.raises(Permanent) as caught:
        provider.get_order(ref)
    assert caught.value.code == code
    assert words in caught.value.reason
    assert f"detail for {status}" in caught.value.reason


def test_numeric_ids_and_per_package_tracking_are_read() -> None:
    body = {
        "id": 127405472,
        "externalOrderId": "ord_9",
        "address": {},
        "lineItems": [{"logisticsSku": "DA", "quantity": 2}],
        "state": {"internalStatus": "CREATED", "fulfillmentStatus": "ROUTING_IN_PROGRESS"},
        "shipments": [
            {
                "id": 55,
                "status": "SHIPPED",
                "warehouseId": "W",
                "lineItems": [],
                "packages": [
                    {
                        "id": 9,
                        "lineItems": [{"logisticsSku": "DA", "quantity": 1}],
                        "label": {"carrier": "PASSPORT", "trackingCode": "P1"},
                    },
                    {"id": 10, "lineItems": [{"logisticsSku": "DA", "quantity": 1}]},
                ],
            }
        ],
    }
    status = to_fulfilment_status(parse_order(json.dumps(body)), {"DA": "SKU-A"})
    assert status.provider_order_id == "127405472"
    assert status.status is ProviderOrderStatus.PARTIALLY_SHIPPED
    (package,) = status.shipments  # the unlabelled package has not left
    assert (package.shipment_id, package.carrier, package.tracking_numbers) == (
        "127405472:9",
        "PASSPORT",
        ("P1",),
    )
    assert [(line.sku, line.quantity) for line in package.lines] == [("SKU-A", 1)]


def test_a_shipment_status_flexport_added_later_is_unsupported_not_guessed() -> None:
    body = {
        "id": "1",
        "state": {"internalStatus": "CREATED"},
        "shipments": [{"id": "s", "status": "LOST_IN_SPACE", "packages": []}],
    }
    status = to_fulfilment_status(parse_order(json.dumps(body)), {})
    assert status.status is ProviderOrderStatus.UNSUPPORTED
    assert status.raw_status == "shipment LOST_IN_SPACE"
    unknown = to_fulfilment_status(
        parse_order(json.dumps({"id": "2", "state": {"internalStatus": "HELD"}})), {}
    )
    assert unknown.status is ProviderOrderStatus.UNSUPPORTED
