"""A stateful fake of the Flexport Logistics API for tests and the demo.

It answers as the contract subset (`connectors/flexport/spec`) describes, and refuses what the
subset does not admit before anything else looks at a request (`enforce`), with RFC 7807
problem+json bodies:

- `POST {v}/orders`: 200 with the order (`OrderModel`); 409 when the externalOrderId is taken
  (the notes infer a conflict: unverified); 400 for a `logisticsSku` the account has no product
  for. An `idempotency-key` is remembered with its answer and replayed, marked
  `idempotent-replayed: true`.
- `GET {v}/orders/{id}`, `GET {v}/orders/external_id/{externalOrderId}` (percent-decoded):
  the order or 404.
- `POST {v}/orders/{id}/cancel`: the order, CANCELLED; 422 once anything shipped.
- `POST {v}/orders/{id}/retry`: the order out of its error; 422 when it is not in one.
- `GET {v}/products` (`limit`, `offset`), `GET {v}/events` (`limit`, `page_info`; the next
  page's cursor in a `Link: <...>; rel="next"` header), `POST`/`GET {v}/webhooks`.
- 401 for a missing or wrong bearer token.

Ids are numeric strings. Webhooks carry ids only, authenticated as the subscription says (a
token in a named header, or HTTP Basic). Shipping (`ship`) sends `Shipment.Shipped`, and
`Order.Shipped` once nothing is left; cancelling queues `Order.Cancelled` in `pending_webhooks`
until `flush_webhooks()`, so a webhook never calls back into the caller while its request is in
flight. Every event also goes to the events feed.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.asgi import add_http_middleware
from connectors.contracts import enforce
from connectors.flexport.spec import CONTRACT
from connectors.flexport.transformers import InternalStatus, format_time
from connectors.simulation import CONTROL_PREFIX, IdempotencyKeys, ShipBody, SimulatorBase

PROBLEM = "application/problem+json"
IDEMPOTENCY_HEADER = "idempotency-key"
DOCS = "https://logistics-api.flexport.com/logistics/api/2024-07/documentation/spec#section/Errors"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
    423: "Locked",
    429: "Too Many Requests",
    503: "Service Unavailable",
}
ACCOUNT_ID = "sim-logistics-account"


class SimulationError(ValueError):
    """A driving call the simulated Flexport cannot carry out."""


def problem_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """An RFC 7807 body as Flexport writes one."""
    return {
        "status": status,
        "type": f"{DOCS}/{TITLES[status].replace(' ', '')}",
        "title": TITLES[status],
        "detail": detail,
        "instance": str(uuid.uuid4()),
        **extra,
    }


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, **extra),
        status_code=status,
        media_type=PROBLEM,
        headers=headers,
    )


def _refuse(status: int, problems: list[str]) -> JSONResponse:
    return problem(status, "; ".join(problems))


def logistics_sku(sku: str) -> str:
    """The DSKU the simulator gives a seller SKU, stable across runs."""
    return "D" + hashlib.sha256(sku.encode()).hexdigest()[:10].upper()


@dataclass
class _SimOrder:
    order_id: str
    external_order_id: str
    address: dict[str, Any]
    line_items: list[dict[str, Any]]
    created_at: str
    status: InternalStatus = InternalStatus.CREATED
    shipments: list[dict[str, Any]] = field(default_factory=list)
    shipped: dict[str, int] = field(default_factory=dict)  # logisticsSku -> units shipped
    shipped_at: str | None = None
    error: dict[str, Any] | None = None

    def ordered(self, dsku: str) -> int:
        return sum(int(i["quantity"]) for i in self.line_items if i["logisticsSku"] == dsku)

    def remaining(self, dsku: str) -> int:
        return self.ordered(dsku) - self.shipped.get(dsku, 0)

    def as_json(self) -> dict[str, Any]:
        fulfilment = {
            InternalStatus.CREATED: "ROUTING_IN_PROGRESS",
            InternalStatus.SHIPPED: "SHIPPED",
            InternalStatus.DELIVERED: "DELIVERED",
            InternalStatus.CANCELLED: "STOPPED",
            InternalStatus.ERROR: "STOPPED",
        }[self.status]
        out: dict[str, Any] = {
            "id": self.order_id,
            "externalOrderId": self.external_order_id,
            # The response's Address requires these; a real answer sends "" when unknown.
            "address": {"phone": "", "provinceCode": "", "zip": "", **self.address},
            "lineItems": self.line_items,
            "state": {
                "internalStatus": self.status.value,
                "fulfillmentStatus": fulfilment,
                "fulfillmentInProgress": self.status is InternalStatus.CREATED,
                "fulfillmentDelayed": False,
            },
            "shipments": self.shipments,
            "createdAt": self.created_at,
            "updatedAt": self.created_at,
        }
        if self.shipped_at is not None:
            out["shippedAt"] = self.shipped_at
        if self.error is not None:
            out["error"] = self.error
        return out


class _ShipBody(ShipBody):
    carrier: str = "DHL"


class FlexportSimulator(SimulatorBase):
    """The Flexport Logistics API: orders, products, events, webhooks."""

    def __init__(
        self,
        access_token: str,
        *,
        webhook_token: str | None = None,
        webhook_token_header: str = "X-Flexport-Token",
        webhook_basic: tuple[str, str] | None = None,
        products: Iterable[str] = (),
        webhook_url: str | None = None,
        webhook_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(webhook_url=webhook_url, webhook_client=webhook_client)
        self.access_token = access_token
        self.webhook_token = webhook_token
        self.webhook_token_header = webhook_token_header
        self.webhook_basic = webhook_basic
        self.products: dict[str, str] = {sku: logistics_sku(sku) for sku in products}
        self.orders: dict[str, _SimOrder] = {}
        self.events: list[dict[str, Any]] = []
        self.webhooks: list[dict[str, Any]] = []
        self.pending_webhooks: list[bytes] = []
        self._by_external: dict[str, str] = {}
        self._keys = IdempotencyKeys()
        self._errors_next_create: list[tuple[str, bool]] = []
        self._creates_to_time_out = 0
        self._problems: list[tuple[int, str, dict[str, str]]] = []
        self._ids = itertools.count(127_405_001)
        self._package_ids = itertools.count(1)
        self._tracking = itertools.count(1)
        self._event_ids = itertools.count(1)
        self._webhook_ids = itertools.count(1)
        self.app = FastAPI(title="Flexport Logistics API simulator")
        self._routes()

        async def _fail_with_problem(
            inner: ASGIApp, scope: Scope, receive: Receive, send: Send
        ) -> None:
            if Request(scope).url.path.startswith(CONTROL_PREFIX):
                await inner(scope, receive, send)
                return
            with self.lock:
                failure = self._problems.pop(0) if self._problems else None
            if failure is None:
                await inner(scope, receive, send)
                return
            status, detail, headers = failure
            # The index's 401 carries a `code` and `message` beside the problem's fields.
            extra: dict[str, Any] = {"code": 401, "message": detail} if status == 401 else {}
            await problem(status, detail, headers=headers, **extra)(scope, receive, send)

        add_http_middleware(self.app, _fail_with_problem)
        enforce(self.app, CONTRACT, _refuse)
        self.install(self.app)

    # -- driving ----------------------------------------------------------------------------

    def add_product(self, sku: str) -> str:
        """The seller creates product `sku` at Flexport; its logisticsSku."""
        with self.lock:
            self.products[sku] = logistics_sku(sku)
            return self.products[sku]

    def error_next_create(self, error_type: str = "INVENTORY_ERR", retriable: bool = True) -> None:
        """The next create stores its order in ERROR with this error type."""
        with self.lock:
            self._errors_next_create.append((error_type, retriable))

    def throttle_next(self, retry_after: int) -> None:
        """The next API call answers 429 with `Retry-After: retry_after` (seconds)."""
        with self.lock:
            self._problems.append((429, "Rate limit exceeded", {"Retry-After": str(retry_after)}))

    def fail_next_with_problem(self, status: int, detail: str) -> None:
        """The next API call answers `status` with a problem+json naming `detail`, unprocessed."""
        with self.lock:
            self._problems.append((status, detail, {}))

    def timeout_next_create(self, n: int = 1) -> None:
        """The next `n` creates store the order, then time out before answering."""
        with self.lock:
            self._creates_to_time_out += n

    def ship(
        self,
        order_id: str,
        items: Sequence[tuple[str, int]] | None = None,
        *,
        carrier: str = "DHL",
        tracking_number: str | None = None,
        warehouse_id: str = "WH-ATL-1",
    ) -> dict[str, Any]:
        """Ship one package with `items` ((seller SKU, quantity); None: all that is left) as a
        shipment of its own. Sends Shipment.Shipped, and Order.Shipped once all has left.
        Answers the package."""
        bodies: list[bytes] = []
        with self.lock:
            order = self._order(order_id)
            if order.status in (InternalStatus.CANCELLED, InternalStatus.ERROR):
                raise SimulationError(f"order {order_id} is {order.status}; it cannot ship")
            wanted = (
                [(self.products[sku], quantity) for sku, quantity in items]
                if items is not None
                else [
                    (line["logisticsSku"], order.remaining(line["logisticsSku"]))
                    for line in order.line_items
                    if order.remaining(line["logisticsSku"]) > 0
                ]
            )
            if not wanted:
                raise SimulationError(f"order {order_id} has nothing left to ship")
            for dsku, quantity in wanted:
                if quantity < 1 or quantity > order.remaining(dsku):
                    raise SimulationError(f"order {order_id} has not {quantity} of {dsku}")
            for dsku, quantity in wanted:
                order.shipped[dsku] = order.shipped.get(dsku, 0) + quantity
            now = format_time(datetime.now(UTC))
            tracking = tracking_number or f"FLX{next(self._tracking):010d}"
            lines = [{"logisticsSku": dsku, "quantity": quantity} for dsku, quantity in wanted]
            package = {
                "id": str(next(self._package_ids)),
                "lineItems": lines,
                "label": {
                    "id": f"label-{tracking}",
                    "carrier": carrier,
                    "trackingCode": tracking,
                    "trackingUrl": f"https://tracker.flexport.com/{tracking}",
                    "packageDimensions": {
                        "length": 10,
                        "width": 8,
                        "height": 4,
                        "lengthUnit": "in",
                        "weight": 1.5,
                        "weightUnit": "lb",
                    },
                },
                "carrierShipTime": now,
            }
            shipment_id = f"{order_id}-{len(order.shipments) + 1}"
            shipment: dict[str, Any] = {
                "id": shipment_id,
                "status": "SHIPPED",
                "warehouseId": warehouse_id,
                "lineItems": lines,
                "packages": [package],
                "shippedAt": now,
            }
            order.shipments.append(shipment)
            bodies.append(self._event(order, "Shipment.Shipped", shipment_id))
            if all(order.remaining(line["logisticsSku"]) == 0 for line in order.line_items):
                order.status = InternalStatus.SHIPPED
                order.shipped_at = now
                bodies.append(self._event(order, "Order.Shipped", order.order_id))
        for body in bodies:
            self._send(body)
        return package

    def flush_webhooks(self) -> list[int | None]:
        with self.lock:
            pending, self.pending_webhooks = self.pending_webhooks, []
        return [self._send(body) for body in pending]

    def order_by_external_id(self, external_order_id: str) -> dict[str, Any] | None:
        with self.lock:
            order_id = self._by_external.get(external_order_id)
            return self.orders[order_id].as_json() if order_id is not None else None

    # -- state ------------------------------------------------------------------------------

    def _order(self, order_id: str) -> _SimOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise SimulationError(f"no order {order_id}")
        return order

    def _event(self, order: _SimOrder, event_type: str, subject_id: str) -> bytes:
        """Record an event in the feed; the webhook body announcing it."""
        event_id = f"evt-{next(self._event_ids)}"
        now = format_time(datetime.now(UTC))
        ids = {
            "id": subject_id,
            "orderId": order.order_id,
            "externalOrderId": order.external_order_id,
        }
        self.events.append({"id": event_id, "type": event_type, "time": now, "payload": ids})
        return json.dumps(
            {
                "logisticsAccountId": ACCOUNT_ID,
                "logisticsEventId": event_id,
                "logisticsEventType": event_type,
                "logisticsEventTime": now,
                **ids,
            }
        ).encode()

    def _send(self, body: bytes) -> int | None:
        headers: dict[str, str] = {}
        if self.webhook_basic is not None:
            pair = f"{self.webhook_basic[0]}:{self.webhook_basic[1]}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
        elif self.webhook_token is not None:
            headers[self.webhook_token_header] = self.webhook_token
        return self.deliver(body, headers)

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.access_token}"

    def _create(self, payload: dict[str, Any], key: str | None) -> tuple[int, Any, bool]:
        """(status, body, replayed) of one create; blocks while an earlier request with the
        same idempotency key is still running, then replays its answer."""
        return self._keys.run(
            key,
            payload,
            lambda: self._store(payload),
            lambda: (422, "idempotency-key reused for another request"),
        )

    def _store(self, payload: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            external = payload["externalOrderId"]
            if external in self._by_external:
                return 409, f"DUPLICATE_ORDER: an order with externalOrderId {external} exists"
            known = set(self.products.values())
            unknown = [
                i["logisticsSku"] for i in payload["lineItems"] if i["logisticsSku"] not in known
            ]
            if unknown:
                return 400, f"no product with logisticsSku {', '.join(unknown)}"
            order = _SimOrder(
                order_id=str(next(self._ids)),
                external_order_id=external,
                address=dict(payload["address"]),
                line_items=[
                    {"logisticsSku": i["logisticsSku"], "quantity": i["quantity"]}
                    for i in payload["lineItems"]
                ],
                created_at=format_time(datetime.now(UTC)),
            )
            if self._errors_next_create:
                error_type, retriable = self._errors_next_create.pop(0)
                order.status = InternalStatus.ERROR
                order.error = {
                    "code": 1,
                    "type": error_type,
                    "message": f"simulated {error_type}",
                    "retriable": retriable,
                }
            self.orders[order.order_id] = order
            self._by_external[external] = order.order_id
            answer = order.as_json()
            time_out = self._creates_to_time_out > 0
            if time_out:
                self._creates_to_time_out -= 1
        if time_out:
            raise httpx.ReadTimeout("simulated timeout after the order was stored")
        return 200, answer

    # -- API --------------------------------------------------------------------------------

    def _routes(self) -> None:
        app = self.app
        api = "/logistics/api/{version}"

        def unauthorized() -> JSONResponse:
            return problem(401, "Invalid or expired token", code=401, message="Unauthorized")

        @app.post(f"{api}/orders")
        async def create(request: Request) -> Response:
            if not self._authorized(request):
                return unauthorized()
            payload = json.loads(await request.body())
            key = request.headers.get(IDEMPOTENCY_HEADER)
            status, body, replayed = await run_in_threadpool(self._create, payload, key)
            if status != 200:
                return problem(status, str(body))
            headers = {"idempotent-replayed": "true"} if replayed else {}
            return JSONResponse(body, headers=headers)

        @app.get(f"{api}/orders/external_id/{{external_order_id:path}}")
        def by_external_id(external_order_id: str, request: Request) -> JSONResponse:
            if not self._authorized(request):
                return unauthorized()
            found = self.order_by_external_id(external_order_id)
            if found is None:
                return problem(404, f"Cannot find order with externalOrderId {external_order_id}")
            return JSONResponse(found)

        @app.get(f"{api}/orders/{{order_id}}")
        def get(order_id: str, request: Request) -> JSONResponse:
            if not self._authorized(request):
                return unauthorized()
            with self.lock:
                order = self.orders.get(order_id)
                if order is None:
                    return problem(404, f"Cannot find order {order_id}")
                return JSONResponse(order.as_json())

        @app.post(f"{api}/orders/{{order_id}}/cancel")
        def cancel(order_id: str, request: Request) -> JSONResponse:
            if not self._authorized(request):
                return unauthorized()
            with self.lock:
                order = self.orders.get(order_id)
                if order is None:
                    return problem(404, f"Cannot find order {order_id}")
                if order.shipped:
                    return problem(422, "The order has been processed and shipped")
                if order.status is not InternalStatus.CANCELLED:
                    order.status = InternalStatus.CANCELLED
                    body = self._event(order, "Order.Cancelled", order.order_id)
                    self.pending_webhooks.append(body)
                return JSONResponse(order.as_json())

        @app.post(f"{api}/orders/{{order_id}}/retry")
        def retry(order_id: str, request: Request) -> JSONResponse:
            if not self._authorized(request):
                return unauthorized()
            with self.lock:
                order = self.orders.get(order_id)
                if order is None:
                    return problem(404, f"Cannot find order {order_id}")
                if order.status is not InternalStatus.ERROR:
                    return problem(422, "407001: invalid order status for retry")
                order.status, order.error = InternalStatus.CREATED, None
                return JSONResponse(order.as_json())

        @app.get(f"{api}/products")
        def products(request: Request, limit: int = 50, offset: int = 0) -> JSONResponse:
            if not self._authorized(request):
                return unauthorized()
            with self.lock:
                rows = sorted(self.products.items())[offset : offset + limit]
            return JSONResponse(
                [
                    {
                        "name": sku,
                        "logisticsSku": dsku,
                        "merchantSku": sku,
                        "barcodes": [],
                        "dimsLocked": False,
                    }
                    for sku, dsku in rows
                ]
            )

        @app.get(f"{api}/events")
        def events(request: Request, limit: int = 100, page_info: str | None = None) -> Response:
            if not self._authorized(request):
                return unauthorized()
            start = int(page_info) if page_info and page_info.isdigit() else 0
            with self.lock:
                page = self.events[start : start + limit]
            headers = {}
            if page:
                query = urlencode({"limit": limit, "page_info": start + len(page)})
                here = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
                headers["Link"] = f'<{here}?{query}>; rel="next"'
            return JSONResponse(page, headers=headers)

        @app.post(f"{api}/webhooks")
        async def subscribe(request: Request) -> JSONResponse:
            if not self._authorized(request):
                return unauthorized()
            body = json.loads(await request.body())
            with self.lock:
                hook = {**body, "id": next(self._webhook_ids)}
                self.webhooks.append(hook)
            return JSONResponse(hook, status_code=202)

        @app.get(f"{api}/webhooks")
        def webhooks(request: Request) -> JSONResponse:
            if not self._authorized(request):
                return unauthorized()
            with self.lock:
                return JSONResponse(list(self.webhooks))

        control = CONTROL_PREFIX

        @app.post(f"{control}/orders/{{order_id}}/ship")
        def ship(order_id: str, body: _ShipBody) -> JSONResponse:
            items = [(i.sku, i.quantity) for i in body.items] if body.items is not None else None
            try:
                package = self.ship(
                    order_id, items, carrier=body.carrier, tracking_number=body.tracking_number
                )
            except (SimulationError, KeyError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=409)
            return JSONResponse(package)

        @app.post(f"{control}/products")
        def add(sku: str) -> dict[str, str]:
            return {"merchantSku": sku, "logisticsSku": self.add_product(sku)}

        @app.post(f"{control}/flush-webhooks")
        def flush() -> dict[str, list[int | None]]:
            return {"statuses": self.flush_webhooks()}
