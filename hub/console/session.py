"""The console's session: a signed cookie naming the signed-in token, and the CSRF token every
change must carry.

The cookie holds a keyed fingerprint of the token (`hub.deps.fingerprint`), an expiry and a
random nonce, signed with HMAC-SHA256; never the token. It is HttpOnly (no script reads it) and
SameSite=Strict (no other site's page sends it). Each request looks the fingerprint up among
the tokens configured now, so a token taken out of HUB_ADMIN_TOKENS ends its sessions at once.
Every change is a POST carrying a CSRF token derived from the session's nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Form, Request
from starlette.responses import Response

from hub.config import HubSettings
from hub.deps import Actor, get_runtime, identify_fingerprint, session_key

COOKIE = "hub_console"
FLASH_COOKIE = "hub_console_flash"
PATH = "/console"
LIFETIME = 12 * 3600  # seconds a sign-in lasts


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """The signed-in operator and the CSRF token their forms carry."""

    actor: Actor
    csrf: str


class NotSignedIn(Exception):
    """No valid session: the console sends the browser to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Forbidden(Exception):
    """A signed-in operator may not do this (read-only token, or a bad CSRF token)."""


def _sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(settings: HubSettings, fingerprint: str, now: float | None = None) -> str:
    """A cookie value for a session of the token with `fingerprint`."""
    payload = json.dumps(
        {
            "fp": fingerprint,
            "exp": int((now if now is not None else time.time()) + LIFETIME),
            "n": secrets.token_urlsafe(16),
        },
        separators=(",", ":"),
    ).encode()
    return f"{_b64(payload)}.{_sign(session_key(settings), payload)}"


def read(settings: HubSettings, value: str, now: float | None = None) -> ConsoleSession | None:
    """The session a cookie value stands for, or None when it is forged, expired, or its token
    is no longer configured."""
    encoded, _, signature = value.partition(".")
    try:
        payload = _unb64(encoded)
    except ValueError:
        return None
    key = session_key(settings)
    if not hmac.compare_digest(signature.encode(), _sign(key, payload).encode()):
        return None
    try:
        data = json.loads(payload)
        fingerprint, expires, nonce = str(data["fp"]), int(data["exp"]), str(data["n"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires < (now if now is not None else time.time()):
        return None
    actor = identify_fingerprint(settings, fingerprint)
    if actor is None:
        return None
    return ConsoleSession(actor, _sign(key, f"csrf:{nonce}".encode()))


def set_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=LIFETIME,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


def flash(response: Response, request: Request, message: str) -> None:
    """A one-time message for the next page this browser shows (the outcome of a change)."""
    response.set_cookie(
        FLASH_COOKIE,
        quote(message[:300]),
        max_age=60,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def current(request: Request) -> ConsoleSession:
    """FastAPI dependency: the signed-in operator, or `NotSignedIn`."""
    settings = get_runtime(request).settings
    value = request.cookies.get(COOKIE)
    found = read(settings, value, None) if value else None
    if found is None:
        target = request.url.path
        if request.method == "GET" and request.url.query:
            target += "?" + request.url.query
        raise NotSignedIn(target)
    return found


SessionDep = Annotated[ConsoleSession, Depends(current)]


def writer(session: SessionDep, csrf: Annotated[str, Form()] = "") -> Actor:
    """FastAPI dependency for every change: a token that may write, and the form's CSRF token;
    `Forbidden` otherwise."""
    if not session.actor.may_write:
        raise Forbidden("this token may only read")
    if not csrf or not hmac.compare_digest(csrf.encode(), session.csrf.encode()):
        raise Forbidden("the form's CSRF token is missing or stale; reload the page and retry")
    return session.actor


WriterDep = Annotated[Actor, Depends(writer)]
