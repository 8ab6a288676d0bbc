"""What every simulator shares: a record of the calls it received, fault injection, and
delivery of its own webhooks to a configured target.

Two kinds of fault injection: queued faults (`fail_next`, `timeout_next`) hit the next calls
exactly, for tests that need one precise failure; `Chaos` rates hit any call at random, over
real HTTP (a 500, a 429 with `Retry-After`, a hang, a connection dropped after the call took
effect), for fault drills. Rates are set at start or at run time through `/_sim/chaos`.

A simulator is a real implementation of an external API's behaviour (state, validation, errors)
served as a FastAPI app. Tests and the demo drive the real connector client against it through
httpx, so the code under test is the code that runs in production.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.asgi import add_http_middleware, read_body

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


class Chaos(BaseModel):
    """Rates (0..1) at which any API call, drawn at random, meets a fault. Control routes and
    webhooks the simulator sends are never hit."""

    error_rate: float = Field(0.0, ge=0, le=1)  # 500, not processed
    throttle_rate: float = Field(0.0, ge=0, le=1)  # 429 with Retry-After, not processed
    retry_after: int = Field(1, ge=0)  # the 429's Retry-After, seconds
    hang_rate: float = Field(0.0, ge=0, le=1)  # held `hang_seconds`, then processed
    hang_seconds: float = Field(15.0, ge=0)
    reset_rate: float = Field(0.0, ge=0, le=1)  # processed, then the connection drops unanswered

    def draw(self, rng: random.Random) -> str | None:
        """The fault one call meets, or None."""
        roll = rng.random()
        for kind, rate in (
            ("error", self.error_rate),
            ("throttle", self.throttle_rate),
            ("hang", self.hang_rate),
            ("reset", self.reset_rate),
        ):
            if roll < rate:
                return kind
            roll -= rate
        return None


class _ChaosMiddleware:
    """Applies the simulator's `Chaos` to each API call, as raw ASGI: only there can a
    connection be dropped after the call took effect without any answer reaching the client."""

    def __init__(self, app: ASGIApp, simulator: SimulatorBase) -> None:
        self.app = app
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        sim = self.simulator
        with sim.lock:
            chaos = sim.chaos
            fault = chaos.draw(sim.rng)
            if fault is not None:
                sim.faults_injected[fault] += 1
        if fault == "error":
            await JSONResponse({"error": "simulated failure"}, 500)(scope, receive, send)
        elif fault == "throttle":
            headers = {"Retry-After": str(chaos.retry_after)}
            await JSONResponse({"error": "simulated throttle"}, 429, headers)(scope, receive, send)
        elif fault == "hang":
            # The request is read first, as a server has it before a slow handler runs, so
            # the call takes effect even when the client gave up waiting meanwhile.
            replay = await _buffered(receive)
            await asyncio.sleep(chaos.hang_seconds)
            await self.app(scope, replay, send)
        elif fault == "reset":
            await self.app(scope, receive, _swallow)
            # Headers promising a body that never comes, then an error: the server closes the
            # connection and the client sees it drop mid-answer, the call's effect already made.
            await send({"type": "http.response.start", "status": 200, "headers": _PROMISED})
            raise ConnectionResetError("simulated connection reset after the call took effect")
        else:
            await self.app(scope, receive, send)


_PROMISED = [(b"content-type", b"application/json"), (b"content-length", b"1024")]


async def _buffered(receive: Receive) -> Receive:
    """Read the whole request now; a `receive` that gives it again, then waits for ever (a
    client that left must not cancel the call)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        messages.append(message)
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    return replay


async def _swallow(_message: Message) -> None:
    """Sends nothing: the answer of a call whose connection is to drop."""


def _recording(send: Send, record: Callable[[int], None]) -> Send:
    """`send`, calling `record` with the answer's status before its first message goes."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            record(message["status"])
        await send(message)

    return sending


class ShipItem(BaseModel):
    sku: str
    quantity: int


class ShipBody(BaseModel):
    """A provider simulator's control call "ship this order": every open unit when `items` is
    absent; a simulator sets the carrier its provider's description admits."""

    items: list[ShipItem] | None = None
    carrier: str
    tracking_number: str | None = None


@dataclass
class _Remembered:
    """An idempotency key: the request it came with and, once answered, its answer."""

    digest: str
    done: threading.Event = field(default_factory=threading.Event)
    status: int = 0
    body: Any = None


class IdempotencyKeys:
    """Requests remembered by their idempotency key, as an API that honours one does: a repeat
    of the same request waits while the first runs, then gets its answer again; the same key
    with another request is refused. A request that got no answer (it raised) is forgotten."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, _Remembered] = {}

    def run(
        self,
        key: str | None,
        payload: Any,
        answer: Callable[[], tuple[int, Any]],
        reused: Callable[[], tuple[int, Any]],
    ) -> tuple[int, Any, bool]:
        """(status, body, replayed): `answer()` once per key, `reused()` for another request
        under a key already taken."""
        if key is None:
            status, body = answer()
            return status, body, False
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        with self._lock:
            seen = self._keys.get(key)
            if seen is None:
                remembered = self._keys[key] = _Remembered(digest)
        if seen is not None:
            if seen.digest != digest:
                status, body = reused()
                return status, body, False
            seen.done.wait()
            return seen.status, seen.body, True
        try:
            status, body = answer()
        except BaseException:
            with self._lock:
                del self._keys[key]
            remembered.done.set()
            raise
        remembered.status, remembered.body = status, body
        remembered.done.set()
        return status, body, False


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
    chaos: Chaos = field(default_factory=Chaos)
    faults_injected: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=random.Random)
    # A channel retries a webhook that got no 2xx answer; 1 sends each once.
    webhook_attempts: int = 1
    webhook_retry_wait: float = 0.2

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
        """Send one webhook to the target (up to `webhook_attempts` times while it gets no 2xx
        answer); the target's last status, or None when dropped."""
        with self.lock:
            dropped = self._drop_webhooks > 0
            if dropped:
                self._drop_webhooks -= 1
        url = self.webhook_url
        if dropped or url is None:
            with self.lock:
                self.sent_webhooks.append(SentWebhook(url or "", dict(headers), body, None))
            return None
        status: int | None = None
        for attempt in range(max(1, self.webhook_attempts)):
            if attempt:
                time.sleep(self.webhook_retry_wait)
            status = self._post_webhook(url, body, headers)
            with self.lock:
                self.sent_webhooks.append(SentWebhook(url, dict(headers), body, status))
            if status is not None and status < 300:
                break
        return status

    def _post_webhook(self, url: str, body: bytes, headers: Mapping[str, str]) -> int | None:
        client = self.webhook_client or httpx.Client(timeout=10.0)
        try:
            response = client.post(
                url,
                content=body,
                headers={"content-type": "application/json", **headers},
            )
            return response.status_code
        except httpx.HTTPError:
            return None
        finally:
            if self.webhook_client is None:
                client.close()

    def replay_recent(self, copies: int, recent: int = 20) -> list[int | None]:
        """Send one of the last `recent` webhooks again, `copies` times at once: the duplicate
        and racing deliveries a channel makes when it retries; their statuses."""
        with self.lock:
            sent = self.sent_webhooks[-recent:]
            if not sent:
                return []
            chosen = self.rng.choice(sent)
        statuses: list[int | None] = [None] * copies

        def send(index: int) -> None:
            statuses[index] = self._post_webhook(chosen.url, chosen.body, chosen.headers)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with self.lock:
            self.sent_webhooks.extend(
                SentWebhook(chosen.url, chosen.headers, chosen.body, status) for status in statuses
            )
        return statuses

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

        @control.get("/chaos")
        def _chaos() -> dict[str, Any]:
            with self.lock:
                return {"chaos": self.chaos.model_dump(), "injected": dict(self.faults_injected)}

        @control.put("/chaos")
        def _set_chaos(chaos: Chaos) -> dict[str, Any]:
            with self.lock:
                self.chaos = chaos
            return _chaos()

        @control.post("/webhooks/replay")
        def _replay(copies: int = 2) -> dict[str, list[int | None]]:
            return {"statuses": self.replay_recent(copies)}

        @control.get("/webhooks")
        def _webhooks() -> list[dict[str, Any]]:
            """Every delivery attempt: the body's SHA-256 (what the hub stores byte for byte)
            and the status it got."""
            with self.lock:
                sent = list(self.sent_webhooks)
            return [
                {"sha256": hashlib.sha256(w.body).hexdigest(), "status": w.status} for w in sent
            ]

        @control.get("/calls")
        def _calls() -> list[tuple[str, str, int]]:
            with self.lock:
                return [(c.method, c.path, c.status) for c in self.calls]

        app.mount(CONTROL_PREFIX, control)

        async def _record(inner: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope)
            if request.url.path.startswith(CONTROL_PREFIX):
                await inner(scope, receive, send)
                return
            raw, receive = await read_body(receive)
            try:
                payload: Any = json.loads(raw) if raw else None
            except ValueError:
                payload = raw.decode("utf-8", "replace")

            def record(status: int) -> None:
                call = RecordedCall(
                    request.method,
                    request.url.path,
                    dict(request.query_params),
                    payload,
                    dict(request.headers),
                    status,
                )
                with self.lock:
                    self.calls.append(call)

            with self.lock:
                fault = next((f for f in self._faults if f.method in (None, request.method)), None)
                if fault is not None:
                    self._faults.remove(fault)
            if fault is None:
                await inner(scope, receive, _recording(send, record))
                return
            if not fault.after_processing:
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
                record(response.status_code)
                await response(scope, receive, send)
                return
            # The call takes effect; the answer the app gives it is lost.
            statuses: list[int] = []
            await inner(scope, receive, _recording(_swallow, statuses.append))
            if fault.kind == "timeout":
                record(statuses[0])
                raise httpx.ReadTimeout("simulated timeout after the call took effect")
            response = JSONResponse(
                fault.body or {"error": "simulated failure"}, status_code=fault.status
            )
            record(response.status_code)
            await response(scope, receive, send)

        add_http_middleware(app, _record)

        # Added last, so outermost: a call it fails never reaches the recording above.
        app.add_middleware(_ChaosMiddleware, simulator=self)
