"""A stateful fake of ABOUT YOU's Seller Center order delegation API, for tests and the demo.

It keeps orders and their items, validates ship / cancel / stock batches the way the connector
expects ABOUT YOU to (see transformers' module docstring for the formats), reports each batch
as pending on its first `pending_polls` polls and completed afterwards, and sends
`order.created`, `order_items.cancelled`, `order_items.shipped` and `order_items.returned`
webhooks with the `X-API-Key` header. Money is written as bare JSON numbers, as ABOUT YOU does.

Driving it: `create_order(*skus)` places an order (and delivers order.created), `cancel_items`
and `return_items` play ABOUT YOU's side; `/_sim/orders...` routes do the same over HTTP.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel

from connectors.simulation import SimulatorBase

from .transformers import loads

DEFAULT_CARRIERS: dict[str, str] = {
    "DHL": "DHL",
    "DHL_EXPRESS": "DHL Express",
    "UPS": "UPS",
    "DPD": "DPD",
    "HERMES": "Hermes",
    "GLS": "GLS",
}
MAX_KEY_LENGTH = 255
MAX_PER_PAGE = 100
RESULT_PATHS = {"ship-orders": "ship", "cancel-orders": "cancel", "stocks": "stocks"}
INVALID = "The given data was invalid."


def dumps(value: Any) -> str:
    """JSON with Decimals written as bare numbers, exactly as given (never through float)."""
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
    """ISO 8601 UTC with milliseconds and `Z`, the seed's timestamp format."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _response(data: Any, status: int = 200) -> Response:
    return Response(dumps(data), status_code=status, media_type="application/json")


def _invalid(errors: Mapping[str, list[str]]) -> Response:
    return _response({"message": INVALID, "errors": dict(errors)}, 422)


@dataclass
class _Batch:
    kind: str  # "ship", "cancel" or "stocks"
    items: list[dict[str, Any]]
    polls: int = 0
    # Webhooks to send when the batch completes (ABOUT YOU reports shipments it processed).
    on_complete: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class _OrderRequest(BaseModel):
    skus: list[str]
    fulfillment_type: str = "dropshipping"


class _ItemsRequest(BaseModel):
    item_ids: list[int]


class AboutYouSimulator(SimulatorBase):
    """ABOUT YOU's Seller Center as a FastAPI app: orders, batches, results, carriers."""

    def __init__(
        self,
        api_key: str,
        webhook_key: str,
        webhook_url: str | None = None,
        webhook_client: httpx.Client | None = None,
        *,
        pending_polls: int = 1,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(webhook_url=webhook_url, webhook_client=webhook_client)
        self.api_key = api_key
        self.webhook_key = webhook_key
        self.pending_polls = pending_polls
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.carriers: dict[str, str] = dict(DEFAULT_CARRIERS)
        self.orders: dict[int, dict[str, Any]] = {}
        self.item_orders: dict[int, int] = {}
        self.stocks: dict[str, int] = {}
        self.batches: dict[str, _Batch] = {}
        self.subscription_id = 7
        self._next_order = 1000
        self._next_item = 5000
        self._next_message = 1
        self.app = FastAPI(title="ABOUT YOU Seller Center simulator")
        self._routes(self.app)
        self._control_routes(self.app)
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
    ) -> int:
        """Place an order of one item per SKU given (repeat a SKU for more units), deliver
        `order.created`, and return the order id."""
        if not skus:
            raise ValueError("an order needs at least one SKU")
        prices = prices or {}
        with self.lock:
            order_id = self._next_order
            self._next_order += 1
            now = self.clock()
            items: list[dict[str, Any]] = []
            gross: list[Decimal] = []
            net: list[Decimal] = []
            for sku in skus:
                price = prices.get(sku, Decimal("49.95"))
                gross.append(price)
                net.append((price / Decimal("1.19")).quantize(Decimal("0.01")))
                items.append(
                    {
                        "id": self._next_item,
                        "sku": sku,
                        "status": "open",
                        "vat": 19,
                        "price_with_tax": price,
                        "price_without_tax": net[-1],
                        "shipment_tracking_key": None,
                        "return_tracking_key": None,
                        "custom_data": {},
                    }
                )
                self.item_orders[self._next_item] = order_id
                self._next_item += 1
                self.stocks.setdefault(sku, 0)
            point = collection_point or {}
            order: dict[str, Any] = {
                "id": order_id,
                "order_items": items,
                "order_number": f"AY-{order_id}",
                "delivery_document_url": None,
                "status": "open",
                "customer_key": f"C-{order_id}",
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
                "cost_without_tax": sum(net, Decimal("0")),
                "cost_with_tax": sum(gross, Decimal("0")),
            }
            self.orders[order_id] = order
            snapshot = _copy(order)
        self.send_webhook("order.created", snapshot)
        return order_id

    def cancel_items(self, order_id: int, item_ids: Sequence[int]) -> int | None:
        """ABOUT YOU (or the customer) cancels open items; delivers `order_items.cancelled`."""
        return self._change_items(order_id, item_ids, "cancelled", "order_items.cancelled")

    def return_items(self, order_id: int, item_ids: Sequence[int]) -> int | None:
        """The customer returns shipped items; delivers `order_items.returned`."""
        return self._change_items(order_id, item_ids, "returned", "order_items.returned")

    def item_ids(self, order_id: int) -> list[int]:
        with self.lock:
            return [item["id"] for item in self.orders[order_id]["order_items"]]

    def order(self, order_id: int) -> dict[str, Any]:
        """A copy of the order as `GET /api/v1/orders/{id}` would show it."""
        with self.lock:
            snapshot: dict[str, Any] = _copy(self.orders[order_id])
        return snapshot

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
        self, order_id: int, item_ids: Sequence[int], status: str, event: str
    ) -> int | None:
        allowed = {"cancelled": {"open"}, "returned": {"shipped"}}[status]
        with self.lock:
            order = self.orders[order_id]
            by_id = {item["id"]: item for item in order["order_items"]}
            for item_id in item_ids:
                if item_id not in by_id or by_id[item_id]["status"] not in allowed:
                    raise ValueError(f"item {item_id} of order {order_id} cannot become {status}")
            for item_id in item_ids:
                by_id[item_id]["status"] = status
            self._touch(order)
            message = self._item_message(order, item_ids)
        return self.send_webhook(event, message)

    # -- state rules --------------------------------------------------------------------------

    def _touch(self, order: dict[str, Any]) -> None:
        """Derive the order status from its items and stamp the change."""
        statuses = {item["status"] for item in order["order_items"]}
        if statuses == {"cancelled"}:
            order["status"] = "cancelled"
        elif statuses <= {"returned", "cancelled"}:
            order["status"] = "returned"
        elif "open" not in statuses:
            order["status"] = "shipped"
        else:
            order["status"] = "open"
        order["updated_at"] = self.clock()

    @staticmethod
    def _item_message(order: Mapping[str, Any], item_ids: Sequence[int]) -> dict[str, Any]:
        wanted = set(item_ids)
        return {
            "order_id": order["id"],
            "order_number": order["order_number"],
            "order_items": [_copy(i) for i in order["order_items"] if i["id"] in wanted],
        }

    def _new_batch(self, batch: _Batch) -> str:
        batch_id = str(uuid.uuid4())
        self.batches[batch_id] = batch
        return batch_id

    def _ship(self, groups: list[dict[str, Any]]) -> _Batch:
        batch = _Batch("ship", [])
        shipped: dict[int, list[int]] = {}
        for group in groups:
            for item_id in group["order_items"]:
                result = self._ship_item(item_id, group)
                batch.items.append(result)
                if result["success"]:
                    shipped.setdefault(self.item_orders[item_id], []).append(item_id)
        for order_id, ids in shipped.items():
            order = self.orders[order_id]
            self._touch(order)
            batch.on_complete.append(("order_items.shipped", self._item_message(order, ids)))
        return batch

    def _ship_item(self, item_id: int, group: Mapping[str, Any]) -> dict[str, Any]:
        item = self._item(item_id)
        if item is None:
            return _failure(item_id, "not_found", f"Order item {item_id} does not exist.")
        if item["status"] in ("shipped", "returned"):
            return _failure(
                item_id, "already_shipped", f"Order item {item_id} has already been shipped."
            )
        if item["status"] != "open":
            return _failure(item_id, "not_shippable", f"Order item {item_id} is {item['status']}.")
        item["status"] = "shipped"
        item["shipment_tracking_key"] = group["shipment_tracking_key"]
        item["return_tracking_key"] = group["return_tracking_key"]
        self.orders[self.item_orders[item_id]]["carrier_key"] = group["carrier_key"]
        return {"order_item_id": item_id, "success": True}

    def _cancel(self, item_ids: list[int]) -> _Batch:
        batch = _Batch("cancel", [])
        touched: set[int] = set()
        for item_id in item_ids:
            item = self._item(item_id)
            if item is None:
                result = _failure(item_id, "not_found", f"Order item {item_id} does not exist.")
            elif item["status"] == "cancelled":
                result = _failure(
                    item_id, "already_cancelled", f"Order item {item_id} is already cancelled."
                )
            elif item["status"] != "open":
                result = _failure(
                    item_id,
                    "already_shipped",
                    f"Order item {item_id} has already been shipped and cannot be cancelled.",
                )
            else:
                item["status"] = "cancelled"
                touched.add(self.item_orders[item_id])
                result = {"order_item_id": item_id, "success": True}
            batch.items.append(result)
        for order_id in touched:
            self._touch(self.orders[order_id])
        return batch

    def _set_stocks(self, entries: list[dict[str, Any]]) -> _Batch:
        batch = _Batch("stocks", [])
        for entry in entries:
            sku = entry["sku"]
            if sku not in self.stocks:
                batch.items.append(
                    {
                        "sku": sku,
                        "success": False,
                        "error_code": "not_found",
                        "error_message": f"Product variant with SKU {sku} not found.",
                    }
                )
                continue
            self.stocks[sku] = entry["quantity"]
            batch.items.append({"sku": sku, "success": True})
        return batch

    def _item(self, item_id: int) -> dict[str, Any] | None:
        order_id = self.item_orders.get(item_id)
        if order_id is None:
            return None
        items: list[dict[str, Any]] = self.orders[order_id]["order_items"]
        return next((item for item in items if item["id"] == item_id), None)

    # -- HTTP ---------------------------------------------------------------------------------

    def _unauthorised(self, request: Request) -> Response | None:
        given = request.headers.get("x-api-key")
        if given != self.api_key:
            return _response({"message": "Unauthenticated."}, 401)
        return None

    def _routes(self, app: FastAPI) -> None:
        @app.get("/api/v1/orders/")
        def list_orders(request: Request) -> Response:
            if (denied := self._unauthorised(request)) is not None:
                return denied
            query = request.query_params
            errors: dict[str, list[str]] = {}
            page = _int_param(query.get("page"), 1, 1, None, "page", errors)
            per_page = _int_param(query.get("per_page"), 50, 1, MAX_PER_PAGE, "per_page", errors)
            since = _time_param(query.get("updated_from"), "updated_from", errors)
            until = _time_param(query.get("updated_to"), "updated_to", errors)
            if errors:
                return _invalid(errors)
            number = query.get("order_number")
            with self.lock:
                matching = [
                    order
                    for order in self.orders.values()
                    if (number is None or order["order_number"] == number)
                    and (since is None or order["updated_at"] >= since)
                    and (until is None or order["updated_at"] < until)
                ]
                matching.sort(key=lambda o: (o["updated_at"], o["id"]))
                start = (page - 1) * per_page
                chunk = [_copy(o) for o in matching[start : start + per_page]]
            last_page = max(1, -(-len(matching) // per_page))
            return _response(
                {
                    "items": chunk,
                    "pagination": {
                        "page": page,
                        "per_page": per_page,
                        "total": len(matching),
                        "last_page": last_page,
                    },
                }
            )

        @app.get("/api/v1/orders/{order_id}")
        def get_order(order_id: int, request: Request) -> Response:
            if (denied := self._unauthorised(request)) is not None:
                return denied
            with self.lock:
                order = self.orders.get(order_id)
                snapshot = _copy(order) if order is not None else None
            if snapshot is None:
                return _response({"message": "Order not found."}, 404)
            return _response(snapshot)

        @app.post("/api/v1/orders/ship")
        async def ship(request: Request) -> Response:
            if (denied := self._unauthorised(request)) is not None:
                return denied
            body, errors = _items_body(await request.body())
            if body is not None:
                for index, group in enumerate(body):
                    errors.update(self._ship_errors(index, group))
            if errors or body is None:
                return _invalid(errors)
            with self.lock:
                batch_id = self._new_batch(self._ship(body))
            return _response({"batch_request_id": batch_id}, 202)

        @app.post("/api/v1/orders/cancel")
        async def cancel(request: Request) -> Response:
            if (denied := self._unauthorised(request)) is not None:
                return denied
            body, errors = _items_body(await request.body())
            if body is not None:
                for index, entry in enumerate(body):
                    if not isinstance(entry, dict) or not _is_int(entry.get("id")):
                        errors[f"items.{index}.id"] = ["The id must be an integer."]
            if errors or body is None:
                return _invalid(errors)
            with self.lock:
                batch_id = self._new_batch(self._cancel([entry["id"] for entry in body]))
            return _response({"batch_request_id": batch_id}, 202)

        @app.put("/api/v1/products/stocks")
        async def stocks(request: Request) -> Response:
            if (denied := self._unauthorised(request)) is not None:
                return denied
            body, errors = _items_body(await request.body())
            if body is not None:
                for index, entry in enumerate(body):
                    sku = entry.get("sku") if isinstance(entry, dict) else None
                    if not isinstance(sku, str) or not 1 <= len(sku) <= MAX_KEY_LENGTH:
                        errors[f"items.{index}.sku"] = ["The sku must be 1 to 255 characters."]
                    quantity = entry.get("quantity") if isinstance(entry, dict) else None
                    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                        errors[f"items.{index}.quantity"] = [
                            "The quantity must be an integer of at least 0."
                        ]
            if errors or body is None:
                return _invalid(errors)
            with self.lock:
                batch_id = self._new_batch(self._set_stocks(body))
            return _response({"batch_request_id": batch_id}, 202)

        @app.get("/api/v1/results/{kind}")
        def results(kind: str, request: Request) -> Response:
            if (denied := self._unauthorised(request)) is not None:
                return denied
            batch_id = request.query_params.get("batch_request_id")
            if not batch_id:
                return _invalid({"batch_request_id": ["The batch request id is required."]})
            with self.lock:
                batch = self.batches.get(batch_id)
                if batch is None or RESULT_PATHS.get(kind) != batch.kind:
                    return _response({"message": "Batch request not found."}, 404)
                batch.polls += 1
                if batch.polls <= self.pending_polls:
                    return _response(
                        {"batch_request_id": batch_id, "status": "pending", "items": []}
                    )
                to_send, batch.on_complete = batch.on_complete, []
                payload = {
                    "batch_request_id": batch_id,
                    "status": "completed",
                    "items": batch.items,
                }
                body = dumps(payload)
            # Outside the lock: the receiver may call back into this simulator.
            for event, message in to_send:
                self.send_webhook(event, message)
            return Response(body, media_type="application/json")

        @app.get("/api/v1/carriers/")
        def carriers(request: Request) -> Response:
            if (denied := self._unauthorised(request)) is not None:
                return denied
            items = [{"key": key, "name": name} for key, name in self.carriers.items()]
            return _response({"items": items})

    def _ship_errors(self, index: int, group: Any) -> dict[str, list[str]]:
        where = f"items.{index}"
        if not isinstance(group, dict):
            return {where: ["Each item must be an object."]}
        errors: dict[str, list[str]] = {}
        ids = group.get("order_items")
        if not isinstance(ids, list) or not ids or not all(_is_int(i) for i in ids):
            errors[f"{where}.order_items"] = ["The order items must be a non-empty list of ids."]
        elif len(set(ids)) != len(ids):
            errors[f"{where}.order_items"] = ["The order items must not repeat an id."]
        carrier = group.get("carrier_key")
        if not isinstance(carrier, str) or carrier not in self.carriers:
            errors[f"{where}.carrier_key"] = ["The selected carrier key is invalid."]
        for name in ("shipment_tracking_key", "return_tracking_key"):
            value = group.get(name)
            if not isinstance(value, str) or not 1 <= len(value) <= MAX_KEY_LENGTH:
                label = name.replace("_", " ")
                errors[f"{where}.{name}"] = [f"The {label} must be 1 to 255 characters."]
        return errors

    def place_order(self, sku: str, quantity: int = 1) -> str:
        """A customer orders `quantity` units of `sku` for dropshipping."""
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        self.add_product(sku)
        return str(self.create_order(*[sku] * quantity))

    def _control_routes(self, app: FastAPI) -> None:
        # Added before `install` mounts /_sim, so these match first.
        @app.post("/_sim/orders")
        def place(request: _OrderRequest) -> dict[str, int]:
            order_id = self.create_order(*request.skus, fulfillment_type=request.fulfillment_type)
            return {"id": order_id}

        @app.get("/_sim/orders/{order_id}")
        def show(order_id: int) -> Response:
            with self.lock:
                if order_id not in self.orders:
                    return _response({"message": "Order not found."}, 404)
            return _response(self.order(order_id))

        @app.post("/_sim/orders/{order_id}/cancel-items")
        def cancel_items(order_id: int, request: _ItemsRequest) -> dict[str, int | None]:
            return {"webhook_status": self.cancel_items(order_id, request.item_ids)}

        @app.post("/_sim/orders/{order_id}/return-items")
        def return_items(order_id: int, request: _ItemsRequest) -> dict[str, int | None]:
            return {"webhook_status": self.return_items(order_id, request.item_ids)}


def _copy(value: Any) -> Any:
    """A deep copy of plain JSON-like state (Decimals and datetimes are immutable)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _failure(item_id: int, code: str, message: str) -> dict[str, Any]:
    return {
        "order_item_id": item_id,
        "success": False,
        "error_code": code,
        "error_message": message,
    }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _items_body(raw: bytes) -> tuple[list[Any] | None, dict[str, list[str]]]:
    """The `items` list of a batch body, or the validation errors that stop it."""
    try:
        data = loads(raw) if raw else None
    except ValueError:
        return None, {"body": ["The body must be JSON."]}
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        return None, {"items": ["The items field is required and must be a non-empty list."]}
    return items, {}


def _int_param(
    raw: str | None,
    default: int,
    low: int,
    high: int | None,
    name: str,
    errors: dict[str, list[str]],
) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors[name] = [f"The {name} must be an integer."]
        return default
    if value < low or (high is not None and value > high):
        errors[name] = [f"The {name} must be between {low} and {high or 'any'}."]
    return value


def _time_param(raw: str | None, name: str, errors: dict[str, list[str]]) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        errors[name] = [f"The {name} is not a valid date."]
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
