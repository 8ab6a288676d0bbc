"""The transport every connector client shares: one place that turns network trouble into
`Retriable`, so each client only maps the answers that are its system's own."""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import ContextVar
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from connectors.base import Retriable

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

# The HTTP status of the latest answer `send` got in this context (None: no answer, a timeout).
# A client maps a 4xx to its own error after `send` returns; the job layer reads this to record
# what the other side answered, whichever error the client raised.
_last_status: ContextVar[int | None] = ContextVar("last_status", default=None)


def last_status() -> int | None:
    """The status of the latest answer an outbound call got in this thread, if it got one."""
    return _last_status.get()


def forget_status() -> None:
    """Start a new piece of work (a job): no answer received yet."""
    _last_status.set(None)


def new_client(base_url: str) -> httpx.Client:
    """A pooled client for one external API."""
    return httpx.Client(base_url=base_url, timeout=DEFAULT_TIMEOUT)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a `Retry-After` header (either form), when there is one."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    json: Any = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
) -> httpx.Response:
    """Send one request. Timeouts, connection failures, 429 and 5xx raise `Retriable`;
    every other response is returned for the caller to map."""
    _last_status.set(None)
    try:
        response = client.request(
            method, url, json=json, params=params, headers=headers, data=data, auth=auth
        )
    except httpx.TimeoutException as exc:
        raise Retriable(f"{method} {url}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise Retriable(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
    _last_status.set(response.status_code)
    if response.status_code == 429:
        raise Retriable(f"{method} {url}: 429 rate limited", after=retry_after(response))
    if response.status_code >= 500:
        raise Retriable(f"{method} {url}: {response.status_code} {response.text[:200]}")
    return response
