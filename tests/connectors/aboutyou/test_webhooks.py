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
    event = parse(seed_as("order.created", fulfillment_type="fulfillment_by_marketplace", id=9))
    assert event.kind is EventKind.IGNORED
    assert event.order is None
    assert event.channel_order_id == "9"
    assert "fulfillment_by_marketplace" in event.note


def test_unknown_fulfillment_type_is_not_taken_for_dropshipping() -> None:
    event = parse(seed_as("order.created", fulfillment_type="crossdocking"))
    assert event.kind is EventKind.IGNORED
    assert "crossdocking" in event.note


def test_items_cancelled_names_the_cancelled_lines() -> None:
    message = {
        "order_id": 1000,
        "order_number": "AY-1000",
        "order_items": [{"id": 5001, "status": "cancelled"}, {"id": 5002, "status": "cancelled"}],
    }
    event = parse(envelope("order_items.cancelled", message))
    assert event.kind is EventKind.LINES_CANCELLED
    assert event.channel_order_id == "1000"
    assert event.line_ids == ("5001", "5002")


@pytest.mark.parametrize("name", ["order_items.shipped", "order_items.returned"])
def test_shipped_and_returned_items_are_notices(name: str) -> None:
    message = {
        "order_number": "AY-7",
        "order_items": [{"id": 3, "status": "shipped", "shipment_tracking_key": "T1"}],
    }
    event = parse(envelope(name, message))
    assert event.kind is EventKind.ORDER_NOTICE
    assert event.channel_order_id == "AY-7"
    assert event.line_ids == ("3",)
    assert event.detail["order_items"][0]["shipment_tracking_key"] == "T1"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"event": "order.created"}',
        envelope("order.created", {"order_number": "x"}),
        envelope("order_items.cancelled", {"order_id": 1, "order_items": []}),
        envelope("order_items.cancelled", {"order_items": [{"id": 1}]}),
    ],
)
def test_unreadable_bodies_are_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        receiver.parse(body, WebhookIdentity("1", "x"))


def test_simulator_webhooks_authenticate_and_parse_with_exact_money() -> None:
    sim = AboutYouSimulator(API_KEY, WEBHOOK_KEY)
    order_id = sim.create_order("SKU-1", "SKU-2", prices={"SKU-1": Decimal("19.99")})
    sent = sim.sent_webhooks[-1]
    headers = {k.lower(): v for k, v in sent.headers.items()}

    receiver.authenticate(headers, sent.body, NOW)
    event = parse(sent.body)

    assert b'"price_with_tax":19.99' in sent.body
    assert event.kind is EventKind.ORDER_PLACED
    assert event.order is not None
    assert event.channel_order_id == str(order_id)
    assert [line.unit_price for line in event.order.lines] == [Decimal("19.99"), Decimal("49.95")]
    assert event.order.total_amount == Decimal("69.94")
