"""A stateful fake of ABOUT YOU's Seller Center (order delegation, dropshipping), for tests and
the demo. It speaks the wire of `../shared/specs/aboutyou-sellers-center-api.yml`, read on its
own, never through the connector's models:

- `GET /api/v1/orders/` lists orders `{items, pagination}`, filtered by `order_number`,
  `order_status`, `orders_from` / `orders_to` (creation time) and paged by `page` / `per_page`
  (the filter names and `pagination.page` / `pages` are third-party knowledge). An order has no
  `id`; its number identifies it. Money is in the smallest currency unit.
- `POST /api/v1/orders/ship|cancel|return` and `PUT /api/v1/products/stocks` answer 200
  `{"batchRequestId"}`. A batch reports its planned interim statuses, one per poll of
  `/api/v1/results/<kind>` (by default `pending` once), and is processed when it reaches its
  final status, so the items change only then. Each result item echoes its `requestItem` with
  `success` and `errors` (messages). An identical payload sent while a batch holding it is in
  flight, within `dedup_window`, gets that batch's id back (ABOUT YOU's newer docs; the length
  of its window is not documented).
- Webhooks carry `X-API-Key`: `order.created` with the order, `order_items.shipped` and
  `.returned` with the shipment object when a batch is processed, `order_items.cancelled` when
  the customer cancels (`cancel_items`).
- Requests are checked against the contract subset (`spec/`) before any route sees them; one
  that does not fit, and any other request the endpoint cannot take, is answered 400
  `{"message"}` (the documented error form); a wrong key 401 `{"message"}`; an unknown or
  expired batch 404 `{"message"}` (undocumented).
- With `rate_limits=True` the documented limits per endpoint and minute apply: 429
  `{"message"}` with `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `Retry-After` (the last
  is not documented).

Driving it: `create_order(*skus)` places an order (and delivers order.created); `cancel_items`
and `return_items` play ABOUT YOU's side; `plan_next_batch` and `expire_batch` shape batches;
`/_sim/orders...` routes do the same over HTTP.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.asgi import add_http_middleware
from connectors.contracts import enforce
from connectors.simulation import CONTROL_PREFIX, SimulatorBase

from .spec import CONTRACT

# Carrier keys the simulated account has active (ABOUT YOU lists them at /orders/carriers/).
DEFAULT_CARRIERS = frozenset({"DHL", "DHL_EXPRESS", "UPS", "DPD", "HERMES", "GLS"})
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
RESULT_KINDS = {
    "ship-orders": "ship",
    "cancel-orders": "cancel",
    "return-orders": "return",
    "stocks": "stocks",
}
FINAL = frozenset({"completed", "failed"})
# Requests per minute, per endpoint (ship: the overview table's 50, not the page's 200).
LIMITS: dict[tuple[str, str], int] = {
    ("GET", "/api/v1/orders/"): 100,
    ("POST", "/api/v1/orders/ship"): 50,
    ("POST", "/api/v1/orders/cancel"): 50,
    ("POST", "/api/v1/orders/return"): 50,
    ("PUT", "/api/v1/products/stocks"): 1000,
    **{("GET", f"/api/v1/results/{kind}"): 200 for kind in RESULT_KINDS},
}


def dumps(value: Any) -> str:
    """JSON with Decimals as bare numbers and times as ISO 8601 UTC."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return json.dumps(iso(value))
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and `Z`, the webhook page's timestamp format."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(data), status_code=status, media_type="application/json", headers=headers)


def _message(text: str, status: int) -> Response:
    return _response({"message": text}, status)


def _copy(value: Any) -> Any:
    """A deep copy of plain JSON-like state (Decimals and datetimes are immutable)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _cents(price: Decimal) -> int:
    return int((price * 100).to_integral_value())


def _net(gross: int) -> int:
    """The price before 19 % VAT, in cents."""
    return int((Decimal(gross) / Decimal("1.19")).to_integral_value())


# -- request bodies, as the endpoints read them --------------------------------------------------

ItemId = Annotated[int, Field(ge=1)]
Key = Annotated[str, Field(min_length=1, max_length=255)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class _ShipItem(_Body):
    order_items: list[ItemId] = Field(min_length=1)
    carrier_key: str
    shipment_tracking_key: Key
    return_tracking_key: Key


class _CancelItem(_Body):
    id: ItemId


class _ReturnItem(_Body):
    order_items: list[ItemId] = Field(min_length=1)
    return_tracking_key: Key


class _StockItem(_Body):
    sku: Annotated[str, Field(max_length=120)]
    quantity: Annotated[int, Field(ge=0, le=1_000_000)]
    valid_at: datetime | None = None


class _ShipBody(_Body):
    items: list[_ShipItem] = Field(min_length=1)


class _CancelBody(_Body):
    items: list[_CancelItem] = Field(min_length=1)


class _ReturnBody(_Body):
    items: list[_ReturnItem] = Field(min_length=1)


class _StocksBody(_Body):
    items: list[_StockItem] = Field(min_length=1, max_length=1000)


BODIES: dict[str, type[_Body]] = {
    "ship": _ShipBody,
    "cancel": _CancelBody,
    "return": _ReturnBody,
    "stocks": _StocksBody,
}


def _refuse(status: int, problems: list[str]) -> Response:
    """A request the contract refuses, in ABOUT YOU's documented error form."""
    return _message("Invalid request: " + "; ".join(problems), status)


def _validation_error(exc: ValidationError) -> Response:
    problems = [
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
        for e in exc.errors()
    ]
    return _refuse(400, problems)


# -- state -----------------------------------------------------------------------------------


@dataclass
class Batch:
    kind: str  # "ship", "cancel", "return" or "stocks"
    request_items: list[dict[str, Any]]
    fingerprint: str
    created: datetime
    interim: deque[str]
    final: str
    status: str = "pending"
    items: list[dict[str, Any]] = field(default_factory=list)
    polls: int = 0


class _OrderRequest(BaseModel):
    skus: list[str]
    fulfillment_type: str = "dropshipping"


class _ItemsRequest(BaseModel):
    item_ids: list[int]


class AboutYouSimulator(SimulatorBase):
    """ABOUT YOU's Seller Center as a FastAPI app: orders, batches, results, webhooks."""

    def __init__(
        self,
        api_key: str,
        webhook_key: str,
        webhook_url: str | None = None,
        webhook_client: httpx.Client | None = None,
        *,
        pending_polls: int = 1,
        dedup_window: timedelta = timedelta(minutes=5),
        rate_limits: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(webhook_url=webhook_url, webhook_client=webhook_client)
        self.api_key = api_key
        self.webhook_key = webhook_key
        self.pending_polls = pending_polls
        self.dedup_window = dedup_window
        self.rate_limits = rate_limits
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.carriers: set[str] = set(DEFAULT_CARRIERS)
        self.orders: dict[str, dict[str, Any]] = {}
        self.item_orders: dict[int, str] = {}
        self.stocks: dict[str, int] = {}
        self.stock_valid_at: dict[str, datetime] = {}
        self.batches: dict[str, Batch] = {}
        self.subscription_id = 7
        self._plans: deque[tuple[list[str], str]] = deque()
        self._windows: dict[tuple[str, str], deque[datetime]] = {}
        self._next_order = 1000
        self._next_item = 5000
        self._next_message = 1
        self.app = FastAPI(title="ABOUT YOU Seller Center simulator")
        self._routes(self.app)
        self._control_routes(self.app)
        # Inside the rate limit and the call record: a refused request is still a call.
        enforce(self.app, CONTRACT, _refuse)
        self._limit(self.app)
        self.install(self.app)

    # -- driving it ---------------------------------------------------------------------------

    def add_product(self, sku: str, quantity: int = 0) -> None:
        """Make `sku` a known product variant, so stock updates for it succeed."""
        with self.lock:
            self.stocks.setdefault(sku, quantity)

    def create_order(
        self,
        *skus: str,
        fulfillment_type: str = "dropshipping",
        prices: Mapping[str, Decimal] | None = None,
        currency: str = "EUR",
        collection_point: Mapping[str, str] | None = None,
    ) -> str:
        """Place an order of one item per SKU given (repeat a SKU for more units), deliver
        `order.created`, and return the order number. `prices` are in major units."""
        if not skus:
            raise ValueError("an order needs at least one SKU")
        prices = prices or {}
        with self.lock:
            number = f"AY-{self._next_order}"
            self._next_order += 1
            now = self.clock()
            items: list[dict[str, Any]] = []
            for sku in skus:
                gross = _cents(prices.get(sku, Decimal("49.95")))
                items.append(
                    {
                        "id": self._next_item,
                        "sku": sku,
                        "status": "open",
                        "vat": 19,
                        "price_with_tax": gross,
                        "price_without_tax": _net(gross),
                        "shipment_tracking_key": None,
                        "return_tracking_key": None,
                        "custom_data": {},
                    }
                )
                self.item_orders[self._next_item] = number
                self._next_item += 1
                self.stocks.setdefault(sku, 0)
            point = collection_point or {}
            order: dict[str, Any] = {
                "order_items": items,
                "order_number": number,
                "delivery_document_url": f"https://partner.aboutyou.com/documents/{number}.pdf",
                "status": "open",
                "customer_key": f"C-{number}",
                "carrier_key": None,
                "shop": 139,
                "created_at": now,
                "updated_at": now,
                "fulfillment_type": fulfillment_type,
                "custom_data": {},
                "payment_method": "invoice",
                "billing_street": "Domstraße 10",
                "billing_zip_code": "20095",
                "billing_city": "Hamburg",
                "billing_country_code": "DE",
                "billing_recipient_gender": "female",
                "billing_recipient_first_name": "Erika",
                "billing_recipient_last_name": "Musterfrau",
                "billing_additional": None,
                "shipping_street": point.get("street", "Domstraße 10"),
                "shipping_zip_code": "20095",
                "shipping_city": "Hamburg",
                "shipping_country_code": "DE",
                "shipping_additional": "3. OG",
                "shipping_collection_point_key": point.get("key"),
                "shipping_collection_point_type": point.get("type"),
                "shipping_collection_point_customer_key": point.get("customer_key"),
                "shipping_collection_point_description": point.get("description"),
                "shipping_recipient_gender": "female",
                "shipping_recipient_first_name": "Erika",
                "shipping_recipient_last_name": "Musterfrau",
                "currency_code": currency,
                "cost_without_tax": sum(item["price_without_tax"] for item in items),
                "cost_with_tax": sum(item["price_with_tax"] for item in items),
            }
            self.orders[number] = order
            snapshot = _copy(order)
        self.send_webhook("order.created", snapshot)
        return number

    def cancel_items(self, order_number: str, item_ids: Sequence[int]) -> int | None:
        """ABOUT YOU (or the customer) cancels open items; delivers `order_items.cancelled`."""
        return self._change_items(order_number, item_ids, "cancelled", "order_items.cancelled")

    def return_items(self, order_number: str, item_ids: Sequence[int]) -> int | None:
        """ABOUT YOU marks shipped items returned; delivers `order_items.returned`."""
        return self._change_items(order_number, item_ids, "returned", "order_items.returned")

    def item_ids(self, order_number: str) -> list[int]:
        with self.lock:
            return [item["id"] for item in self.orders[order_number]["order_items"]]

    def order(self, order_number: str) -> dict[str, Any]:
        """A copy of the order as `GET /api/v1/orders/` lists it."""
        with self.lock:
            snapshot: dict[str, Any] = _copy(self.orders[order_number])
        return snapshot

    def plan_next_batch(self, *interim: str, final: str = "completed") -> None:
        """The next batch submitted reports `interim` statuses, one per poll, then `final`
        (`completed`, or `failed`: every item fails and nothing changes)."""
        with self.lock:
            self._plans.append((list(interim), final))

    def expire_batch(self, batch_id: str) -> None:
        """ABOUT YOU forgets a batch result; a batch not yet processed is processed first."""
        with self.lock:
            batch = self.batches[batch_id]
            webhooks = [] if batch.status in FINAL else self._finish(batch)
            del self.batches[batch_id]
        for event, message in webhooks:
            self.send_webhook(event, message)

    def webhook_body(self, event: str, message: Any) -> bytes:
        """A webhook envelope as ABOUT YOU sends it, with a fresh message id."""
        with self.lock:
            message_id = self._next_message
            self._next_message += 1
        envelope = {
            "id": message_id,
            "event": event,
            "timestamp": self.clock(),
            "subscription_id": self.subscription_id,
            "message": message,
        }
        return dumps(envelope).encode()

    def send_webhook(self, event: str, message: Any) -> int | None:
        """Deliver one webhook with the `X-API-Key` header; the target's status."""
        return self.deliver(self.webhook_body(event, message), {"X-API-Key": self.webhook_key})

    def _change_items(
        self, order_number: str, item_ids: Sequence[int], status: str, event: str
    ) -> int | None:
        allowed = {"cancelled": {"open"}, "returned": {"shipped"}}[status]
        with self.lock:
            order = self.orders[order_number]
            by_id = {item["id"]: item for item in order["order_items"]}
            for item_id in item_ids:
                if item_id not in by_id or by_id[item_id]["status"] not in allowed:
                    raise ValueError(f"item {item_id} of {order_number} cannot become {status}")
            for item_id in item_ids:
                by_id[item_id]["status"] = status
            self._touch(order)
            message = {"items": [_copy(by_id[i]) for i in item_ids]}
        return self.send_webhook(event, message)

    # -- state rules --------------------------------------------------------------------------

    def _touch(self, order: dict[str, Any]) -> None:
        """Derive the order status from its items and stamp the change."""
        statuses = {item["status"] for item in order["order_items"]}
        order["status"] = statuses.pop() if len(statuses) == 1 else "mixed"
        order["updated_at"] = self.clock()

    def _item(self, item_id: int) -> dict[str, Any] | None:
        number = self.item_orders.get(item_id)
        if number is None:
            return None
        items: list[dict[str, Any]] = self.orders[number]["order_items"]
        return next((item for item in items if item["id"] == item_id), None)

    def _submit(self, kind: str, data: dict[str, Any]) -> str:
        fingerprint = json.dumps([kind, data], sort_keys=True, default=str)
        now = self.clock()
        for batch_id, batch in self.batches.items():
            if (
                batch.fingerprint == fingerprint
                and batch.status not in FINAL
                and now - batch.created <= self.dedup_window
            ):
                return batch_id
        interim, final = (
            self._plans.popleft()
            if self._plans
            else (["pending"] * self.pending_polls, "completed")
        )
        batch_id = str(uuid.uuid4())
        self.batches[batch_id] = Batch(
            kind, list(data["items"]), fingerprint, now, deque(interim), final
        )
        return batch_id

    def _poll(self, batch: Batch) -> list[tuple[str, Any]]:
        """Advance a batch by one poll; the webhooks its processing sends."""
        batch.polls += 1
        if batch.status in FINAL:
            return []
        if batch.interim:
            batch.status = batch.interim.popleft()
            return []
        return self._finish(batch)

    def _finish(self, batch: Batch) -> list[tuple[str, Any]]:
        batch.status = batch.final
        if batch.final == "failed":
            batch.items = [
                _outcome(item, ["The batch could not be processed."])
                for item in batch.request_items
            ]
            return []
        webhooks: list[tuple[str, Any]] = []
        for request_item in batch.request_items:
            errors, webhook = self._process(batch.kind, request_item)
            batch.items.append(_outcome(request_item, errors))
            if webhook is not None:
                webhooks.append(webhook)
        return webhooks

    def _process(
        self, kind: str, request_item: dict[str, Any]
    ) -> tuple[list[str], tuple[str, Any] | None]:
        """Apply one request item; its errors (none: done) and the webhook it causes."""
        if kind == "stocks":
            return self._set_stock(request_item), None
        if kind == "cancel":
            return self._cancel(request_item["id"]), None
        ids: list[int] = request_item["order_items"]
        shipping = kind == "ship"
        event = "order_items.shipped" if shipping else "order_items.returned"
        errors = [
            refusal
            for item_id in ids
            if (refusal := self._refusal(item_id, "open" if shipping else "shipped"))
        ]
        if shipping and request_item["carrier_key"] not in self.carriers:
            errors.append(f"Carrier key '{request_item['carrier_key']}' is not active.")
        if errors:
            return errors, None
        items = [self._item(item_id) for item_id in ids]
        for item in items:
            assert item is not None
            if shipping:
                item["status"] = "shipped"
                item["shipment_tracking_key"] = request_item["shipment_tracking_key"]
                item["return_tracking_key"] = request_item["return_tracking_key"]
            else:
                item["status"] = "returned"
                item["return_tracking_key"] = request_item["return_tracking_key"]
        for number in {self.item_orders[item_id] for item_id in ids}:
            if shipping:
                self.orders[number]["carrier_key"] = request_item["carrier_key"]
            self._touch(self.orders[number])
        message: dict[str, Any] = {"items": [_copy(item) for item in items]}
        if shipping:
            message["carrier_key"] = request_item["carrier_key"]
            message["tracking_key"] = request_item["shipment_tracking_key"]
        message["return_tracking_key"] = request_item["return_tracking_key"]
        return [], (event, message)

    def _refusal(self, item_id: int, wanted: str) -> str | None:
        item = self._item(item_id)
        if item is None:
            return f"Order item {item_id} does not exist."
        if item["status"] == wanted:
            return None
        if wanted == "open":
            return f"Order item {item_id} is {item['status']} and cannot be shipped."
        return f"Order item {item_id} is {item['status']} and cannot be returned."

    def _cancel(self, item_id: int) -> list[str]:
        item = self._item(item_id)
        if item is None:
            return [f"Order item {item_id} does not exist."]
        if item["status"] != "open":
            return [f"Order item {item_id} is {item['status']} and cannot be cancelled."]
        item["status"] = "cancelled"
        self._touch(self.orders[self.item_orders[item_id]])
        return []

    def _set_stock(self, request_item: dict[str, Any]) -> list[str]:
        sku = request_item["sku"]
        if sku not in self.stocks:
            return [f"Product variant with SKU {sku} not found."]
        raw = request_item.get("valid_at")
        valid_at = datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else self.clock()
        if valid_at.tzinfo is None:
            valid_at = valid_at.replace(tzinfo=UTC)
        known = self.stock_valid_at.get(sku)
        if known is None or valid_at >= known:
            self.stocks[sku] = request_item["quantity"]
            self.stock_valid_at[sku] = valid_at
        return []

    # -- HTTP ---------------------------------------------------------------------------------

    def _unauthorised(self, request: Request) -> Response | None:
        if request.headers.get("x-api-key") != self.api_key:
            return _message("Invalid or missing API key.", 401)
        return None

    async def _batch(self, kind: str, request: Request) -> Response:
        if (denied := self._unauthorised(request)) is not None:
            return denied
        raw = await request.body()
        try:
            data = json.loads(raw, parse_float=Decimal)
        except ValueError:
            return _message("The request body is not valid JSON.", 400)
        try:
            BODIES[kind].model_validate_json(raw)
        except ValidationError as exc:
            return _validation_error(exc)
        with self.lock:
            batch_id = self._submit(kind, data)
        return _response({"batchRequestId": batch_id})

    def _routes(self, app: FastAPI) -> None:
        @app.get("/api/v1/orders/")
        def list_orders(request: Request) -> Response:
            if (denied := self._unauthorised(request)) is not None:
                return denied
            query = request.query_params
            errors: list[str] = []
            page = _int_param(query.get("page"), 1, 1, None, "page", errors)
            per_page = _int_param(
                query.get("per_page"), DEFAULT_PER_PAGE, 1, MAX_PER_PAGE, "per_page", errors
            )
            since = _time_param(query.get("orders_from"), "orders_from", errors)
            until = _time_param(query.get("orders_to"), "orders_to", errors)
            status = query.get("order_status")
            if status is not None and status not in {
                "open",
                "shipped",
                "cancelled",
                "returned",
                "mixed",
            }:
                errors.append("order_status: not a status")
            if errors:
                return _refuse(400, errors)
            number = query.get("order_number")
            with self.lock:
                matching = [
                    order
                    for order in self.orders.values()
                    if (number is None or order["order_number"] == number)
                    and (status is None or order["status"] == status)
                    and (since is None or order["created_at"] >= since)
                    and (until is None or order["created_at"] <= until)
                ]
                start = (page - 1) * per_page
                chunk = [_copy(o) for o in matching[start : start + per_page]]
            pages = max(1, math.ceil(len(matching) / per_page))
            return _response(
                {"items": chunk, "pagination": {"per_page": per_page, "page": page, "pages": pages}}
            )

        @app.post("/api/v1/orders/ship")
        async def ship(request: Request) -> Response:
            return await self._batch("ship", request)

        @app.post("/api/v1/orders/cancel")
        async def cancel(request: Request) -> Response:
            return await self._batch("cancel", request)

        @app.post("/api/v1/orders/return")
        async def return_(request: Request) -> Response:
            return await self._batch("return", request)

        @app.put("/api/v1/products/stocks")
        async def stocks(request: Request) -> Response:
            return await self._batch("stocks", request)

        @app.get("/api/v1/results/{kind}")
        def results(kind: str, request: Request) -> Response:
            if (denied := self._unauthorised(request)) is not None:
                return denied
            if kind not in RESULT_KINDS:
                return _message("Not Found", 404)
            batch_id = request.query_params.get("batch_request_id")
            if not batch_id:
                return _refuse(400, ["batch_request_id: required"])
            with self.lock:
                batch = self.batches.get(batch_id)
                if batch is None or RESULT_KINDS[kind] != batch.kind:
                    return _message(f"Batch request {batch_id} not found.", 404)
                webhooks = self._poll(batch)
                body = dumps(
                    {
                        "batchRequestId": batch_id,
                        "status": batch.status,
                        "items": batch.items if batch.status in FINAL else [],
                    }
                )
            # Outside the lock: the receiver may call back into this simulator.
            for event, message in webhooks:
                self.send_webhook(event, message)
            return Response(body, media_type="application/json")

    def _limit(self, app: FastAPI) -> None:
        """Per-endpoint limits per minute, when `rate_limits` is on."""

        async def _rate_limit(inner: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope)
            key = (request.method, request.url.path)
            allowed = LIMITS.get(key)
            if not self.rate_limits or allowed is None:
                await inner(scope, receive, send)
                return
            with self.lock:
                now = self.clock()
                window = self._windows.setdefault(key, deque())
                while window and now - window[0] >= timedelta(minutes=1):
                    window.popleft()
                refusal = None
                if len(window) >= allowed:
                    wait = window[0] + timedelta(minutes=1) - now
                    refusal = _response(
                        {"message": "Too Many Requests"},
                        429,
                        {
                            "X-RateLimit-Limit": str(allowed),
                            "X-RateLimit-Remaining": "0",
                            "Retry-After": str(max(1, math.ceil(wait.total_seconds()))),
                        },
                    )
                else:
                    window.append(now)
                    remaining = allowed - len(window)
            if refusal is not None:
                await refusal(scope, receive, send)
                return

            async def counted(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message.setdefault("headers", [])  # optional in ASGI
                    headers = MutableHeaders(scope=message)
                    headers["X-RateLimit-Limit"] = str(allowed)
                    headers["X-RateLimit-Remaining"] = str(remaining)
                await send(message)

            await inner(scope, receive, counted)

        add_http_middleware(app, _rate_limit)

    def place_order(self, sku: str, quantity: int = 1) -> str:
        """A customer orders `quantity` units of `sku` for dropshipping."""
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        self.add_product(sku)
        return str(self.create_order(*[sku] * quantity))

    def _control_routes(self, app: FastAPI) -> None:
        # Added before `install` mounts /_sim, so these match first.
        @app.post(f"{CONTROL_PREFIX}/orders")
        def place(request: _OrderRequest) -> dict[str, str]:
            number = self.create_order(*request.skus, fulfillment_type=request.fulfillment_type)
            return {"order_number": number}

        @app.get(f"{CONTROL_PREFIX}/orders/{{order_number}}")
        def show(order_number: str) -> Response:
            with self.lock:
                if order_number not in self.orders:
                    return _message("Order not found.", 404)
            return _response(self.order(order_number))

        @app.post(f"{CONTROL_PREFIX}/orders/{{order_number}}/cancel-items")
        def cancel_items(order_number: str, request: _ItemsRequest) -> dict[str, int | None]:
            return {"webhook_status": self.cancel_items(order_number, request.item_ids)}

        @app.post(f"{CONTROL_PREFIX}/orders/{{order_number}}/return-items")
        def return_items(order_number: str, request: _ItemsRequest) -> dict[str, int | None]:
            return {"webhook_status": self.return_items(order_number, request.item_ids)}


def _outcome(request_item: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    return {"requestItem": request_item, "success": not errors, "errors": errors}


def _int_param(
    raw: str | None,
    default: int,
    low: int,
    high: int | None,
    name: str,
    errors: list[str],
) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.append(f"{name}: not an integer")
        return default
    if value < low or (high is not None and value > high):
        errors.append(f"{name}: must be between {low} and {high or 'any'}")
    return value


def _time_param(raw: str | None, name: str, errors: list[str]) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        errors.append(f"{name}: not an ISO 8601 time")
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
