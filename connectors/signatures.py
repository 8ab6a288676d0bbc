"""Webhook authentication helpers shared by the connectors.

Every comparison is constant-time and every timestamp is checked against a tolerance both ways,
so a captured request cannot be replayed later and a forged one cannot be timed out of us.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime

from connectors.base import Unauthenticated

TOLERANCE_SECONDS = 300


def check_timestamp(
    timestamp: str | None, now: datetime, tolerance: int = TOLERANCE_SECONDS
) -> int:
    """The timestamp as Unix seconds, or `Unauthenticated` when missing, unreadable or stale."""
    if not timestamp:
        raise Unauthenticated("missing timestamp")
    try:
        seconds = int(timestamp)
    except ValueError:
        try:
            seconds = int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())
        except ValueError:
            raise Unauthenticated("unreadable timestamp") from None
    if abs(now.timestamp() - seconds) > tolerance:
        raise Unauthenticated("timestamp outside the tolerance")
    return seconds


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def verify_timestamped_hex(
    *, secret: str, timestamp: str | None, signature: str | None, body: bytes, now: datetime
) -> None:
    """Hex HMAC-SHA256 of `{timestamp}.{body}` (Depop's `X-Depop-Signature`)."""
    check_timestamp(timestamp, now)
    if not signature:
        raise Unauthenticated("missing signature")
    try:
        given = bytes.fromhex(signature.strip())
    except ValueError:
        raise Unauthenticated("signature is not hex") from None
    expected = hmac_sha256(secret.encode(), f"{timestamp}.".encode() + body)
    if not hmac.compare_digest(given, expected):
        raise Unauthenticated("signature mismatch")


def sign_timestamped_hex(*, secret: str, timestamp: str, body: bytes) -> str:
    return hmac_sha256(secret.encode(), f"{timestamp}.".encode() + body).hex()


def standard_webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 part of `whsec_...`."""
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError("webhook secret is not whsec_<base64>") from None


def sign_standard_webhook(*, secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    digest = hmac_sha256(standard_webhook_key(secret), f"{msg_id}.{timestamp}.".encode() + body)
    return "v1," + base64.b64encode(digest).decode()


def verify_standard_webhook(
    *,
    secrets: Iterable[str],
    msg_id: str | None,
    timestamp: str | None,
    signature_header: str | None,
    body: bytes,
    now: datetime,
) -> None:
    """Standard Webhooks / Svix: any `v1,<base64>` in the header matching any secret passes."""
    if not msg_id:
        raise Unauthenticated("missing message id")
    check_timestamp(timestamp, now)
    if not signature_header:
        raise Unauthenticated("missing signature")
    given: list[bytes] = []
    for part in signature_header.split():
        version, _, value = part.partition(",")
        if version != "v1" or not value:
            continue
        try:
            given.append(base64.b64decode(value, validate=True))
        except binascii.Error:
            continue
    if not given:
        raise Unauthenticated("no v1 signature")
    message = f"{msg_id}.{timestamp}.".encode() + body
    matched = False
    for secret in secrets:
        expected = hmac_sha256(standard_webhook_key(secret), message)
        for candidate in given:
            # No early exit: every pair is compared, so timing says nothing about which matched.
            matched |= hmac.compare_digest(candidate, expected)
    if not matched:
        raise Unauthenticated("signature mismatch")


def verify_static_token(*, expected: str, given: str | None) -> None:
    """A shared token in a header (Deliverr, ABOUT YOU)."""
    if not given:
        raise Unauthenticated("missing token")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthenticated("token mismatch")
