"""Deliverr's ORDER_STATUS_UPDATE webhooks: token, identity, canonical event, delivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import (
    EventKind,
    MalformedPayload,
    ProviderOrderStatus,
    Unauthenticated,
    WebhookIdentity,
)
from connectors.deliverr import DeliverrProvider, DeliverrWebhooks
from connectors.deliverr.simulator import DeliverrSimulator
from connectors.deliverr.spec import webhook_problems

from .conftest import WEBHOOK_TOKEN, Receiver, make_request, make_settings

NOW = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)

# An OrderStatusWebhookEvent as Deliverr's description has it, with one package: no
# externalOrderId, the order named by Deliverr's orderId.
EVENT = {
    "eventId": "evt-1",
    "eventTime": "2024-05-02T09:05:00Z",
    "type": "ORDER_STATUS_UPDATE",
    "updateType": "SHIPPED",
    "oldStatus": "CREATED",
    "newStatus": "SHIPPED",
    "orderId": "100000001",
    "shipments": [
        {
            "trackingNumber": "1Z999",
            "shippingCarrier": "UPS",
            "shippingService": "UPS.GROUND",
            "shippedTime": "2024-05-02T09:00:00Z",
            "trackingUrl": "https://track.example/1Z999",
            "warehouseId": "ATL1FC",
            "status": "SHIPPED",
            "shippedItems": [
                {
                    "externalProductId": "SKU-A",
                    "productId": "D123456789A",
                    "lineItemId": "line-1",
                    "status": "SHIPPED",
                    "quantityOrdered": 1,
                    "quantity": 1,
                }
            ],
        }
    ],
}
BODY = json.dumps(EVENT).encode()


def test_the_example_event_is_one_deliverr_describes() -> None:
    assert webhook_problems(BODY) == []


@pytest.fixture
def webhooks() -> DeliverrWebhooks:
    return DeliverrWebhooks(make_settings())


def test_the_configured_token_is_accepted(webhooks: DeliverrWebhooks) -> None:
    webhooks.authenticate({"x-deliverr-token": WEBHOOK_TOKEN}, BODY, NOW)


def test_a_header_in_its_original_case_is_found(webhooks: DeliverrWebhooks) -> None:
    webhooks.authenticate({"X-Deliverr-Token": WEBHOOK_TOKEN}, BODY, NOW)


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-deliverr-token": ""}, {"x-deliverr-token": "wrong"}, {"x-other": WEBHOOK_TOKEN}],
    ids=["missing", "empty", "wrong", "other-header"],
)
def test_a_missing_or_wrong_token_is_rejected(
    webhooks: DeliverrWebhooks, headers: dict[str, str]
) -> None:
    with pytest.raises(Unauthenticated):
        webhooks.authenticate(headers, BODY, NOW)


def test_the_header_name_comes_from_the_settings() -> None:
    webhooks = DeliverrWebhooks(make_settings(webhook_header="X-Custom-Auth"))

    webhooks.authenticate({"x-custom-auth": WEBHOOK_TOKEN}, BODY, NOW)
    with pytest.raises(Unauthenticated):
        webhooks.authenticate({"x-deliverr-token": WEBHOOK_TOKEN}, BODY, NOW)


def test_without_a_configured_token_nothing_is_accepted() -> None:
    webhooks = DeliverrWebhooks(make_settings(webhook_token=None))

    with pytest.raises(Unauthenticated):
        webhooks.authenticate({"x-deliverr-token": ""}, BODY, NOW)


@given(st.text(min_size=1), st.text(min_size=1))
def test_only_the_exact_token_authenticates(expected: str, given_token: str) -> None:
    webhooks = DeliverrWebhooks(make_settings(webhook_token=expected))

    webhooks.authenticate({"x-deliverr-token": expected}, BODY, NOW)
    if given_token != expected:
        with pytest.raises(Unauthenticated):
            webhooks.authenticate({"x-deliverr-token": given_token}, BODY, NOW)


def test_identify_reads_the_event_id_and_type(webhooks: DeliverrWebhooks) -> None:
    assert webhooks.identify({}, BODY) == WebhookIdentity("evt-1", "ORDER_STATUS_UPDATE")


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", json.dumps({**EVENT, "eventId": None}).encode(), b'{"eventId": "e"}'],
    ids=["not-json", "not-object", "no-event-id", "no-type"],
)
def test_an_unidentifiable_body_is_malformed(webhooks: DeliverrWebhooks, body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        webhooks.identify({}, body)


def test_a_status_update_becomes_a_fulfilment_update(webhooks: DeliverrWebhooks) -> None:
    event = webhooks.parse(BODY, webhooks.identify({}, BODY))

    assert event.kind is EventKind.FULFILMENT_UPDATE
    assert event.fulfilment is not None
    assert event.fulfilment.provider_order_id == "100000001"
    assert event.fulfilment.external_order_id is None
    assert event.fulfilment.status is ProviderOrderStatus.SHIPPED
    assert event.fulfilment.raw_status == "SHIPPED"
    [shipment] = event.fulfilment.shipments
    assert shipment.shipment_id == "100000001:1Z999"
    assert shipment.carrier == "UPS"
    assert shipment.service == "UPS.GROUND"
    assert shipment.tracking_numbers == ("1Z999",)
    assert shipment.tracking_url == "https://track.example/1Z999"
    assert shipment.shipped_at == datetime(2024, 5, 2, 9, 0, tzinfo=UTC)
    [line] = shipment.lines
    assert (line.sku, line.line_id, line.quantity) == ("SKU-A", "line-1", 1)
    assert event.detail["old_status"] == "CREATED"


def test_an_external_order_id_in_the_body_is_not_read(webhooks: DeliverrWebhooks) -> None:
    """Deliverr's event has none; the hub finds its order by Deliverr's orderId."""
    body = json.dumps({**EVENT, "externalOrderId": "hub-order-1"}).encode()

    event = webhooks.parse(body, webhooks.identify({}, body))

    assert event.fulfilment is not None
    assert event.fulfilment.external_order_id is None


def test_an_unknown_new_status_is_unsupported_not_guessed(webhooks: DeliverrWebhooks) -> None:
    body = json.dumps({**EVENT, "newStatus": "LOST_IN_SPACE"}).encode()

    event = webhooks.parse(body, webhooks.identify({}, body))

    assert event.fulfilment is not None
    assert event.fulfilment.status is ProviderOrderStatus.UNSUPPORTED


def test_another_event_type_is_ignored(webhooks: DeliverrWebhooks) -> None:
    body = json.dumps({**EVENT, "type": "INBOUND_STATUS_UPDATE"}).encode()

    event = webhooks.parse(body, webhooks.identify({}, body))

    assert event.kind is EventKind.IGNORED
    assert "INBOUND_STATUS_UPDATE" in event.note


def test_a_status_update_without_an_order_id_is_malformed(webhooks: DeliverrWebhooks) -> None:
    body = json.dumps({k: v for k, v in EVENT.items() if k != "orderId"}).encode()

    with pytest.raises(MalformedPayload):
        webhooks.parse(body, webhooks.identify({}, body))


def test_simulated_shipments_arrive_as_one_authenticated_webhook_once_all_shipped(
    provider: DeliverrProvider, sim: DeliverrSimulator, receiver: Receiver
) -> None:
    order_id = provider.create_order(make_request())

    sim.ship(order_id, [("SKU-A", 2)], tracking_number="T-1")
    assert receiver.events == []  # Deliverr sends no webhook for a partial shipment
    sim.ship(order_id, tracking_number="T-2")

    assert receiver.rejected == 0
    [shipped] = [e.fulfilment for e in receiver.events if e.fulfilment]
    assert shipped.status is ProviderOrderStatus.SHIPPED
    assert [s.shipment_id for s in shipped.shipments] == [f"{order_id}:T-1", f"{order_id}:T-2"]


def test_webhooks_and_polls_name_a_package_the_same_way(
    provider: DeliverrProvider, sim: DeliverrSimulator, receiver: Receiver
) -> None:
    order_id = provider.create_order(make_request())
    sim.ship(order_id)

    pushed = receiver.events[-1].fulfilment
    polled = provider.get_order(order_id)

    assert pushed is not None
    assert pushed.shipments == polled.shipments


def test_a_redelivered_webhook_keeps_its_event_id_and_shipment_ids(
    provider: DeliverrProvider, sim: DeliverrSimulator, receiver: Receiver
) -> None:
    sim.ship(provider.create_order(make_request()))
    original = sim.sent_webhooks[-1]

    sim.deliver(original.body, original.headers)

    assert receiver.event_ids[0] == receiver.event_ids[1]
    assert receiver.events[0] == receiver.events[1]


def test_creation_webhooks_wait_for_a_flush_so_shipped_can_arrive_first(
    provider: DeliverrProvider, sim: DeliverrSimulator, receiver: Receiver
) -> None:
    order_id = provider.create_order(make_request())
    sim.ship(order_id)

    statuses = sim.flush_webhooks()

    assert statuses == [200]
    assert [e.fulfilment.raw_status for e in receiver.events if e.fulfilment] == [
        "SHIPPED",
        "CREATED",
    ]


def test_webhooks_sent_with_another_token_are_rejected(
    provider: DeliverrProvider, sim: DeliverrSimulator, receiver: Receiver
) -> None:
    sim.webhook_token = "not-the-configured-one"

    sim.ship(provider.create_order(make_request()))

    assert receiver.rejected == 1
    assert receiver.events == []
    assert sim.sent_webhooks[-1].status == 401
