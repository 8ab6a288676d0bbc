"""A stateful fake of Deliverr's Orders API for tests and the demo.

It answers as Deliverr's v1 description has it (`connectors/deliverr/spec`), and refuses what
the description does not admit before anything else looks at a request (`enforce`):

- `POST /orders/v1/order`: 201 with the whole order; 400 `{"code": 400, "message", "type"}`
  naming the seller guide's error type (a missing address line, an unknown product...); 422
  when the externalOrderId is taken (Deliverr documents no answer for that: unverified). An
  `idempotency-key` is remembered with its answer: a request repeating it gets that answer
  again, marked `idempotent-replayed: true` (after the first finishes, if it is still running);
  the same key with another body is refused (422).
- `GET /orders/v1/order/{orderId}`, `GET /orders/v1/order/externalId/{externalOrderId}`: the
  order, or 404 `{"code": 404, "message"}`.
- `POST /orders/v1/order/{orderId}/cancel`: 204 (again on a cancelled order); 404 for an unknown
  order and 422 once anything shipped (both inferred: the description lists only 204 and 401).
- `POST /oauth/v1/token` form `grant_type=refresh_token&refresh_token=...`: a new token pair,
  the refresh token rotated; 400 otherwise.
- 401 `{"code": 401, "message"}` for a missing, wrong or expired access token.

Driving methods (also under `/_sim`): `process`, `ship`, `mark_delivered`, `expire_access_token`,
`set_error_for_next_create`, `timeout_next_create`, `slow_next_create`, `flush_webhooks`.
Webhooks are ORDER_STATUS_UPDATE events for CREATED, SHIPPED (the whole order, every package)
and CANCELLED only, as Deliverr sends them: processing, partial shipments and delivery are seen
by reading the order. Those caused by API calls (create, cancel) wait in `pending_webhooks` until
`flush_webhooks()`, so a webhook never calls back into the caller while its request is in flight,
and a test can deliver them late (SHIPPED before its CREATED).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from connectors.contracts import enforce
from connectors.deliverr.spec import CONTRACT
from connectors.deliverr.transformers import (
    ERROR_RULES,
    ORDER_STATUS_UPDATE,
    SHIPPED_STATUSES,
    DeliverrErrorCode,
    DeliverrOrderStatus,
    format_time,
)
from connectors.simulation import CONTROL_PREFIX, IdempotencyKeys, ShipBody, SimulatorBase

_SCHEMAS = CONTRACT.document["components"]["schemas"]
CARRIERS = frozenset(_SCHEMAS["ShippingCarrierType"]["enum"])
SERVICES = frozenset(_SCHEMAS["ShippingServiceType"]["enum"])
WAREHOUSES = frozenset(_SCHEMAS["WarehouseIdType"]["enum"])
# "Domestic" for ORDER_MISSING_STATE_ZIP: Deliverr's warehouses are in the United States.
DOMESTIC_COUNTRY = "US"
IDEMPOTENCY_HEADER = "idempotency-key"
# The create's fields an order answer repeats (OrderApiStatusModel admits no others).
_ECHOED = frozenset(_SCHEMAS["OrderApiStatusModel"]["properties"])
# The statuses Deliverr sends webhooks for (WebhookOrderStatus).
WEBHOOK_STATUSES = frozenset(
    {DeliverrOrderStatus.CREATED, DeliverrOrderStatus.SHIPPED, DeliverrOrderStatus.CANCELLED}
)

# Where the body of a refused create went wrong, and the seller guide's error type for it:
# Deliverr answers a bad order with the type that names its fault.
_SEED_TYPE_FOR = (
    ("'shiptoAddress' is a required property", DeliverrErrorCode.ORDER_MISSING_SHIPPING_ADDRESS),
    ("'street1' is a required property", DeliverrErrorCode.ORDER_MISSING_ADDRESS_LINE),
    ("'city' is a required property", DeliverrErrorCode.ORDER_MISSING_CITY),
    ("'state' is a required property", DeliverrErrorCode.ORDER_MISSING_STATE_ZIP),
    ("'postcode' is a required property", DeliverrErrorCode.ORDER_MISSING_STATE_ZIP),
    ("countryCode", DeliverrErrorCode.ORDER_INVALID_COUNTRY_CODE),
    ("'lineItems' is a required property", DeliverrErrorCode.ORDER_CANNOT_BE_FULFILLED),
    ("'externalProductId' is a required property", DeliverrErrorCode.ORDER_MISSING_LINE_ITEM),
)


class SimulationError(ValueError):
    """A driving call the simulated Deliverr cannot carry out (unknown order, nothing to ship)."""


@dataclass
class _SimOrder:
    order_id: str
    external_order_id: str
    request: dict[str, Any]
    line_items: list[dict[str, Any]]
    status: DeliverrOrderStatus = DeliverrOrderStatus.CREATED
    # The last status a webhook reported (`oldStatus` of the next one).
    reported: DeliverrOrderStatus | None = None
    shipments: list[dict[str, Any]] = field(default_factory=list)
    shipped: dict[int, int] = field(default_factory=dict)  # line item index -> units shipped
    shipped_at: str | None = None
    delivered_at: str | None = None

    def remaining(self, index: int) -> int:
        return int(self.line_items[index]["quantity"]) - self.shipped.get(index, 0)

    def as_json(self) -> dict[str, Any]:
        """OrderApiStatusModel, which repeats only some of the create's fields (not
        `shipMethod`, `deliverDays` or `orderCreationTime`)."""
        out = {
            **{k: v for k, v in self.request.items() if k in _ECHOED},
            "orderId": self.order_id,
            "externalOrderId": self.external_order_id,
            "status": self.status.value,
            "lineItems": self.line_items,
            "shipments": self.shipments,
        }
        if self.shipped_at is not None:
            out["orderShippedTime"] = self.shipped_at
        if self.delivered_at is not None:
            out["orderDeliveredTime"] = self.delivered_at
        return out


class _ShipBody(ShipBody):
    carrier: str = "UPS"


Answer = tuple[int, dict[str, Any]]


def _error_body(status: int, message: str, error_type: str | None = None) -> Answer:
    """Deliverr's error body: `code` repeats the status, `type` names the error."""
    body: dict[str, Any] = {"code": status, "message": message}
    if error_type is not None:
        body["type"] = error_type
    return status, body


def _error(status: int, message: str, error_type: str | None = None) -> JSONResponse:
    code, body = _error_body(status, message, error_type)
    return JSONResponse(body, status_code=code)


def _seed_error(code: DeliverrErrorCode) -> Answer:
    return _error_body(400, ERROR_RULES[code].explanation, code.value)


def _refuse(status: int, problems: list[str]) -> JSONResponse:
    """A request the description does not admit; a create names the guide's error type."""
    for fragment, code in _SEED_TYPE_FOR:
        if any(fragment in problem for problem in problems):
            return _error(status, ERROR_RULES[code].explanation, code.value)
    return _error(status, "; ".join(problems))


def _refuse_token(status: int, problems: list[str]) -> JSONResponse:
    return _error(status, "; ".join(problems))


def _no_such_order(status: int, problems: list[str]) -> JSONResponse:
    """An order id that is not one (not a number): no such order, as Deliverr documents."""
    return _error(404, "No order with this orderId.")


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def product_id(sku: str) -> str:
    """The Deliverr SKU (DSKU, `D` and ten characters) the simulator assigns to a seller SKU,
    stable across runs."""
    return "D" + hashlib.sha256(sku.encode()).hexdigest()[:10].upper()


def service_for(carrier: str) -> str:
    """A ground service of `carrier` from Deliverr's list, for packages shipped without one."""
    ground = f"{carrier}.GROUND"
    if ground in SERVICES:
        return ground
    return str(min(s for s in SERVICES if s.startswith(f"{carrier}.")))


class DeliverrSimulator(SimulatorBase):
    """The Deliverr Orders API with its validation, its error codes and its webhooks."""

    def __init__(
        self,
        access_token: str,
        webhook_token: str,
        webhook_header: str = "X-Deliverr-Token",
        refresh_token: str | None = None,
        webhook_url: str | None = None,
        webhook_client: httpx.Client | None = None,
        known_products: Iterable[str] | None = None,
    ) -> None:
        super().__init__(webhook_url=webhook_url, webhook_client=webhook_client)
        self.access_token: str | None = access_token
        self.refresh_token = refresh_token
        self.webhook_token = webhook_token
        self.webhook_header = webhook_header
        # None: every SKU has inventory; otherwise only these SKUs were ever inbounded.
        self.known_products = frozenset(known_products) if known_products is not None else None
        self.orders: dict[str, _SimOrder] = {}
        self.pending_webhooks: list[bytes] = []
        self._by_external: dict[str, str] = {}
        self._keys = IdempotencyKeys()
        self._next_create_errors: list[DeliverrErrorCode] = []
        self._creates_to_time_out = 0
        self._create_delays: list[float] = []
        self._ids = itertools.count(100_000_001)
        self._tracking = itertools.count(1)
        self._token_generation = itertools.count(1)
        self.app = FastAPI(title="Deliverr simulator")
        self._routes()
        # Installed first, so the recording middleware sees its refusals too.
        enforce(
            self.app,
            CONTRACT,
            _refuse,
            refusers={
                "/oauth/v1/token": _refuse_token,
                "/orders/v1/order/{orderId}": _no_such_order,
                "/orders/v1/order/{orderId}/cancel": _no_such_order,
            },
        )
        self.install(self.app)

    # -- driving ----------------------------------------------------------------------------

    def set_error_for_next_create(self, code: str) -> None:
        """The next create answers this seed error type, whatever its body."""
        with self.lock:
            self._next_create_errors.append(DeliverrErrorCode(code))

    def timeout_next_create(self, n: int = 1) -> None:
        """The next `n` creates store the order, then time out before answering.

        Unlike `timeout_next`, which hits whatever call comes next, this lets the create's
        lookup by external id through and catches the POST itself: the case a retry must
        recognise without creating a second order.
        """
        with self.lock:
            self._creates_to_time_out += n

    def slow_next_create(self, seconds: float) -> None:
        """The next create takes `seconds` before Deliverr stores and answers it: a client
        that gives up sooner has not seen the order it created."""
        with self.lock:
            self._create_delays.append(seconds)

    def expire_access_token(self) -> None:
        """Invalidate the current access token: calls answer 401 until it is renewed."""
        with self.lock:
            self.access_token = None

    def process(self, order_id: str) -> None:
        """The warehouse starts picking: CREATED -> PROCESSING (Deliverr sends no webhook)."""
        with self.lock:
            order = self._order(order_id)
            if order.status != DeliverrOrderStatus.CREATED:
                raise SimulationError(f"order {order_id} is {order.status}, not CREATED")
            order.status = DeliverrOrderStatus.PROCESSING

    def ship(
        self,
        order_id: str,
        items: Sequence[tuple[str, int]] | None = None,
        *,
        carrier: str = "UPS",
        tracking_number: str | None = None,
        service: str | None = None,
        warehouse_id: str = "ATL1FC",
    ) -> dict[str, Any]:
        """Ship one package with `items` ((sku, quantity) pairs; None: all that is left).

        The order becomes PARTIALLY_SHIPPED or SHIPPED; once SHIPPED, an ORDER_STATUS_UPDATE
        listing every package is delivered (a partial shipment sends none). `carrier`,
        `service` and `warehouse_id` must be values Deliverr's description lists. Answers the
        new package as Deliverr reports it.
        """
        if carrier not in CARRIERS:
            raise SimulationError(f"Deliverr has no carrier {carrier!r}")
        service = service or service_for(carrier)
        if service not in SERVICES or warehouse_id not in WAREHOUSES:
            raise SimulationError(f"Deliverr has no service {service!r} or {warehouse_id!r}")
        body: bytes | None = None
        with self.lock:
            order = self._order(order_id)
            if order.status in (DeliverrOrderStatus.CANCELLED, DeliverrOrderStatus.ERROR):
                raise SimulationError(f"order {order_id} is {order.status}; it cannot ship")
            wanted = (
                list(items)
                if items is not None
                else [
                    (str(line["externalProductId"]), order.remaining(i))
                    for i, line in enumerate(order.line_items)
                    if order.remaining(i) > 0
                ]
            )
            allocation = self._allocate(order, wanted)
            if not allocation:
                raise SimulationError(f"order {order_id} has nothing left to ship")
            for index, quantity in allocation:
                order.shipped[index] = order.shipped.get(index, 0) + quantity
            tracking = tracking_number or f"1ZSIM{next(self._tracking):012d}"
            done = all(order.remaining(i) == 0 for i in range(len(order.line_items)))
            shipped_items: list[dict[str, Any]] = []
            for index, quantity in allocation:
                line = order.line_items[index]
                item = {
                    "externalProductId": line["externalProductId"],
                    "productId": product_id(str(line["externalProductId"])),
                    "status": "SHIPPED" if order.remaining(index) == 0 else "PARTIALLY_SHIPPED",
                    "quantityOrdered": line["quantity"],
                    "quantity": quantity,
                }
                if line.get("lineItemId") is not None:
                    item["lineItemId"] = line["lineItemId"]
                shipped_items.append(item)
            shipped_at = format_time(self.now())
            shipment: dict[str, Any] = {
                "trackingNumber": tracking,
                "shippingCarrier": carrier,
                "shippingService": service,
                "shippedTime": shipped_at,
                "trackingUrl": f"https://sim.deliverr.invalid/track/{tracking}",
                "warehouseId": warehouse_id,
                "status": "SHIPPED",
                "shippedItems": shipped_items,
            }
            order.shipments.append(shipment)
            if done:
                order.shipped_at = shipped_at
                body = self._transition(order, DeliverrOrderStatus.SHIPPED)
            else:
                order.status = DeliverrOrderStatus.PARTIALLY_SHIPPED
        if body is not None:
            self._send(body)
        return shipment

    def mark_delivered(self, order_id: str) -> None:
        """Every package arrived: SHIPPED -> DELIVERED (Deliverr sends no webhook)."""
        with self.lock:
            order = self._order(order_id)
            if order.status != DeliverrOrderStatus.SHIPPED:
                raise SimulationError(f"order {order_id} is {order.status}, not SHIPPED")
            order.status = DeliverrOrderStatus.DELIVERED
            order.delivered_at = format_time(self.now())

    def flush_webhooks(self) -> list[int | None]:
        """Deliver the webhooks API calls produced, oldest first; their delivery statuses."""
        with self.lock:
            pending, self.pending_webhooks = self.pending_webhooks, []
        return [self._send(body) for body in pending]

    def order_by_external_id(self, external_order_id: str) -> dict[str, Any] | None:
        """The order as the API would answer it, for assertions and the demo."""
        with self.lock:
            order_id = self._by_external.get(external_order_id)
            return self.orders[order_id].as_json() if order_id is not None else None

    def now(self) -> datetime:
        """The simulator's clock (shipment and event times)."""
        return datetime.now(UTC)

    # -- state ------------------------------------------------------------------------------

    def _order(self, order_id: str) -> _SimOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise SimulationError(f"no order {order_id}")
        return order

    @staticmethod
    def _allocate(order: _SimOrder, wanted: Sequence[tuple[str, int]]) -> list[tuple[int, int]]:
        """(line item index, units) for each requested SKU, filling lines in order."""
        taken: dict[int, int] = {}
        for sku, quantity in wanted:
            if quantity < 1:
                raise SimulationError(f"cannot ship {quantity} of {sku}")
            left = quantity
            for index, line in enumerate(order.line_items):
                if line["externalProductId"] != sku or left == 0:
                    continue
                free = order.remaining(index) - taken.get(index, 0)
                share = min(free, left)
                if share > 0:
                    taken[index] = taken.get(index, 0) + share
                    left -= share
            if left:
                raise SimulationError(f"order {order.order_id} has not {quantity} of {sku} to ship")
        return sorted(taken.items())

    def _transition(self, order: _SimOrder, status: DeliverrOrderStatus) -> bytes:
        """Move `order` to `status`, one Deliverr reports by webhook; that webhook's body."""
        order.status = status
        return self._event(order)

    def _event(self, order: _SimOrder) -> bytes:
        assert order.status in WEBHOOK_STATUSES, f"Deliverr sends no webhook for {order.status}"
        payload: dict[str, Any] = {
            "eventId": str(uuid.uuid4()),
            "eventTime": format_time(self.now()),
            "type": ORDER_STATUS_UPDATE,
            "updateType": order.status.value,
            "newStatus": order.status.value,
            "orderId": order.order_id,
        }
        if order.reported is not None:
            payload["oldStatus"] = order.reported.value
        if order.status is DeliverrOrderStatus.SHIPPED:
            payload["shipments"] = json.loads(json.dumps(order.shipments))
        order.reported = order.status
        return json.dumps(payload).encode()

    def _send(self, body: bytes) -> int | None:
        # Outside the lock: the receiver may call this API while handling the webhook.
        return self.deliver(body, {self.webhook_header: self.webhook_token})

    def _authorized(self, request: Request) -> bool:
        with self.lock:
            token = self.access_token
        return token is not None and request.headers.get("authorization") == f"Bearer {token}"

    def _business_problem(self, payload: dict[str, Any]) -> Answer | None:
        """What Deliverr refuses in a body that fits its schema: blank required text, a
        domestic address without state or zip, products never inbounded."""
        address = payload["shiptoAddress"]
        if _blank(address["street1"]):
            return _seed_error(DeliverrErrorCode.ORDER_MISSING_ADDRESS_LINE)
        if _blank(address["city"]):
            return _seed_error(DeliverrErrorCode.ORDER_MISSING_CITY)
        if address["countryCode"] == DOMESTIC_COUNTRY and (
            _blank(address["state"]) or _blank(address["postcode"])
        ):
            return _seed_error(DeliverrErrorCode.ORDER_MISSING_STATE_ZIP)
        lines = payload["lineItems"]
        if not lines:
            return _seed_error(DeliverrErrorCode.ORDER_CANNOT_BE_FULFILLED)
        if any(_blank(line["externalProductId"]) for line in lines):
            return _seed_error(DeliverrErrorCode.ORDER_MISSING_LINE_ITEM)
        if any(line["quantity"] != int(line["quantity"]) for line in lines):
            return _error_body(422, "lineItems[].quantity must be a whole number of units")
        if self.known_products is not None and any(
            line["externalProductId"] not in self.known_products for line in lines
        ):
            return _seed_error(DeliverrErrorCode.PRODUCT_NOT_AVAILABLE)
        return None

    def _create(self, payload: dict[str, Any], key: str | None) -> tuple[int, Any, bool]:
        """(status, body, replayed) of one create; blocks while an earlier request with the
        same idempotency key is still running, then replays its answer."""
        return self._keys.run(
            key,
            payload,
            lambda: self._store(payload),
            lambda: _error_body(422, "idempotency-key reused for another request"),
        )

    def _store(self, payload: dict[str, Any]) -> Answer:
        with self.lock:
            delay = self._create_delays.pop(0) if self._create_delays else 0.0
        if delay:
            time.sleep(delay)
        with self.lock:
            if self._next_create_errors:
                return _seed_error(self._next_create_errors.pop(0))
            if payload["externalOrderId"] in self._by_external:
                return _error_body(422, "An order with this externalOrderId exists.")
            problem = self._business_problem(payload)
            if problem is not None:
                return problem
            order_id = str(next(self._ids))
            request_fields = {
                k: v for k, v in payload.items() if k not in ("lineItems", "externalOrderId")
            }
            order = _SimOrder(
                order_id=order_id,
                external_order_id=payload["externalOrderId"],
                request=request_fields,
                line_items=[dict(line) for line in payload["lineItems"]],
            )
            self.orders[order_id] = order
            self._by_external[order.external_order_id] = order_id
            self.pending_webhooks.append(self._event(order))
            answer = order.as_json()
            time_out = self._creates_to_time_out > 0
            if time_out:
                self._creates_to_time_out -= 1
        if time_out:
            raise httpx.ReadTimeout("simulated timeout after the order was stored")
        return 201, answer

    # -- API --------------------------------------------------------------------------------

    def _routes(self) -> None:
        app = self.app
        unauthorized = {"code": 401, "message": "Invalid or expired access token."}

        @app.post("/oauth/v1/token")
        async def token(request: Request) -> JSONResponse:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            with self.lock:
                valid = (
                    form.get("grant_type") == "refresh_token"
                    and self.refresh_token is not None
                    and form.get("refresh_token") == self.refresh_token
                )
                if not valid:
                    return _error(400, "invalid refresh token")
                generation = next(self._token_generation)
                self.access_token = f"sim-access-{generation}-{uuid.uuid4().hex[:8]}"
                self.refresh_token = f"sim-refresh-{generation}-{uuid.uuid4().hex[:8]}"
                return JSONResponse(
                    {
                        "access_token": self.access_token,
                        "refresh_token": self.refresh_token,
                        "token_type": "bearer",
                        "expires_in": 3600,
                    }
                )

        @app.post("/orders/v1/order")
        async def create(request: Request) -> Response:
            if not self._authorized(request):
                return JSONResponse(unauthorized, status_code=401)
            # The body fits OrderApiCreateRequest: `enforce` refused it otherwise.
            payload = json.loads(await request.body())
            key = request.headers.get(IDEMPOTENCY_HEADER)
            # Off the event loop: a create may wait for another with its key, or be slow.
            status, body, replayed = await run_in_threadpool(self._create, payload, key)
            headers = {"idempotent-replayed": "true"} if replayed else {}
            return JSONResponse(body, status_code=status, headers=headers)

        @app.get("/orders/v1/order/externalId/{external_order_id}")
        def by_external_id(external_order_id: str, request: Request) -> JSONResponse:
            if not self._authorized(request):
                return JSONResponse(unauthorized, status_code=401)
            found = self.order_by_external_id(external_order_id)
            if found is None:
                return _error(404, "No order with this externalOrderId.")
            return JSONResponse(found)

        @app.get("/orders/v1/order/{order_id}")
        def get(order_id: str, request: Request) -> JSONResponse:
            if not self._authorized(request):
                return JSONResponse(unauthorized, status_code=401)
            with self.lock:
                order = self.orders.get(order_id)
                if order is None:
                    return _error(404, "No order with this orderId.")
                return JSONResponse(order.as_json())

        @app.post("/orders/v1/order/{order_id}/cancel")
        def cancel(order_id: str, request: Request) -> Response:
            if not self._authorized(request):
                return JSONResponse(unauthorized, status_code=401)
            with self.lock:
                order = self.orders.get(order_id)
                if order is None:
                    return _error(404, "No order with this orderId.")
                if order.status in SHIPPED_STATUSES:
                    return _error(422, "The order has already shipped and cannot be cancelled.")
                if order.status != DeliverrOrderStatus.CANCELLED:
                    event = self._transition(order, DeliverrOrderStatus.CANCELLED)
                    self.pending_webhooks.append(event)
                return Response(status_code=204)

        # Control routes are declared before `install` mounts its own `/_sim` app, so they match
        # first; the recording middleware leaves every `/_sim` path alone.
        control = CONTROL_PREFIX

        @app.post(f"{control}/orders/{{order_id}}/ship")
        def ship(order_id: str, body: _ShipBody) -> JSONResponse:
            items = [(i.sku, i.quantity) for i in body.items] if body.items is not None else None
            try:
                shipment = self.ship(
                    order_id, items, carrier=body.carrier, tracking_number=body.tracking_number
                )
            except SimulationError as exc:
                return JSONResponse({"error": str(exc)}, status_code=409)
            return JSONResponse(shipment)

        @app.post(f"{control}/orders/{{order_id}}/process")
        def process(order_id: str) -> JSONResponse:
            try:
                self.process(order_id)
            except SimulationError as exc:
                return JSONResponse({"error": str(exc)}, status_code=409)
            return JSONResponse({"orderId": order_id, "status": "PROCESSING"})

        @app.post(f"{control}/orders/{{order_id}}/deliver")
        def deliver(order_id: str) -> JSONResponse:
            try:
                self.mark_delivered(order_id)
            except SimulationError as exc:
                return JSONResponse({"error": str(exc)}, status_code=409)
            return JSONResponse({"orderId": order_id, "status": "DELIVERED"})

        @app.get(f"{control}/orders")
        def orders() -> JSONResponse:
            with self.lock:
                return JSONResponse([o.as_json() for o in self.orders.values()])

        @app.post(f"{control}/expire-token")
        def expire() -> dict[str, bool]:
            self.expire_access_token()
            return {"expired": True}

        @app.post(f"{control}/next-create-error")
        def next_error(code: str) -> JSONResponse:
            try:
                self.set_error_for_next_create(code)
            except ValueError:
                return JSONResponse({"error": f"unknown error type {code}"}, status_code=400)
            return JSONResponse({"queued": code})

        @app.post(f"{control}/timeout-next-create")
        def timeout_create(n: int = 1) -> dict[str, int]:
            self.timeout_next_create(n)
            return {"queued": n}

        @app.post(f"{control}/flush-webhooks")
        def flush() -> dict[str, list[int | None]]:
            return {"statuses": self.flush_webhooks()}
