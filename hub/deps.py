"""Request-scoped dependencies: the runtime, a read-only session, and the admin token check.

Writes open `runtime.db.transaction()` in the endpoint itself, so a failed commit is the
response, never an error after it.

Admin tokens are compared in constant time. Two kinds: HUB_ADMIN_TOKENS may do anything;
HUB_ADMIN_READ_TOKENS may only read, so a dashboard or an on-call viewer can look without being
able to cancel an order.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Sequence
from typing import Annotated

from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlmodel import Session

from hub.errors import ApiError
from hub.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_reader(request: Request) -> Iterator[Session]:
    with get_runtime(request).db.reader() as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ReaderDep = Annotated[Session, Depends(get_reader)]

# Row ids are INTEGER columns: a number past Postgres's int4 cannot name a row, and sent to the
# database it overflows the driver instead of finding nothing.
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
RowCursor = Annotated[int | None, Query(ge=0, le=MAX_ROW_ID)]


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
