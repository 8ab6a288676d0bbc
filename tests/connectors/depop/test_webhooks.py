"""`X-Depop-Signature` verification: only a fresh, untampered, correctly keyed body passes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import Unauthenticated
from connectors.depop import DepopWebhooks
from connectors.depop.spec import OPENAPI
from connectors.signatures import sign_timestamped_hex

from .conftest import WEBHOOK_SECRET, make_settings
from .seed_payloads import ORDER_NEW_WEBHOOK

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def _headers(body: bytes, *, at: datetime = NOW, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    return {
        "x-depop-timestamp": timestamp,
        "x-depop-signature": sign_timestamped_hex(secret=secret, timestamp=timestamp, body=body),
    }


@pytest.fixture
def receiver() -> DepopWebhooks:
    return DepopWebhooks(make_settings())


def test_valid_signature_is_accepted(receiver: DepopWebhooks) -> None:
    receiver.authenticate(_headers(ORDER_NEW_WEBHOOK), ORDER_NEW_WEBHOOK, NOW)


def test_header_names_are_matched_whatever_their_case(receiver: DepopWebhooks) -> None:
    headers = {k.title(): v for k, v in _headers(ORDER_NEW_WEBHOOK).items()}
    receiver.authenticate(headers, ORDER_NEW_WEBHOOK, NOW)


def test_tampered_body_is_rejected(receiver: DepopWebhooks) -> None:
    headers = _headers(ORDER_NEW_WEBHOOK)
    tampered = ORDER_NEW_WEBHOOK.replace(b'"50.99"', b'"0.99"')
    with pytest.raises(Unauthenticated):
        receiver.authenticate(headers, tampered, NOW)


def test_wrong_secret_is_rejected(receiver: DepopWebhooks) -> None:
    with pytest.raises(Unauthenticated):
        receiver.authenticate(
            _headers(ORDER_NEW_WEBHOOK, secret="not-the-secret"), ORDER_NEW_WEBHOOK, NOW
        )


@pytest.mark.parametrize("offset", [301, -301], ids=["301s_old", "301s_ahead"])
def test_timestamp_outside_five_minutes_is_rejected(receiver: DepopWebhooks, offset: int) -> None:
    headers = _headers(ORDER_NEW_WEBHOOK, at=NOW - timedelta(seconds=offset))
    with pytest.raises(Unauthenticated):
        receiver.authenticate(headers, ORDER_NEW_WEBHOOK, NOW)


@pytest.mark.parametrize("offset", [300, -300])
def test_timestamp_at_the_edge_of_the_tolerance_is_accepted(
    receiver: DepopWebhooks, offset: int
) -> None:
    headers = _headers(ORDER_NEW_WEBHOOK, at=NOW - timedelta(seconds=offset))
    receiver.authenticate(headers, ORDER_NEW_WEBHOOK, NOW)


@pytest.mark.parametrize("missing", ["x-depop-signature", "x-depop-timestamp"])
def test_missing_header_is_rejected(receiver: DepopWebhooks, missing: str) -> None:
    headers = _headers(ORDER_NEW_WEBHOOK)
    del headers[missing]
    with pytest.raises(Unauthenticated):
        receiver.authenticate(headers, ORDER_NEW_WEBHOOK, NOW)


def test_non_hex_signature_is_rejected(receiver: DepopWebhooks) -> None:
    headers = _headers(ORDER_NEW_WEBHOOK)
    headers["x-depop-signature"] = "zz" + headers["x-depop-signature"][2:]
    with pytest.raises(Unauthenticated):
        receiver.authenticate(headers, ORDER_NEW_WEBHOOK, NOW)


def test_signature_over_another_timestamp_is_rejected(receiver: DepopWebhooks) -> None:
    headers = _headers(ORDER_NEW_WEBHOOK)
    headers["x-depop-timestamp"] = str(int(NOW.timestamp()) + 1)
    with pytest.raises(Unauthenticated):
        receiver.authenticate(headers, ORDER_NEW_WEBHOOK, NOW)


def test_unconfigured_secret_rejects_everything() -> None:
    receiver = DepopWebhooks(make_settings(webhook_secret=None))
    with pytest.raises(Unauthenticated, match="DEPOP_WEBHOOK_SECRET"):
        receiver.authenticate(_headers(ORDER_NEW_WEBHOOK), ORDER_NEW_WEBHOOK, NOW)


@given(body=st.binary(max_size=512), secret=st.text(min_size=1, max_size=40), flip=st.integers(0))
def test_signature_round_trip_and_any_flipped_byte_fails(
    body: bytes, secret: str, flip: int
) -> None:
    receiver = DepopWebhooks(make_settings(webhook_secret=secret))
    headers = _headers(body, secret=secret)
    receiver.authenticate(headers, body, NOW)
    if body:
        i = flip % len(body)
        changed = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        with pytest.raises(Unauthenticated):
            receiver.authenticate(headers, changed, NOW)


def test_the_order_webhook_as_depops_openapi_documents_it_is_read() -> None:
    """Depop's description sends the order with `fee_amount`, no fee breakdown, no creation
    time, and the country as `country`."""
    hook = OPENAPI.document["webhooks"]["newOrder"]["post"]["requestBody"]
    body = json.dumps(hook["content"]["application/json"]["example"]).encode()
    receiver = DepopWebhooks(make_settings())
    event = receiver.parse(body, receiver.identify({}, body))
    assert event.order is not None and event.order.shipping_address is not None
    assert event.order.shipping_address.country_code == "GB"
    assert event.order.placed_at == datetime(2025, 1, 1, tzinfo=UTC)
