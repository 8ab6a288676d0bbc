"""topi webhook verification (Standard Webhooks / Svix) and reading of the bare order."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import (
    ChannelOrderStatus,
    EventKind,
    MalformedPayload,
    Unauthenticated,
    WebhookIdentity,
)
from connectors.signatures import sign_standard_webhook
from connectors.topi import TopiWebhooks
from tests.connectors.topi.conftest import OLD_WEBHOOK_SECRET, WEBHOOK_SECRET, make_settings

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RECEIVED = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)

# The webhook payload as topi's order tag documents it: id, assets, metadata, offer_id,
# seller_offer_reference, status and shipping_address {name, line1, line2, postal_code, city,
# region, country_code}; asset values from the OpenAPI's Asset example.
CREATED_BODY = json.dumps(
    {
        "id": "739b63c2-9e58-4964-b38d-4ebb424de242",
        "assets": [
            {
                "id": "a1b63c2-9e58-4964-b38d-4ebb424de001",
                "product_id": "739b63c2-9e58-4964-b38d-4ebb424de242",
                "seller_product_references": [
                    {"reference": "123ab-5343", "source": "sap"},
                    {"reference": "LAPTOP-64", "source": "sku"},
                ],
                "status": "created",
                "title": "Pro Laptop 64GB",
            },
            {
                "id": "a1b63c2-9e58-4964-b38d-4ebb424de002",
                "product_id": "739b63c2-9e58-4964-b38d-4ebb424de242",
                "seller_product_references": [
                    {"reference": "123ab-5343", "source": "sap"},
                    {"reference": "LAPTOP-64", "source": "sku"},
                ],
                "status": "created",
                "title": "Pro Laptop 64GB",
            },
            {
                "id": "a1b63c2-9e58-4964-b38d-4ebb424de003",
                "product_id": "839b63c2-9e58-4964-b38d-4ebb424de243",
                "seller_product_references": [{"reference": "cable-1", "source": "sap"}],
                "status": "created",
                "title": "USB-C cable",
            },
        ],
        "metadata": {"tracking_number": "123456"},
        "offer_id": "639b63c2-9e58-4964-b38d-4ebb424de242",
        "seller_offer_reference": "OFFER-2025-0042",
        "status": "created",
        "shipping_address": {
            "name": "Felix Wolf",
            "line1": "10 Downing Street",
            "line2": "Flat 42",
            "postal_code": "10243",
            "city": "Munich",
            "region": "Bavaria",
            "country_code": "DE",
        },
    }
).encode()


def headers_for(
    body: bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    msg_id: str = "msg_2Lh9KJ7kV6bX",
    at: datetime = NOW,
    prefix: str = "svix-",
) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    return {
        f"{prefix}id": msg_id,
        f"{prefix}timestamp": timestamp,
        f"{prefix}signature": sign_standard_webhook(
            secret=secret, msg_id=msg_id, timestamp=timestamp, body=body
        ),
    }


def receiver(*secrets: str) -> TopiWebhooks:
    return TopiWebhooks(secrets or (WEBHOOK_SECRET,), clock=lambda: RECEIVED)


def test_svix_signed_webhook_is_accepted() -> None:
    receiver().authenticate(headers_for(CREATED_BODY), CREATED_BODY, NOW)


def test_standard_webhooks_header_names_are_accepted() -> None:
    receiver().authenticate(headers_for(CREATED_BODY, prefix="webhook-"), CREATED_BODY, NOW)


def test_header_names_are_case_insensitive() -> None:
    headers = {k.upper(): v for k, v in headers_for(CREATED_BODY).items()}
    receiver().authenticate(headers, CREATED_BODY, NOW)


def test_tampered_body_is_rejected() -> None:
    headers = headers_for(CREATED_BODY)
    with pytest.raises(Unauthenticated):
        receiver().authenticate(headers, CREATED_BODY.replace(b"Munich", b"Berlin"), NOW)


def test_signature_under_another_message_id_is_rejected() -> None:
    headers = headers_for(CREATED_BODY)
    headers["svix-id"] = "msg_other"
    with pytest.raises(Unauthenticated):
        receiver().authenticate(headers, CREATED_BODY, NOW)


def test_signature_from_an_unknown_secret_is_rejected() -> None:
    with pytest.raises(Unauthenticated):
        receiver().authenticate(
            headers_for(CREATED_BODY, secret=OLD_WEBHOOK_SECRET), CREATED_BODY, NOW
        )


def test_old_secret_still_verifies_while_both_are_configured_during_rotation() -> None:
    headers = headers_for(CREATED_BODY, secret=OLD_WEBHOOK_SECRET)
    receiver(WEBHOOK_SECRET, OLD_WEBHOOK_SECRET).authenticate(headers, CREATED_BODY, NOW)
    receiver(OLD_WEBHOOK_SECRET, WEBHOOK_SECRET).authenticate(
        headers_for(CREATED_BODY), CREATED_BODY, NOW
    )


def test_rotation_secrets_come_from_the_comma_separated_setting() -> None:
    settings = make_settings(webhook_secrets=f"{WEBHOOK_SECRET}, {OLD_WEBHOOK_SECRET}")
    assert settings.webhook_secret_values() == [WEBHOOK_SECRET, OLD_WEBHOOK_SECRET]
    rotated = TopiWebhooks(settings.webhook_secret_values())
    rotated.authenticate(headers_for(CREATED_BODY, secret=OLD_WEBHOOK_SECRET), CREATED_BODY, NOW)


def test_one_valid_signature_among_several_in_the_header_is_enough() -> None:
    headers = headers_for(CREATED_BODY)
    bogus = "v1," + base64.b64encode(b"x" * 32).decode()
    old = headers_for(CREATED_BODY, secret=OLD_WEBHOOK_SECRET)["svix-signature"]
    headers["svix-signature"] = f"{bogus} {old} v2,abc {headers['svix-signature']}"
    receiver().authenticate(headers, CREATED_BODY, NOW)


def test_header_of_only_wrong_signatures_is_rejected() -> None:
    headers = headers_for(CREATED_BODY)
    bogus = "v1," + base64.b64encode(b"x" * 32).decode()
    headers["svix-signature"] = f"{bogus} v1,not-base64!"
    with pytest.raises(Unauthenticated):
        receiver().authenticate(headers, CREATED_BODY, NOW)


def test_stale_timestamp_is_rejected() -> None:
    headers = headers_for(CREATED_BODY, at=NOW - timedelta(minutes=5, seconds=1))
    with pytest.raises(Unauthenticated):
        receiver().authenticate(headers, CREATED_BODY, NOW)


def test_future_timestamp_is_rejected() -> None:
    headers = headers_for(CREATED_BODY, at=NOW + timedelta(minutes=5, seconds=1))
    with pytest.raises(Unauthenticated):
        receiver().authenticate(headers, CREATED_BODY, NOW)


def test_timestamp_just_inside_the_tolerance_is_accepted() -> None:
    headers = headers_for(CREATED_BODY, at=NOW - timedelta(minutes=4, seconds=59))
    receiver().authenticate(headers, CREATED_BODY, NOW)


@pytest.mark.parametrize("missing", ["svix-id", "svix-timestamp", "svix-signature"])
def test_missing_signature_header_is_rejected(missing: str) -> None:
    headers = headers_for(CREATED_BODY)
    del headers[missing]
    with pytest.raises(Unauthenticated):
        receiver().authenticate(headers, CREATED_BODY, NOW)


def test_without_configured_secrets_every_webhook_is_rejected() -> None:
    with pytest.raises(Unauthenticated):
        TopiWebhooks([]).authenticate(headers_for(CREATED_BODY), CREATED_BODY, NOW)


@given(
    body=st.binary(max_size=2048), msg_id=st.from_regex(r"msg_[A-Za-z0-9]{1,24}", fullmatch=True)
)
def test_any_signed_body_verifies_and_any_flipped_byte_does_not(body: bytes, msg_id: str) -> None:
    headers = headers_for(body, msg_id=msg_id)
    receiver().authenticate(headers, body, NOW)
    tampered = body[:-1] + bytes([body[-1] ^ 0x01]) if body else b"\x00"
    with pytest.raises(Unauthenticated):
        receiver().authenticate(headers, tampered, NOW)


def test_identity_is_the_message_id_and_the_order_status() -> None:
    identity = receiver().identify(headers_for(CREATED_BODY, msg_id="msg_abc"), CREATED_BODY)
    assert identity == WebhookIdentity(external_id="msg_abc", event_type="order.created")


def test_created_webhook_is_a_new_order_with_lines_by_sku() -> None:
    hooks = TopiWebhooks([WEBHOOK_SECRET], sku_source="sku", clock=lambda: RECEIVED)
    event = hooks.parse(CREATED_BODY, WebhookIdentity("msg_abc", "order.created"))
    assert event.kind is EventKind.ORDER_PLACED
    assert event.channel_order_id == "739b63c2-9e58-4964-b38d-4ebb424de242"
    order = event.order
    assert order is not None
    assert order.status is ChannelOrderStatus.OPEN
    assert order.channel_status == "created"
    assert order.placed_at == RECEIVED
    assert order.attributes["seller_offer_reference"] == "OFFER-2025-0042"
    assert order.attributes["prices_known"] is False
    assert [(line.channel_line_id, line.sku, line.quantity) for line in order.lines] == [
        ("LAPTOP-64", "LAPTOP-64", 2),
        ("asset:a1b63c2-9e58-4964-b38d-4ebb424de003", None, 1),
    ]
    assert all(line.unit_price == Decimal("0.00") for line in order.lines)
    assert order.lines[0].attributes["asset_ids"] == [
        "a1b63c2-9e58-4964-b38d-4ebb424de001",
        "a1b63c2-9e58-4964-b38d-4ebb424de002",
    ]
    assert order.lines[1].attributes["reference"] == {"source": "sap", "reference": "cable-1"}
    address = order.shipping_address
    assert address is not None
    assert (address.name, address.line1, address.line2) == (
        "Felix Wolf",
        "10 Downing Street",
        "Flat 42",
    )
    assert (address.postal_code, address.city, address.region, address.country_code) == (
        "10243",
        "Munich",
        "Bavaria",
        "DE",
    )


def test_sku_source_decides_which_reference_is_the_sku() -> None:
    hooks = TopiWebhooks([WEBHOOK_SECRET], sku_source="sap", clock=lambda: RECEIVED)
    order = hooks.parse(CREATED_BODY, WebhookIdentity("m", "order.created")).order
    assert order is not None
    assert [(line.sku, line.quantity) for line in order.lines] == [
        ("123ab-5343", 2),
        ("cable-1", 1),
    ]


def _with_status(status: str) -> bytes:
    data = json.loads(CREATED_BODY)
    data["status"] = status
    return json.dumps(data).encode()


def test_canceled_webhook_cancels_the_order() -> None:
    event = receiver().parse(_with_status("canceled"), WebhookIdentity("m", "order.canceled"))
    assert event.kind is EventKind.ORDER_CANCELLED
    assert event.channel_order_id == "739b63c2-9e58-4964-b38d-4ebb424de242"
    assert event.order is not None and event.order.status is ChannelOrderStatus.CANCELLED


def test_completed_webhook_is_a_notice() -> None:
    event = receiver().parse(_with_status("completed"), WebhookIdentity("m", "order.completed"))
    assert event.kind is EventKind.ORDER_NOTICE
    assert event.order is not None and event.order.status is ChannelOrderStatus.SHIPPED


@pytest.mark.parametrize("status", ["confirmed", "partially_fulfilled", "refunded"])
def test_other_statuses_are_ignored_with_a_note(status: str) -> None:
    event = receiver().parse(_with_status(status), WebhookIdentity("m", f"order.{status}"))
    assert event.kind is EventKind.IGNORED
    assert status in event.note


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"id": "x"}', b'{"status": "created"}', b'{"status": 3}'],
)
def test_unreadable_body_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        receiver().parse(body, WebhookIdentity("m", "order.created"))


def test_created_order_without_address_lines_is_malformed() -> None:
    data = json.loads(CREATED_BODY)
    data["shipping_address"] = {"name": "Felix Wolf"}
    with pytest.raises(MalformedPayload):
        receiver().parse(json.dumps(data).encode(), WebhookIdentity("m", "order.created"))
