"""What every simulator shares: a record of the calls it received, fault injection, and
delivery of its own webhooks to a configured target.

A simulator is a real implementation of an external API's behaviour (state, validation, errors)
served as a FastAPI app. Tests and the demo drive the real connector client against it through
httpx, so the code under test is the code that runs in production.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

CONTROL_PREFIX = "/_sim"


@dataclass(frozen=True, slots=True)
class RecordedCall:
    method: str
    path: str
    query: Mapping[str, str]
    json: Any
    headers: Mapping[str, str]
    status: int


@dataclass(frozen=True, slots=True)
class SentWebhook:
    url: str
    headers: Mapping[str, str]
    body: bytes
    status: int | None  # None: dropped by fault injection or the target was unreachable


@dataclass(slots=True)
class _Fault:
    kind: str  # "status" or "timeout"
    status: int = 500
    body: Any = None
    after_processing: bool = False
    method: str | None = None  # None: whatever call comes next


@dataclass
class SimulatorBase:
    """Subclasses build `self.app` and call `self.install(self.app)` once."""

    app: FastAPI = field(init=False)  # built by each subclass's constructor

    webhook_url: str | None = None
    webhook_client: httpx.Client | None = None
    calls: list[RecordedCall] = field(default_factory=list)
    sent_webhooks: list[SentWebhook] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _faults: deque[_Fault] = field(default_factory=deque)
    _drop_webhooks: int = 0

    # -- fault injection --------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500, body: Any = None) -> None:
        """The next `n` API calls answer `status` without being processed."""
        with self.lock:
            self._faults.extend(_Fault("status", status=status, body=body) for _ in range(n))

    def fail_after_next(self, method: str, status: int = 500) -> None:
        """The next `method` call takes effect, then answers `status` (a create that stored
        the order and failed before saying so); other calls pass meanwhile."""
        with self.lock:
            self._faults.append(
                _Fault("status", status=status, after_processing=True, method=method)
            )

    def timeout_next(self, n: int, *, after_processing: bool = True) -> None:
        """The next `n` API calls time out; with `after_processing` the call took effect first."""
        with self.lock:
            self._faults.extend(
                _Fault("timeout", after_processing=after_processing) for _ in range(n)
            )

    def drop_next_webhooks(self, n: int) -> None:
        """The next `n` webhooks are lost, as best-effort delivery sometimes loses them."""
        with self.lock:
            self._drop_webhooks += n

    def place_order(self, sku: str, quantity: int = 1) -> str:
        """A buyer orders `quantity` units of `sku` on this channel: the channel's order id.
        Its signed webhook goes to `webhook_url`. Each channel's simulator says how its buyers
        order; a provider's has none (NotImplementedError)."""
        raise NotImplementedError(f"{type(self).__name__} simulates no channel with buyers")

    def calls_to(self, method: str, path_prefix: str) -> list[RecordedCall]:
        with self.lock:
            return [c for c in self.calls if c.method == method and c.path.startswith(path_prefix)]

    # -- webhooks ---------------------------------------------------------------------------

    def deliver(self, body: bytes, headers: Mapping[str, str]) -> int | None:
        """Send one webhook to the target; the target's status, or None when dropped."""
        with self.lock:
            dropped = self._drop_webhooks > 0
            if dropped:
                self._drop_webhooks -= 1
        status: int | None = None
        if not dropped and self.webhook_url is not None:
            client = self.webhook_client or httpx.Client(timeout=10.0)
            try:
                response = client.post(
                    self.webhook_url,
                    content=body,
                    headers={"content-type": "application/json", **headers},
                )
                status = response.status_code
            except httpx.HTTPError:
                status = None
            finally:
                if self.webhook_client is None:
                    client.close()
        with self.lock:
            self.sent_webhooks.append(
                SentWebhook(self.webhook_url or "", dict(headers), body, status)
            )
        return status

    # -- plumbing ---------------------------------------------------------------------------

    def install(self, app: FastAPI) -> None:
        """Record every API call and apply injected faults; `/_sim` control routes are exempt."""
        control = FastAPI()

        @control.post("/place-order")
        def _place_order(sku: str = "SIM-TEE-01", quantity: int = 1) -> JSONResponse:
            try:
                order_id = self.place_order(sku, quantity)
            except NotImplementedError as exc:
                return JSONResponse({"error": "not_a_channel", "detail": str(exc)}, 404)
            except ValueError as exc:
                return JSONResponse({"error": "bad_request", "detail": str(exc)}, 400)
            with self.lock:
                sent = self.sent_webhooks[-1] if self.sent_webhooks else None
            return JSONResponse(
                {"order_id": order_id, "webhook_status": sent.status if sent else None}
            )

        @control.post("/fail-next")
        def _fail_next(n: int = 1, status: int = 500) -> dict[str, int]:
            self.fail_next(n, status)
            return {"queued": n}

        @control.post("/drop-webhooks")
        def _drop(n: int = 1) -> dict[str, int]:
            self.drop_next_webhooks(n)
            return {"queued": n}

        app.mount(CONTROL_PREFIX, control)

        @app.middleware("http")
        async def _record(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            if request.url.path.startswith(CONTROL_PREFIX):
                return await call_next(request)
            raw = await request.body()
            try:
                payload: Any = json.loads(raw) if raw else None
            except ValueError:
                payload = raw.decode("utf-8", "replace")
            with self.lock:
                fault = next((f for f in self._faults if f.method in (None, request.method)), None)
                if fault is not None:
                    self._faults.remove(fault)
            if fault is not None and not fault.after_processing:
                if fault.kind == "timeout":
                    raise httpx.ReadTimeout("simulated timeout")
                response: Response = (
                    # A success that did nothing: no body, as the operations that answer 2xx
                    # without content document.
                    Response(status_code=fault.status)
                    if fault.body is None and fault.status < 300
                    else JSONResponse(
                        fault.body or {"error": "simulated failure"}, status_code=fault.status
                    )
                )
            else:
                response = await call_next(request)
                if fault is not None and fault.kind == "status":
                    response = JSONResponse(
                        fault.body or {"error": "simulated failure"}, status_code=fault.status
                    )
            with self.lock:
                self.calls.append(
                    RecordedCall(
                        request.method,
                        request.url.path,
                        dict(request.query_params),
                        payload,
                        dict(request.headers),
                        response.status_code,
                    )
                )
            if fault is not None and fault.kind == "timeout" and fault.after_processing:
                raise httpx.ReadTimeout("simulated timeout after the call took effect")
            return response
