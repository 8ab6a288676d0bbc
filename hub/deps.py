"""Request-scoped dependencies: the runtime, a read-only session, and who is acting.

Writes open `runtime.db.transaction()` in the endpoint itself, so a failed commit is the
response, never an error after it.

Admin tokens are compared in constant time. Two kinds: HUB_ADMIN_TOKENS may do anything;
HUB_ADMIN_READ_TOKENS may only read, so a dashboard or an on-call viewer can look without being
able to cancel an order. Each token has a name (`name:token` in the variable; an unnamed one
is named from a hash of it), and the name, never the token, is what history and audit record.
The console finds its signed-in operator through the same tokens (`identify_fingerprint`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from hub.config import HubSettings
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
REASON_HEADER = "X-Audit-Reason"
_MAX_REASON = 500

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="admin_token",
    description="One of HUB_ADMIN_TOKENS; a HUB_ADMIN_READ_TOKENS token may only read (GET).",
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a configured token's name, whether it may change things, and the reason
    the request gave (`X-Audit-Reason`, or a console form's reason field)."""

    name: str
    may_write: bool
    reason: str | None = None

    @property
    def source(self) -> str:
        """How the order history names a change this actor made."""
        return f"admin:{self.name}"


@dataclass(frozen=True, slots=True)
class KnownToken:
    name: str
    secret: bytes
    may_write: bool


def known_tokens(settings: HubSettings) -> list[KnownToken]:
    """Every configured token with its name: `name:token` entries name themselves; an unnamed
    one is `admin-` or `reader-` and the first hex digits of its SHA-256, stable across
    restarts and processes and saying nothing usable about the token."""
    found: list[KnownToken] = []
    for entries, may_write in ((settings.admin_tokens, True), (settings.admin_read_tokens, False)):
        for entry in entries:
            value = entry.get_secret_value()
            name, sep, token = value.partition(":")
            if not sep or not name.strip() or not token.strip():
                token = value
                kind = "admin" if may_write else "reader"
                name = f"{kind}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"
            found.append(KnownToken(name.strip(), token.strip().encode(), may_write))
    return found


def _lookup(candidates: list[tuple[bytes, KnownToken]], given: bytes) -> KnownToken | None:
    matched: KnownToken | None = None
    for secret, known in candidates:
        # Every token is compared, so the time taken says nothing about which one matched.
        if hmac.compare_digest(given, secret) and matched is None:
            matched = known
    return matched


def identify(settings: HubSettings, token: str) -> Actor | None:
    """The actor a bearer token stands for, or None when no configured token matches."""
    given = token.strip().encode()
    if not given:
        return None
    tokens = known_tokens(settings)
    # A full token wins over a read-only one configured with the same value.
    ordered = sorted(tokens, key=lambda t: not t.may_write)
    known = _lookup([(t.secret, t) for t in ordered], given)
    return Actor(known.name, known.may_write) if known else None


def fingerprint(settings: HubSettings, token: str) -> str:
    """A keyed digest naming one token, for a session cookie that must not hold the token.
    The key is drawn from every configured token, so changing the list ends every session."""
    return hmac.new(session_key(settings), token.strip().encode(), hashlib.sha256).hexdigest()


def identify_fingerprint(settings: HubSettings, digest: str) -> Actor | None:
    """The actor whose token has this `fingerprint`, if that token is still configured."""
    key = session_key(settings)
    ordered = sorted(known_tokens(settings), key=lambda t: not t.may_write)
    candidates = [
        (hmac.new(key, t.secret, hashlib.sha256).hexdigest().encode(), t) for t in ordered
    ]
    known = _lookup(candidates, digest.encode())
    return Actor(known.name, known.may_write) if known else None


def session_key(settings: HubSettings) -> bytes:
    """The key that signs console sessions: derived from every configured token, so each API
    process behind a load balancer derives the same one and no extra secret is needed."""
    material = b"\0".join(t.secret for t in known_tokens(settings))
    return hashlib.sha256(b"hub-console-session\0" + material).digest()


def _reason(request: Request) -> str | None:
    given = request.headers.get(REASON_HEADER, "").strip()
    return given[:_MAX_REASON] or None


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Actor:
    """FastAPI dependency: the acting token's `Actor`; 401 unless the request carries a
    configured token, 403 when a read-only token asks to change something."""
    runtime: Runtime = request.app.state.runtime
    if credentials is None or not credentials.credentials.strip():
        raise ApiError(401, "unauthenticated", "an admin bearer token is required")
    actor = identify(runtime.settings, credentials.credentials)
    if actor is None:
        raise ApiError(401, "unauthenticated", "the admin bearer token is not valid")
    if not actor.may_write and request.method not in READ_METHODS:
        raise ApiError(403, "forbidden", "this admin token may only read")
    return Actor(actor.name, actor.may_write, _reason(request))


ActorDep = Annotated[Actor, Depends(require_admin)]
