"""Flexport's webhooks: authenticated the way the subscription was made, identified by
`logisticsEventId`, read as "this order changed" (the events carry ids only).

Flexport signs nothing: the subscriber picks what it sends (`authMethod`): HTTP Basic with a
username and password, or a token in a header it names. Both are compared in constant time.
A delivery is retried by Flexport for about a day; the hub's dedupe on `logisticsEventId`
makes every repeat a no-op.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from datetime import datetime

from pydantic import ValidationError

from connectors.base import (
    ChannelEvent,
    EventKind,
    MalformedPayload,
    Unauthenticated,
    WebhookIdentity,
)
from connectors.flexport.config import FlexportSettings, WebhookAuth
from connectors.flexport.transformers import ORDER_EVENT_TYPES, WebhookEnvelope, load_json
from connectors.signatures import verify_static_token


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _envelope(body: bytes) -> WebhookEnvelope:
    try:
        return WebhookEnvelope.model_validate(load_json(body))
    except (ValueError, ValidationError) as exc:
        raise MalformedPayload(f"unreadable Flexport webhook: {exc}") from exc


class FlexportWebhooks:
    """Verifies and reads Flexport's webhooks (a `WebhookReceiver`)."""

    def __init__(self, settings: FlexportSettings) -> None:
        self._auth = settings.webhook_auth
        self._username = settings.webhook_username or ""
        self._password = (
            settings.webhook_password.get_secret_value() if settings.webhook_password else ""
        )
        self._token = settings.webhook_token.get_secret_value() if settings.webhook_token else ""
        self._token_header = settings.webhook_token_header

    def authenticate(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        if self._auth is WebhookAuth.TOKEN:
            if not self._token:
                raise Unauthenticated("FLEXPORT_WEBHOOK_TOKEN is not set")
            verify_static_token(expected=self._token, given=_header(headers, self._token_header))
            return
        if not self._username or not self._password:
            raise Unauthenticated("FLEXPORT_WEBHOOK_USERNAME and PASSWORD are not set")
        given = _header(headers, "authorization") or ""
        scheme, _, encoded = given.partition(" ")
        if scheme.lower() != "basic":
            raise Unauthenticated("no basic credentials")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("unreadable basic credentials") from None
        # Both compared whatever the first gives, so timing tells nothing of which failed.
        matched = hmac.compare_digest(user.encode(), self._username.encode())
        matched &= hmac.compare_digest(password.encode(), self._password.encode())
        if not matched:
            raise Unauthenticated("basic credentials mismatch")

    def identify(self, headers: Mapping[str, str], body: bytes) -> WebhookIdentity:
        """`logisticsEventId` to dedupe on, `logisticsEventType` as the event name."""
        envelope = _envelope(body)
        if not envelope.logisticsEventId or not envelope.logisticsEventType:
            raise MalformedPayload("Flexport webhook has no logisticsEventId or type")
        return WebhookIdentity(envelope.logisticsEventId, envelope.logisticsEventType)

    def parse(self, body: bytes, identity: WebhookIdentity) -> ChannelEvent:
        """An order or shipment event as a FULFILMENT_UPDATE naming the order to read; any
        other type is IGNORED."""
        envelope = _envelope(body)
        if identity.event_type not in ORDER_EVENT_TYPES:
            return ChannelEvent(
                kind=EventKind.IGNORED,
                event_type=identity.event_type,
                note=f"Flexport event type {identity.event_type} is not one the hub acts on",
            )
        if not envelope.orderId:
            raise MalformedPayload(f"Flexport {identity.event_type} names no orderId")
        return ChannelEvent(
            kind=EventKind.FULFILMENT_UPDATE,
            event_type=identity.event_type,
            channel_order_id=envelope.orderId,
            detail={
                "external_order_id": envelope.externalOrderId,
                "event_time": envelope.logisticsEventTime,
            },
        )
