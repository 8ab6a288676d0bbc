"""Bearer-token authentication for `/admin`, compared in constant time.

Two kinds of token: HUB_ADMIN_TOKENS may do anything; HUB_ADMIN_READ_TOKENS may only read, so
a dashboard or an on-call viewer can look without being able to cancel an order.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from hub.errors import ApiError
from hub.runtime import Runtime

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="admin_token",
    description="One of HUB_ADMIN_TOKENS; a HUB_ADMIN_READ_TOKENS token may only read (GET).",
)


def _matches(given: bytes, allowed: Sequence[SecretStr]) -> bool:
    matched = False
    for token in allowed:
        # Every token is compared, so the time taken says nothing about which one matched.
        matched |= hmac.compare_digest(given, token.get_secret_value().encode())
    return matched


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> None:
    """FastAPI dependency: 401 unless the request carries a configured token; 403 when a
    read-only token asks to change something."""
    runtime: Runtime = request.app.state.runtime
    if credentials is None or not credentials.credentials.strip():
        raise ApiError(401, "unauthenticated", "an admin bearer token is required")
    given = credentials.credentials.strip().encode()
    full = _matches(given, runtime.settings.admin_tokens)
    read_only = _matches(given, runtime.settings.admin_read_tokens)
    if full:
        return
    if not read_only:
        raise ApiError(401, "unauthenticated", "the admin bearer token is not valid")
    if request.method not in READ_METHODS:
        raise ApiError(403, "forbidden", "this admin token may only read")
