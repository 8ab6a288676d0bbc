"""Flexport's webhook authentication (Basic or a named header token), identity and reading."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from connectors.base import EventKind, MalformedPayload, Unauthenticated
from connectors.flexport import FlexportWebhooks
from connectors.flexport.config import WebhookAuth
from tests.connectors.flexport.conftest import WEBHOOK_TOKEN, make_settings

NOW = datetime(2026, 11, 30, tzinfo=UTC)
EVENT = {
    "logisticsAccountId": "acct",
    "logisticsEventId": 981,
    "logisticsEventType": "Shipment.Created",
    "logisticsEventTime": "2026-11-30T10:00:00Z",
    "id": "s-1",
    "orderId": 127405472,
    "externalOrderId": "ord_1",
}


def _basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def basic_receiver() -> FlexportWebhooks:
    return FlexportWebhooks(
        make_settings(
            webhook_auth=WebhookAuth.BASIC_AUTH,
            webhook_username="flexport",
            webhook_password=SecretStr("s3cret"),
        )
    )


def test_a_token_in_the_named_header_passes_and_nothing_else_does() -> None:
    receiver = FlexportWebhooks(make_settings(webhook_token_header="X-Hook-Key"))
    receiver.authenticate({"x-hook-key": WEBHOOK_TOKEN}, b"{}", NOW)
    for headers in ({}, {"x-hook-key": "wrong"}, {"x-flexport-token": WEBHOOK_TOKEN}):
        with pytest.raises(Unauthenticated):
            receiver.authenticate(headers, b"{}", NOW)


def test_basic_auth_passes_with_both_parts_right_only() -> None:
    receiver = basic_receiver()
    receiver.authenticate(_basic("flexport", "s3cret"), b"{}", NOW)
    bad = [
        _basic("flexport", "wrong"),
        _basic("someone", "s3cret"),
        {"authorization": "Bearer s3cret"},
        {"authorization": "Basic not-base64!"},
        {},
    ]
    for headers in bad:
        with pytest.raises(Unauthenticated):
            receiver.authenticate(headers, b"{}", NOW)


def test_without_configured_credentials_every_delivery_is_refused() -> None:
    with pytest.raises(Unauthenticated):
        FlexportWebhooks(make_settings(webhook_token=None)).authenticate({}, b"{}", NOW)
    unset = FlexportWebhooks(make_settings(webhook_auth=WebhookAuth.BASIC_AUTH))
    with pytest.raises(Unauthenticated):
        unset.authenticate(_basic("", ""), b"{}", NOW)


def test_an_order_event_with_numeric_ids_names_the_order_to_read() -> None:
    receiver = FlexportWebhooks(make_settings())
    body = json.dumps(EVENT).encode()
    identity = receiver.identify({}, body)
    assert (identity.external_id, identity.event_type) == ("981", "Shipment.Created")
    event = receiver.parse(body, identity)
    assert event.kind is EventKind.FULFILMENT_UPDATE
    assert event.channel_order_id == "127405472"
    assert event.fulfilment is None


def test_other_event_types_are_ignored_and_unreadable_ones_refused() -> None:
    receiver = FlexportWebhooks(make_settings())
    body = json.dumps({**EVENT, "logisticsEventType": "Inventory.Adjusted"}).encode()
    event = receiver.parse(body, receiver.identify({}, body))
    assert event.kind is EventKind.IGNORED
    with pytest.raises(MalformedPayload):
        receiver.identify({}, b"not json")
    without_order = json.dumps({k: v for k, v in EVENT.items() if k != "orderId"}).encode()
    with pytest.raises(MalformedPayload):
        receiver.parse(without_order, receiver.identify({}, without_order))
