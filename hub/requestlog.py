"""A request id on every response and every log line of a request, and one access-log line per
request.

The id is the caller's `X-Request-ID` when it sends a sensible one (a load balancer's, a
client's), so one id follows a request across systems; otherwise a new one. It is bound to
structlog's context for the request, so every line logged while serving it carries it, and it
is sent back in the response's `X-Request-ID`.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.errors import error_body

HEADER = "X-Request-ID"
# Anything else (too long, control characters, spaces) is replaced: the id lands in log lines
# and headers, where a caller must not be able to forge structure.
_SENSIBLE = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

log = structlog.get_logger("hub.http")


def request_id_from(scope: Scope) -> str:
    """The caller's request id when it is sensible, else a new one."""
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            given: str = value.decode("latin-1").strip()
            if _SENSIBLE.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


class RequestContext:
    """ASGI middleware: the request id, and the access log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        answered = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                answered = True
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Unhandled: answer here, with the id, before the server logs the traceback.
            if not answered:
                response = JSONResponse(
                    error_body("internal_error", "an unexpected error; see the hub's log"),
                    500,
                    headers={HEADER: request_id},
                )
                await response(scope, receive, send)
                status = 500
            raise
        finally:
            client = scope.get("client")
            log.info(
                "hub.http.request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                remote_addr=client[0] if client else None,
            )
            structlog.contextvars.unbind_contextvars("request_id")
