"""Bearer-token authentication for `/admin`, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from hub.errors import ApiError
from hub.runtime import Runtime


def require_admin(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries one of HUB_ADMIN_TOKENS."""
    runtime: Runtime = request.app.state.runtime
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthenticated", "an admin bearer token is required")
    given = token.strip().encode()
    matched = False
    for allowed in runtime.settings.admin_tokens:
        # Every token is compared, so the time taken says nothing about which one matched.
        matched |= hmac.compare_digest(given, allowed.get_secret_value().encode())
    if not matched:
        raise ApiError(401, "unauthenticated", "the admin bearer token is not valid")
