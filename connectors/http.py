"""The transport every connector client shares: one place that turns network trouble into
`Retriable`, so each client only maps the answers that are its system's own.

Every request runs against a deadline. httpx's own timeouts bound one phase each (connecting,
writing, one read), so a server that trickles its answer a byte at a time, or an operation that
sends a lookup, a create and a renewal in a row, could hold a worker far past the hub's job
lease, after which another worker would claim the same job and run it alongside. A connector
therefore wraps each operation in `deadline(seconds)`: everything `send` does inside it (every
request, token renewal and repeat) must end by then, or the call raises `Retriable`. Outside any
`deadline` block each request gets `DEFAULT_DEADLINE_SECONDS` of its own.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from connectors.base import Retriable

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Well inside the hub's 120 s job lease (HUB_JOB_LEASE_SECONDS), with room for the job's own
# database work before and after the call.
DEFAULT_DEADLINE_SECONDS = 30.0

# Requests run on these threads so that the caller can stop waiting at its deadline whatever the
# socket is doing; a request abandoned that way ends by its own (clamped) httpx timeouts.
_POOL = ThreadPoolExecutor(max_workers=64, thread_name_prefix="connector-http")


class Deadline:
    """The moment by which a connector operation must be over, on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "connector_deadline", default=None
)


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Bound everything sent inside the block to `seconds` in all. A block nested in another
    never extends the outer one: the earlier of the two moments holds."""
    mine = Deadline(seconds)
    outer = _current.get()
    if outer is not None and outer.at <= mine.at:
        mine = outer
    token = _current.set(mine)
    try:
        yield mine
    finally:
        _current.reset(token)


# The HTTP status of the latest answer `send` got in this context (None: no answer, a timeout).
# A client maps a 4xx to its own error after `send` returns; the job layer reads this to record
# what the other side answered, whichever error the client raised.
_last_status: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "last_status", default=None
)


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


def _clamped(timeout: httpx.Timeout, remaining: float) -> httpx.Timeout:
    """Each phase's timeout, never longer than what is left of the deadline."""

    def clamp(value: float | None) -> float:
        return remaining if value is None else min(value, remaining)

    return httpx.Timeout(
        connect=clamp(timeout.connect),
        read=clamp(timeout.read),
        write=clamp(timeout.write),
        pool=clamp(timeout.pool),
    )


def _discard(future: Future[httpx.Response]) -> None:
    """Close the answer of a request its caller stopped waiting for."""
    if not future.cancelled() and future.exception() is None:
        future.result().close()


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
    """Send one request within the current deadline. Timeouts, connection failures, a passed
    deadline, 429 and 5xx raise `Retriable` (with `Retry-After` as its `after`); every other
    response is returned for the caller to map."""
    _last_status.set(None)
    active = _current.get() or Deadline(DEFAULT_DEADLINE_SECONDS)
    remaining = active.remaining()
    if remaining <= 0:
        raise Retriable(f"{method} {url}: not sent, the {active.seconds:g} s deadline has passed")
    request = client.build_request(
        method,
        url,
        json=json,
        params=params,
        headers=headers,
        data=data,
        timeout=_clamped(client.timeout, remaining),
    )
    # The worker thread sees the caller's context (log bindings), not a blank one.
    context = contextvars.copy_context()
    future = _POOL.submit(context.run, client.send, request, auth=auth)
    try:
        response = future.result(timeout=remaining)
    except FutureTimeout as exc:
        # Not started yet (every thread busy): then it is never sent at all.
        future.cancel()
        future.add_done_callback(_discard)
        raise Retriable(
            f"{method} {url}: no answer within the {active.seconds:g} s deadline"
        ) from exc
    except httpx.TimeoutException as exc:
        raise Retriable(f"{method} {url}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise Retriable(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
    _last_status.set(response.status_code)
    if response.status_code == 429:
        raise Retriable(f"{method} {url}: 429 rate limited", after=retry_after(response))
    if response.status_code >= 500:
        raise Retriable(
            f"{method} {url}: {response.status_code} {_said(response)}",
            after=retry_after(response),
        )
    return response


def _said(response: httpx.Response) -> str:
    """What a failed answer says: an RFC 7807 problem's title and detail (its `type` URI would
    fill the room), else the start of the body."""
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        try:
            problem = response.json()
        except ValueError:
            problem = None
        if isinstance(problem, dict):
            parts = [str(problem[k]) for k in ("title", "detail") if problem.get(k)]
            if parts:
                return ": ".join(parts)[:500]
    return response.text[:200]
