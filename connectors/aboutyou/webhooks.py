"""Authentication and parsing of ABOUT YOU's order delegation webhooks.

How ABOUT YOU authenticates its deliveries is not documented (no signature scheme is published;
the webhook page's example shows an `X-API-Key` header, which may only be the documentation of
its dummy endpoint). The receiver compares `X-API-Key`, in constant time, with
ABOUTYOU_WEBHOOK_KEY, as the hub's contract (CONTRACT.md) fixes; should ABOUT YOU send no such
header, deliveries answer 401 and reconciliation still finds the orders. There is no timestamp
to check, so deduplication on the message `id` is what stops a repeated delivery (ABOUT YOU
retries hourly for two days) from acting twice.

Only the events ABOUT YOU documents are read: `order.created` and
`order_items.shipped|cancelled|returned`. Any other name is stored and ignored with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, assert_never

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
    REPORTED_UNDOCUMENTED_EVENTS,
    EventType,
    FulfillmentType,
    WebhookEnvelope,
    WireShipment,
    channel_order,
    event_type,
    first_error,
    fulfillment_type,
    loads,
    read_order,
)

# What each documented item event means for the hub.
ITEM_EVENT_KINDS: dict[EventType, EventKind] = {
    EventType.ITEMS_CANCELLED: EventKind.LINES_CANCELLED,
    EventType.ITEMS_SHIPPED: EventKind.ORDER_NOTICE,
    EventType.ITEMS_RETURNED: EventKind.ORDER_NOTICE,
}

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
        match event:
            case EventType.ORDER_CREATED:
                return _order_created(envelope)
            case EventType.ITEMS_SHIPPED | EventType.ITEMS_CANCELLED | EventType.ITEMS_RETURNED:
                return _item_event(envelope, event)
            case EventType.UNDOCUMENTED:
                return _undocumented(envelope)
            case _:
                assert_never(event)


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
        raise MalformedPayload(f"not an ABOUT YOU webhook: {first_error(exc)}") from None


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
        channel_order_id=order.order_number,
        note=note,
        detail={"order_number": order.order_number, "fulfillment_type": order.fulfillment_type},
    )


def _undocumented(envelope: WebhookEnvelope) -> ChannelEvent:
    if envelope.event in REPORTED_UNDOCUMENTED_EVENTS:
        why = "third-party clients report it, but ABOUT YOU does not document its payload"
    else:
        why = "it is not one ABOUT YOU documents"
    return ChannelEvent(
        kind=EventKind.IGNORED,
        event_type=envelope.event,
        note=f"ABOUT YOU event {envelope.event!r} is not acted on: {why}",
    )


def _item_event(envelope: WebhookEnvelope, event: EventType) -> ChannelEvent:
    try:
        message = WireShipment.model_validate(envelope.message)
    except ValidationError as exc:
        raise MalformedPayload(f"{envelope.event} message unreadable: {first_error(exc)}") from None
    item_ids = tuple(str(item.id) for item in message.items)
    detail: dict[str, Any] = {
        "carrier_key": message.carrier_key,
        "tracking_key": message.tracking_key,
        "return_tracking_key": message.return_tracking_key,
        "order_items": [
            {
                "id": item.id,
                "sku": item.sku,
                "status": item.status,
                "shipment_tracking_key": item.shipment_tracking_key,
                "return_tracking_key": item.return_tracking_key,
            }
            for item in message.items
        ],
    }
    return ChannelEvent(
        kind=ITEM_EVENT_KINDS[event],
        event_type=envelope.event,
        # Documented item events name no order; the hub finds it by the item ids (line_ids).
        channel_order_id=message.order_number,
        line_ids=item_ids,
        note=f"ABOUT YOU {envelope.event}: items {', '.join(item_ids)}",
        detail=detail,
    )
