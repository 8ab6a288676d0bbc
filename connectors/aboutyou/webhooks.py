"""Authentication and parsing of ABOUT YOU's order delegation webhooks.

ABOUT YOU signs nothing: each delivery carries the shared key in `X-API-Key`, which is compared
in constant time with ABOUTYOU_WEBHOOK_KEY. There is no timestamp to check, so deduplication on
the message `id` is what stops a repeated delivery from acting twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import SecretStr, ValidationError

from connectors.base import (
    ChannelEvent,
    EventKind,
    MalformedPayload,
    Unauthenticated,
    WebhookIdentity,
)
from connectors.signatures import verify_static_token

from .transformers import (
    ITEM_EVENT_KINDS,
    EventType,
    FulfillmentType,
    WebhookEnvelope,
    WireItemEvent,
    channel_order,
    event_type,
    fulfillment_type,
    loads,
    read_order,
)

API_KEY_HEADER = "x-api-key"


class AboutYouWebhooks:
    """The `WebhookReceiver` for `POST /webhooks/aboutyou`."""

    def __init__(self, webhook_key: SecretStr | None) -> None:
        self._key = webhook_key

    def authenticate(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        """Accept the delivery only when its `X-API-Key` equals ABOUTYOU_WEBHOOK_KEY."""
        if self._key is None:
            raise Unauthenticated("ABOUTYOU_WEBHOOK_KEY is not set")
        verify_static_token(
            expected=self._key.get_secret_value(), given=_header(headers, API_KEY_HEADER)
        )

    def identify(self, headers: Mapping[str, str], body: bytes) -> WebhookIdentity:
        """The message `id` to dedupe on and the `event` name."""
        envelope = _envelope(body)
        return WebhookIdentity(external_id=str(envelope.id), event_type=envelope.event)

    def parse(self, body: bytes, identity: WebhookIdentity) -> ChannelEvent:
        """The canonical event of one authenticated delivery."""
        envelope = _envelope(body)
        event = event_type(envelope.event)
        if event is EventType.ORDER_CREATED:
            return _order_created(envelope)
        if event is EventType.UNSUPPORTED:
            return ChannelEvent(
                kind=EventKind.IGNORED,
                event_type=envelope.event,
                note=f"ABOUT YOU event {envelope.event!r} is not one the hub acts on",
            )
        return _item_event(envelope, event)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    # The hub hands lower-cased headers; a plain dict from elsewhere may keep the original case.
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def _envelope(body: bytes) -> WebhookEnvelope:
    try:
        data: Any = loads(body)
    except ValueError as exc:
        raise MalformedPayload(f"webhook body is not JSON: {exc}") from None
    try:
        return WebhookEnvelope.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayload(f"not an ABOUT YOU webhook: {exc.errors()[0]['msg']}") from None


def _order_created(envelope: WebhookEnvelope) -> ChannelEvent:
    order = read_order(envelope.message)
    kind = fulfillment_type(order.fulfillment_type)
    if kind is FulfillmentType.DROPSHIPPING:
        canonical = channel_order(order)
        return ChannelEvent(
            kind=EventKind.ORDER_PLACED,
            event_type=envelope.event,
            channel_order_id=canonical.channel_order_id,
            order=canonical,
        )
    if kind is FulfillmentType.FULFILLMENT_BY_MARKETPLACE:
        note = "ABOUT YOU fulfils this order itself (fulfillment_by_marketplace)"
    else:
        note = f"unknown fulfillment_type {order.fulfillment_type!r}; not treated as dropshipping"
    return ChannelEvent(
        kind=EventKind.IGNORED,
        event_type=envelope.event,
        channel_order_id=order.channel_order_id,
        note=note,
        detail={"order_number": order.order_number, "fulfillment_type": order.fulfillment_type},
    )


def _item_event(envelope: WebhookEnvelope, event: EventType) -> ChannelEvent:
    try:
        message = WireItemEvent.model_validate(envelope.message)
        order_id = message.channel_order_id
    except (ValidationError, ValueError) as exc:
        raise MalformedPayload(f"{envelope.event} message unreadable: {exc}") from None
    item_ids = tuple(str(item.id) for item in message.order_items)
    detail: dict[str, Any] = {
        "order_number": message.order_number,
        "order_items": [
            {
                "id": item.id,
                "sku": item.sku,
                "status": item.status,
                "shipment_tracking_key": item.shipment_tracking_key,
                "return_tracking_key": item.return_tracking_key,
            }
            for item in message.order_items
        ],
    }
    kind = ITEM_EVENT_KINDS[event]
    return ChannelEvent(
        kind=kind,
        event_type=envelope.event,
        channel_order_id=order_id,
        line_ids=item_ids,
        note=f"ABOUT YOU {envelope.event}: items {', '.join(item_ids)}",
        detail=detail,
    )
