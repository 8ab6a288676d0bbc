"""A stateful fake of Deliverr's Orders API for tests and the demo.

API (Bearer access token on every call except the token endpoint):

- `POST /orders/v1/order` validates like Deliverr and answers 201 `{"orderId"}`, or 400
  `{"code": "<seed error type>", "message": "<the seed's explanation>"}`; 409
  `{"code": "ORDER_ALREADY_EXISTS"}` when the externalOrderId is taken.
- `GET /orders/v1/order/{orderId}`, `GET /orders/v1/order/externalId/{externalOrderId}`:
  the order, or 404 `{"code": "ORDER_NOT_FOUND"}`.
- `POST /orders/v1/order/{orderId}/cancel`: 200 `{"orderId", "status"}` (again on a cancelled
  order); 409 `{"code": "ORDER_CANNOT_BE_CANCELLED"}` once anything shipped.
- `POST /oauth/v1/token` form `grant_type=refresh_token&refresh_token=...`: a new token pair,
  the refresh token rotated; 400 `{"error": "invalid_grant"}` otherwise.
- 401 `{"code": "UNAUTHORIZED"}` for a missing, wrong or expired access token.

Driving methods (also under `/_sim`): `process`, `ship`, `mark_delivered`, `expire_access_token`,
`set_error_for_next_create`, `timeout_next_create`, `flush_webhooks`. Each status change makes
an ORDER_STATUS_UPDATE webhook carrying the token header. Changes made by the driving methods
are delivered at once; those caused by API calls (create: CREATED, cancel: CANCELLED) wait in
`pending_webhooks` until `flush_webhooks()`, so a webhook never calls back into the caller while
its request is in flight, and a test can deliver them late (SHIPPED before its CREATED).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from connectors.deliverr.transformers import (
    ERROR_RULES,
    ORDER_STATUS_UPDATE,
    SHIPPED_STATUSES,
    DeliverrErrorCode,
    DeliverrOrderStatus,
    format_time,
)
from connectors.simulation import CONTROL_PREFIX, SimulatorBase

# ISO 3166-1 alpha-2: the codes Deliverr accepts in `countryCode`.
COUNTRY_CODES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
    GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
    KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
    MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
    TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
    ZW
    """.split()
)
# "Domestic" for ORDER_MISSING_STATE_ZIP: Deliverr's warehouses are in the United States.
DOMESTIC_COUNTRY = "US"


class SimulationError(ValueError):
    """A driving call the simulated Deliverr cannot carry out (unknown order, nothing to ship)."""


@dataclass
class _SimOrder:
    order_id: str
    external_order_id: str
    request: dict[str, Any]
    line_items: list[dict[str, Any]]
    status: DeliverrOrderStatus = DeliverrOrderStatus.CREATED
    shipments: list[dict[str, Any]] = field(default_factory=list)
    shipped: dict[int, int] = field(default_factory=dict)  # line item index -> units shipped

    def remaining(self, index: int) -> int:
        return int(self.line_items[index]["quantity"]) - self.shipped.get(index, 0)

    def as_json(self) -> dict[str, Any]:
        return {
            **self.request,
            "orderId": self.order_id,
            "externalOrderId": self.external_order_id,
            "status": self.status.value,
            "lineItems": self.line_items,
            "shipments": self.shipments,
        }


class _ShipItem(BaseModel):
    sku: str
    quantity: int


class _ShipBody(BaseModel):
    items: list[_ShipItem] | None = None
    carrier: str = "UPS"
    tracking_number: str | None = None


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _seed_error(code: DeliverrErrorCode) -> JSONResponse:
    return _error(400, code.value, ERROR_RULES[code].explanation)


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def product_id(sku: str) -> str:
    """The Deliverr SKU (DSKU) the simulator assigns to a seller SKU, stable across runs."""
    return "D" + hashlib.sha256(sku.encode()).hexdigest()[:10].upper()


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
        self._next_create_errors: list[DeliverrErrorCode] = []
        self._creates_to_time_out = 0
        self._ids = itertools.count(100_000_001)
        self._tracking = itertools.count(1)
        self._token_generation = itertools.count(1)
        self.app = FastAPI(title="Deliverr simulator")
        self._routes()
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

    def expire_access_token(self) -> None:
        """Invalidate the current access token: calls answer 401 until it is renewed."""
        with self.lock:
            self.access_token = None

    def process(self, order_id: str) -> None:
        """The warehouse starts picking: CREATED -> PROCESSING."""
        with self.lock:
            order = self._order(order_id)
            if order.status != DeliverrOrderStatus.CREATED:
                raise SimulationError(f"order {order_id} is {order.status}, not CREATED")
            body = self._transition(order, DeliverrOrderStatus.PROCESSING, "STATUS_CHANGE")
        self._send(body)

    def ship(
        self,
        order_id: str,
        items: Sequence[tuple[str, int]] | None = None,
        *,
        carrier: str = "UPS",
        tracking_number: str | None = None,
        service: str = "Ground",
        warehouse_id: str = "SIM-WH-1",
    ) -> dict[str, Any]:
        """Ship one package with `items` ((sku, quantity) pairs; None: all that is left).

        The order becomes PARTIALLY_SHIPPED or SHIPPED and an ORDER_STATUS_UPDATE listing every
        shipment so far is delivered. Answers the new shipment as Deliverr reports it.
        """
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
            shipment = {
                "trackingNumber": tracking,
                "shippingCarrier": carrier,
                "shippingService": service,
                "shippedTime": format_time(self.now()),
                "trackingUrl": f"https://sim.deliverr.invalid/track/{tracking}",
                "warehouseId": warehouse_id,
                "status": "SHIPPED",
                "shippedItems": [
                    {
                        "externalProductId": order.line_items[index]["externalProductId"],
                        "productId": product_id(str(order.line_items[index]["externalProductId"])),
                        "lineItemId": order.line_items[index].get("lineItemId"),
                        "quantityOrdered": order.line_items[index]["quantity"],
                        "quantity": quantity,
                    }
                    for index, quantity in allocation
                ],
            }
            order.shipments.append(shipment)
            done = all(order.remaining(i) == 0 for i in range(len(order.line_items)))
            new_status = (
                DeliverrOrderStatus.SHIPPED if done else DeliverrOrderStatus.PARTIALLY_SHIPPED
            )
            body = self._transition(order, new_status, "SHIPMENT_CREATED")
        self._send(body)
        return shipment

    def mark_delivered(self, order_id: str) -> None:
        """Every package arrived: SHIPPED -> DELIVERED."""
        with self.lock:
            order = self._order(order_id)
            if order.status != DeliverrOrderStatus.SHIPPED:
                raise SimulationError(f"order {order_id} is {order.status}, not SHIPPED")
            body = self._transition(order, DeliverrOrderStatus.DELIVERED, "STATUS_CHANGE")
        self._send(body)

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

    def _transition(self, order: _SimOrder, status: DeliverrOrderStatus, update: str) -> bytes:
        """Move `order` to `status`; the ORDER_STATUS_UPDATE body that reports it."""
        old, order.status = order.status, status
        return self._event(order, old, update)

    def _event(self, order: _SimOrder, old: DeliverrOrderStatus | None, update: str) -> bytes:
        payload = {
            "eventId": str(uuid.uuid4()),
            "eventTime": format_time(self.now()),
            "type": ORDER_STATUS_UPDATE,
            "updateType": update,
            "oldStatus": old.value if old is not None else None,
            "newStatus": order.status.value,
            "orderId": order.order_id,
            "shipments": json.loads(json.dumps(order.shipments)),
        }
        return json.dumps(payload).encode()

    def _send(self, body: bytes) -> int | None:
        # Outside the lock: the receiver may call this API while handling the webhook.
        return self.deliver(body, {self.webhook_header: self.webhook_token})

    def _authorized(self, request: Request) -> bool:
        with self.lock:
            token = self.access_token
        return token is not None and request.headers.get("authorization") == f"Bearer {token}"

    def _validate(self, payload: Any) -> JSONResponse | None:
        """The error answer a create body deserves, or None when Deliverr would accept it."""
        if not isinstance(payload, dict):
            return _error(400, "INVALID_REQUEST", "The body must be a JSON object.")
        if _blank(payload.get("externalOrderId")):
            return _error(400, "INVALID_REQUEST", "externalOrderId is required.")
        address = payload.get("shiptoAddress")
        if not isinstance(address, dict):
            return _seed_error(DeliverrErrorCode.ORDER_MISSING_SHIPPING_ADDRESS)
        if _blank(address.get("street1")):
            return _seed_error(DeliverrErrorCode.ORDER_MISSING_ADDRESS_LINE)
        if _blank(address.get("city")):
            return _seed_error(DeliverrErrorCode.ORDER_MISSING_CITY)
        if address.get("countryCode") not in COUNTRY_CODES:
            return _seed_error(DeliverrErrorCode.ORDER_INVALID_COUNTRY_CODE)
        if address["countryCode"] == DOMESTIC_COUNTRY and (
            _blank(address.get("state")) or _blank(address.get("postcode"))
        ):
            return _seed_error(DeliverrErrorCode.ORDER_MISSING_STATE_ZIP)
        lines = payload.get("lineItems")
        if not isinstance(lines, list) or not lines:
            return _seed_error(DeliverrErrorCode.ORDER_CANNOT_BE_FULFILLED)
        for line in lines:
            if not isinstance(line, dict) or _blank(line.get("externalProductId")):
                return _seed_error(DeliverrErrorCode.ORDER_MISSING_LINE_ITEM)
            quantity = line.get("quantity")
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
                return _error(400, "INVALID_REQUEST", "lineItems[].quantity must be at least 1.")
        if self.known_products is not None and any(
            line["externalProductId"] not in self.known_products for line in lines
        ):
            return _seed_error(DeliverrErrorCode.PRODUCT_NOT_AVAILABLE)
        return None

    # -- API --------------------------------------------------------------------------------

    def _routes(self) -> None:
        app = self.app
        unauthorized = {"code": "UNAUTHORIZED", "message": "Invalid or expired access token."}

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
                    return JSONResponse({"error": "invalid_grant"}, status_code=400)
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
        async def create(request: Request) -> JSONResponse:
            if not self._authorized(request):
                return JSONResponse(unauthorized, status_code=401)
            try:
                payload = json.loads(await request.body())
            except ValueError:
                return _error(400, "INVALID_REQUEST", "The body is not JSON.")
            with self.lock:
                if self._next_create_errors:
                    return _seed_error(self._next_create_errors.pop(0))
                if (
                    isinstance(payload, dict)
                    and payload.get("externalOrderId") in self._by_external
                ):
                    return _error(
                        409, "ORDER_ALREADY_EXISTS", "An order with this externalOrderId exists."
                    )
                invalid = self._validate(payload)
                if invalid is not None:
                    return invalid
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
                self.pending_webhooks.append(self._event(order, None, "ORDER_CREATED"))
                time_out = self._creates_to_time_out > 0
                if time_out:
                    self._creates_to_time_out -= 1
            if time_out:
                raise httpx.ReadTimeout("simulated timeout after the order was stored")
            return JSONResponse({"orderId": order_id}, status_code=201)

        @app.get("/orders/v1/order/externalId/{external_order_id}")
        def by_external_id(external_order_id: str, request: Request) -> JSONResponse:
            if not self._authorized(request):
                return JSONResponse(unauthorized, status_code=401)
            found = self.order_by_external_id(external_order_id)
            if found is None:
                return _error(404, "ORDER_NOT_FOUND", "No order with this externalOrderId.")
            return JSONResponse(found)

        @app.get("/orders/v1/order/{order_id}")
        def get(order_id: str, request: Request) -> JSONResponse:
            if not self._authorized(request):
                return JSONResponse(unauthorized, status_code=401)
            with self.lock:
                order = self.orders.get(order_id)
                if order is None:
                    return _error(404, "ORDER_NOT_FOUND", "No order with this orderId.")
                return JSONResponse(order.as_json())

        @app.post("/orders/v1/order/{order_id}/cancel")
        def cancel(order_id: str, request: Request) -> JSONResponse:
            if not self._authorized(request):
                return JSONResponse(unauthorized, status_code=401)
            with self.lock:
                order = self.orders.get(order_id)
                if order is None:
                    return _error(404, "ORDER_NOT_FOUND", "No order with this orderId.")
                if order.status in SHIPPED_STATUSES:
                    return _error(
                        409, "ORDER_CANNOT_BE_CANCELLED", "The order has already shipped."
                    )
                if order.status != DeliverrOrderStatus.CANCELLED:
                    event = self._transition(order, DeliverrOrderStatus.CANCELLED, "STATUS_CHANGE")
                    self.pending_webhooks.append(event)
                return JSONResponse({"orderId": order_id, "status": order.status.value})

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
