"""The ABOUT YOU webhook receiver: key check, identity and canonical events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.aboutyou import AboutYouWebhooks
from connectors.aboutyou.simulator import AboutYouSimulator
from connectors.base import (
    ChannelOrderStatus,
    EventKind,
    MalformedPayload,
    Unauthenticated,
    WebhookIdentity,
)

from .factories import API_KEY, SEED_BODY, WEBHOOK_KEY

NOW = datetime(2025, 9, 18, 17, 5, 2, tzinfo=UTC)
receiver = AboutYouWebhooks(SecretStr(WEBHOOK_KEY))


def envelope(event: str, message: Any, message_id: int = 42) -> bytes:
    body = {"id": message_id, "event": event, "timestamp": "2025-09-18T17:05:02.525Z"}
    return json.dumps({**body, "subscription_id": 3, "message": message}).encode()


def seed_as(event: str, **changes: Any) -> bytes:
    data = json.loads(SEED_BODY)
    data["event"] = event
    data["message"].update(changes)
    return json.dumps(data).encode()


def parse(body: bytes) -> Any:
    return receiver.parse(body, receiver.identify({}, body))


def test_matching_key_is_accepted() -> None:
    receiver.authenticate({"x-api-key": WEBHOOK_KEY}, SEED_BODY, NOW)


def test_key_header_is_found_whatever_its_case() -> None:
    receiver.authenticate({"X-API-Key": WEBHOOK_KEY}, SEED_BODY, NOW)


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": ""}, {"x-api-key": WEBHOOK_KEY + "x"}, {"x-api-key": API_KEY}],
)
def test_wrong_or_missing_key_is_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(Unauthenticated):
        receiver.authenticate(headers, SEED_BODY, NOW)


def test_nothing_is_accepted_while_the_webhook_key_is_unset() -> None:
    with pytest.raises(Unauthenticated):
        AboutYouWebhooks(None).authenticate({"x-api-key": ""}, SEED_BODY, NOW)


@given(st.text(min_size=1, max_size=64), st.text(min_size=1, max_size=64))
def test_only_the_exact_key_authenticates(expected: str, given_key: str) -> None:
    webhooks = AboutYouWebhooks(SecretStr(expected))
    if given_key == expected:
        webhooks.authenticate({"x-api-key": given_key}, b"{}", NOW)
    else:
        with pytest.raises(Unauthenticated):
            webhooks.authenticate({"x-api-key": given_key}, b"{}", NOW)


def test_identity_is_the_message_id_and_event() -> None:
    assert receiver.identify({}, SEED_BODY) == WebhookIdentity(external_id="1", event_type="text")


def test_seed_example_verbatim_is_an_unknown_event_and_ignored() -> None:
    # The seed's example carries the placeholder event "text", which is not an event we know.
    event = parse(SEED_BODY)
    assert event.kind is EventKind.IGNORED
    assert "text" in event.note


def test_seed_order_created_is_a_placed_order() -> None:
    event = parse(seed_as("order.created"))
    assert event.kind is EventKind.ORDER_PLACED
    assert event.event_type == "order.created"
    assert event.channel_order_id == "text"
    assert event.order is not None
    assert event.order.status is ChannelOrderStatus.OPEN
    assert [line.channel_line_id for line in event.order.lines] == ["1"]


def test_marketplace_fulfilled_order_is_ignored_with_a_note() -> None:
    event = parse(
        seed_as("order.created", fulfillment_type="fulfillment_by_marketplace", order_number="9")
    )
    assert event.kind is EventKind.IGNORED
    assert event.order is None
    assert event.channel_order_id == "9"
    assert "fulfillment_by_marketplace" in event.note


def test_unknown_fulfillment_type_is_not_taken_for_dropshipping() -> None:
    event = parse(seed_as("order.created", fulfillment_type="crossdocking"))
    assert event.kind is EventKind.IGNORED
    assert "crossdocking" in event.note


def shipment_message(*items: dict[str, Any], **keys: str) -> dict[str, Any]:
    """The documented `message` of the order_items.* events: a shipment, no order number."""
    return {"items": list(items), **keys}


def test_items_cancelled_names_the_cancelled_lines_and_no_order() -> None:
    message = shipment_message(
        {"id": 5001, "sku": "A", "status": "cancelled", "price_with_tax": 4995},
        {"id": 5002, "sku": "B", "status": "cancelled", "price_with_tax": 4995},
    )
    event = parse(envelope("order_items.cancelled", message))
    assert event.kind is EventKind.LINES_CANCELLED
    assert event.channel_order_id is None  # the hub finds the order by its lines
    assert event.line_ids == ("5001", "5002")


@pytest.mark.parametrize("name", ["order_items.shipped", "order_items.returned"])
def test_shipped_and_returned_items_are_notices_with_the_shipment(name: str) -> None:
    message = shipment_message(
        {"id": 3, "status": "shipped", "shipment_tracking_key": "T1"},
        carrier_key="DHL",
        tracking_key="T1",
        return_tracking_key="R1",
    )
    event = parse(envelope(name, message))
    assert event.kind is EventKind.ORDER_NOTICE
    assert event.line_ids == ("3",)
    assert event.detail["tracking_key"] == "T1"
    assert event.detail["return_tracking_key"] == "R1"
    assert event.detail["order_items"][0]["shipment_tracking_key"] == "T1"


def test_an_order_number_in_an_item_event_is_used_when_present() -> None:
    message = {**shipment_message({"id": 3}), "order_number": "AY-7"}
    assert parse(envelope("order_items.cancelled", message)).channel_order_id == "AY-7"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("order.updated", "third-party clients report it"),
        ("order.cancelled", "third-party clients report it"),
        ("stock.updated", "third-party clients report it"),
        ("order_items.lost", "not one ABOUT YOU documents"),
    ],
)
def test_undocumented_events_are_ignored_with_the_reason(name: str, why: str) -> None:
    order = json.loads(SEED_BODY)["message"]
    event = parse(envelope(name, order))
    assert event.kind is EventKind.IGNORED
    assert name in event.note
    assert why in event.note


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"event": "order.created"}',
        envelope("order.created", {"order_number": "x"}),
        envelope("order_items.cancelled", {"items": []}),
        envelope("order_items.cancelled", {"order_items": [{"id": 1}]}),
        envelope("order_items.shipped", {"items": [{"sku": "no id"}]}),
    ],
)
def test_unreadable_bodies_are_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        receiver.parse(body, WebhookIdentity("1", "x"))


def test_simulator_webhooks_authenticate_and_parse_with_exact_money() -> None:
    sim = AboutYouSimulator(API_KEY, WEBHOOK_KEY)
    number = sim.create_order("SKU-1", "SKU-2", prices={"SKU-1": Decimal("19.99")})
    sent = sim.sent_webhooks[-1]
    headers = {k.lower(): v for k, v in sent.headers.items()}

    receiver.authenticate(headers, sent.body, NOW)
    event = parse(sent.body)

    assert b'"price_with_tax":1999' in sent.body
    assert event.kind is EventKind.ORDER_PLACED
    assert event.order is not None
    assert event.channel_order_id == number
    assert [line.unit_price for line in event.order.lines] == [Decimal("19.99"), Decimal("49.95")]
    assert event.order.total_amount == Decimal("69.94")
