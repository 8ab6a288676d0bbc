"""Deliverr's ORDER_STATUS_UPDATE webhooks: token check, identity, canonical event.

Deliverr does not sign its webhooks; it sends a shared token in a header (`X-Deliverr-Token` by
default, DELIVERR_WEBHOOK_HEADER). With no signature there is no timestamp to check either, so a
captured request could be replayed: the hub's dedupe on `eventId` makes a replay a no-op.
"""

from __future__ import annotations

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
from connectors.deliverr.config import DeliverrSettings
from connectors.deliverr.transformers import (
    ORDER_STATUS_UPDATE,
    StatusUpdateEvent,
    load_json,
    status_update_to_fulfilment,
)
from connectors.signatures import verify_static_token


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name whatever the mapping's key case (the hub passes lower-case keys)."""
    value = headers.get(name.lower())
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return None


def _object(body: bytes) -> dict[str, object]:
    try:
        payload = load_json(body)
    except ValueError as exc:
        raise MalformedPayload(f"Deliverr webhook is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise MalformedPayload("Deliverr webhook is not a JSON object")
    return payload


class DeliverrWebhooks:
    """Verifies and reads Deliverr's webhooks (a `WebhookReceiver`)."""

    def __init__(self, settings: DeliverrSettings) -> None:
        self._token = settings.webhook_token.get_secret_value() if settings.webhook_token else ""
        self._header = settings.webhook_header

    def authenticate(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        """Pass only when the token header equals DELIVERR_WEBHOOK_TOKEN (constant-time)."""
        if not self._token:
            # Without a configured token nothing can be proven; an empty one would match "".
            raise Unauthenticated("DELIVERR_WEBHOOK_TOKEN is not set")
        verify_static_token(expected=self._token, given=_header(headers, self._header))

    def identify(self, headers: Mapping[str, str], body: bytes) -> WebhookIdentity:
        """`eventId` to dedupe on and `type` as the event name."""
        payload = _object(body)
        event_id = payload.get("eventId")
        event_type = payload.get("type")
        if not isinstance(event_id, str) or not event_id:
            raise MalformedPayload("Deliverr webhook has no eventId")
        if not isinstance(event_type, str) or not event_type:
            raise MalformedPayload("Deliverr webhook has no type")
        return WebhookIdentity(external_id=event_id, event_type=event_type)

    def parse(self, body: bytes, identity: WebhookIdentity) -> ChannelEvent:
        """An ORDER_STATUS_UPDATE as a FULFILMENT_UPDATE; any other type is IGNORED."""
        payload = _object(body)
        if identity.event_type != ORDER_STATUS_UPDATE:
            return ChannelEvent(
                kind=EventKind.IGNORED,
                event_type=identity.event_type,
                note=f"Deliverr event type {identity.event_type} is not one the hub acts on",
            )
        try:
            event = StatusUpdateEvent.model_validate(payload)
        except ValidationError as exc:
            raise MalformedPayload(f"unreadable Deliverr status update: {exc}") from exc
        return ChannelEvent(
            kind=EventKind.FULFILMENT_UPDATE,
            event_type=identity.event_type,
            fulfilment=status_update_to_fulfilment(event),
            detail={
                "update_type": event.updateType,
                "old_status": event.oldStatus,
                "new_status": event.newStatus,
                "event_time": event.eventTime.isoformat() if event.eventTime else None,
            },
        )
