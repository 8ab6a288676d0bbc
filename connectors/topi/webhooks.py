"""topi's webhooks: Standard Webhooks (Svix) signatures over the bare order object.

topi calls the webhook whenever an order becomes `created`, `canceled` or `completed`; the body is
the order itself, so the event is read from its `status`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from connectors.base import (
    ChannelEvent,
    ChannelOrder,
    EventKind,
    MalformedPayload,
    Unauthenticated,
    WebhookIdentity,
)
from connectors.signatures import verify_standard_webhook
from connectors.topi.transformers import WireOrder, loads, parse_order, to_channel_order

# Svix names its headers svix-*; the Standard Webhooks specification names them webhook-*.
HEADER_PREFIXES = ("svix-", "webhook-")


def _now() -> datetime:
    return datetime.now(UTC)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def _signature_headers(headers: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """(id, timestamp, signature) from the first header family present, never mixed."""
    lowered = _lower(headers)
    for prefix in HEADER_PREFIXES:
        if f"{prefix}id" in lowered:
            return (
                lowered.get(f"{prefix}id"),
                lowered.get(f"{prefix}timestamp"),
                lowered.get(f"{prefix}signature"),
            )
    return (None, None, None)


def _decode(body: bytes) -> dict[str, object]:
    try:
        data = loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedPayload(f"topi webhook body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedPayload("topi webhook body is not a JSON object")
    return data


def _status(data: Mapping[str, object]) -> str:
    status = data.get("status")
    if not isinstance(status, str) or not status:
        raise MalformedPayload("topi webhook body has no status")
    return status


# The order statuses topi sends webhooks for, and what each means for the hub.
WEBHOOK_EVENTS: dict[str, tuple[EventKind, str]] = {
    "created": (EventKind.ORDER_PLACED, ""),
    "canceled": (EventKind.ORDER_CANCELLED, ""),
    "completed": (EventKind.ORDER_NOTICE, "topi reports the order completed (every unit shipped)"),
}


class TopiWebhooks:
    """Verifies and reads topi's order webhooks (a `WebhookReceiver`)."""

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        sku_source: str | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.secrets = tuple(secrets)
        self.sku_source = sku_source
        # The webhook's order carries no created_at; it is dated when it is read.
        self._clock = clock

    def authenticate(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        """Raise `Unauthenticated` unless a `v1,` signature matches one of the secrets."""
        if not self.secrets:
            raise Unauthenticated("no TOPI_WEBHOOK_SECRETS configured")
        msg_id, timestamp, signature = _signature_headers(headers)
        verify_standard_webhook(
            secrets=self.secrets,
            msg_id=msg_id,
            timestamp=timestamp,
            signature_header=signature,
            body=body,
            now=now,
        )

    def identify(self, headers: Mapping[str, str], body: bytes) -> WebhookIdentity:
        """The message id (topi redelivers with the same one) and `order.<status>`."""
        msg_id, _, _ = _signature_headers(headers)
        if not msg_id:
            raise MalformedPayload("topi webhook has no svix-id / webhook-id header")
        return WebhookIdentity(external_id=msg_id, event_type=f"order.{_status(_decode(body))}")

    def parse(self, body: bytes, identity: WebhookIdentity) -> ChannelEvent:
        """created -> ORDER_PLACED, canceled -> ORDER_CANCELLED, completed -> ORDER_NOTICE; any
        other status is recorded as IGNORED."""
        data = _decode(body)
        status = _status(data)
        event_type = f"order.{status}"
        try:
            wire = parse_order(data)
        except ValidationError as exc:
            raise MalformedPayload(f"topi webhook order is unreadable: {exc}") from exc
        detail = {"status": status, "seller_offer_reference": wire.seller_offer_reference}
        acted_on = WEBHOOK_EVENTS.get(status)
        if acted_on is not None:
            kind, note = acted_on
            return ChannelEvent(
                kind=kind,
                event_type=event_type,
                channel_order_id=wire.id,
                order=self._order(wire),
                note=note,
                detail=detail,
            )
        return ChannelEvent(
            kind=EventKind.IGNORED,
            event_type=event_type,
            channel_order_id=wire.id,
            note=f"topi sends no webhook for status {status!r}; nothing to do",
            detail=detail,
        )

    def _order(self, wire: WireOrder) -> ChannelOrder:
        return to_channel_order(wire, self.sku_source, received_at=self._clock())
