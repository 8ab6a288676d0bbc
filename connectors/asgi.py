"""Request layers for the simulators as plain ASGI.

`@app.middleware("http")` (Starlette's `BaseHTTPMiddleware`) runs the rest of the app in a task
group and streams its answer back through a memory stream, at every request and for every
layer; the simulators serve the benchmark's load beside the hub on the same cores, so their
layers are written against ASGI itself instead: a handler is given the app inside it and the
request's `scope`, `receive` and `send`, and either answers or passes the request on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Handler = Callable[[ASGIApp, Scope, Receive, Send], Awaitable[None]]


def add_http_middleware(app: FastAPI, handle: Handler) -> None:
    """Put `handle` around everything `app` has so far, for HTTP requests: outside the layers
    added before it, inside those added after, as `@app.middleware("http")` would."""

    def layer(inner: ASGIApp) -> ASGIApp:
        async def call(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                await handle(inner, scope, receive, send)
            else:
                await inner(scope, receive, send)

        return call

    app.add_middleware(layer)


async def read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The request's whole body, and a `receive` that gives it to the app again, then whatever
    the connection sends next (its disconnect). Raises `ClientDisconnect` when the client
    leaves before sending it all, as `Request.body()` does."""
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay
