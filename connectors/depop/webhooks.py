"""Verification and reading of Depop's webhooks.

Depop signs each delivery with `X-Depop-Signature`: hex HMAC-SHA256 of
`{X-Depop-Timestamp}.{raw body}` keyed with the webhook secret. The envelope `id` is the dedupe key.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from connectors.base import ChannelEvent, MalformedPayload, Unauthenticated, WebhookIdentity
from connectors.depop.config import DepopSettings
from connectors.depop.transformers import identify, parse_envelope, to_event
from connectors.signatures import verify_timestamped_hex

SIGNATURE_HEADER = "x-depop-signature"
TIMESTAMP_HEADER = "x-depop-timestamp"


class DepopWebhooks:
    """The `WebhookReceiver` for Depop: authenticate the raw bytes, then identify and parse."""

    def __init__(self, settings: DepopSettings) -> None:
        self.settings = settings

    def authenticate(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        secret = (
            self.settings.webhook_secret.get_secret_value() if self.settings.webhook_secret else ""
        )
        if not secret:
            raise Unauthenticated("DEPOP_WEBHOOK_SECRET is not set")
        # The hub promises lower-case keys; lowering again costs nothing and guards direct callers.
        lowered = {k.lower(): v for k, v in headers.items()}
        verify_timestamped_hex(
            secret=secret,
            timestamp=lowered.get(TIMESTAMP_HEADER),
            signature=lowered.get(SIGNATURE_HEADER),
            body=body,
            now=now,
        )

    def identify(self, headers: Mapping[str, str], body: bytes) -> WebhookIdentity:
        return identify(body)

    def parse(self, body: bytes, identity: WebhookIdentity) -> ChannelEvent:
        envelope = parse_envelope(body)
        mine = self.settings.seller_id
        named = envelope.data.get("seller_id")
        if mine is not None and named is not None and str(named) != str(mine):
            # Signed with a secret this shop shares with others of the same app: another
            # shop's order, sent to this shop's URL. Taking it would make the order twice.
            raise MalformedPayload(f"the webhook names seller {named}, not this shop ({mine})")
        return to_event(envelope)
