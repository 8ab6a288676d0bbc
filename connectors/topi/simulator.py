"""A stateful fake of topi's Seller API and identity service, for tests and the demo.

It issues OAuth2 client-credentials tokens (HTTP Basic client, `grant_type=client_credentials`,
`scope=client` as topi's guide has it), keeps orders with topi's status rules (acknowledge from
created; accept from created or acknowledged; reject never after confirmation), validates
shipments the way topi does (every unit once, a serial for every unit with a rent option),
moves orders to partially_fulfilled and completed, and sends Svix-signed webhooks for created,
canceled and completed orders. Errors use topi's goa error body.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from connectors.contracts import enforce
from connectors.signatures import sign_standard_webhook
from connectors.simulation import SimulatorBase
from connectors.topi.spec import CONTRACT, token_path

API_HOST = "https://seller-api.topi.eu"
ORDER_PATH = "/v1/orders"
SHIPPED = "shipped"
SHIPPABLE_STATUSES = frozenset({"confirmed", "accepted", "partially_fulfilled"})
FINAL_STATUSES = frozenset({"completed", "canceled", "rejected"})
# From which statuses each seller call is allowed (topi's OpenAPI descriptions).
ALLOWED_FROM: Mapping[str, frozenset[str]] = {
    "acknowledge": frozenset({"created"}),
    "accept": frozenset({"created", "acknowledged"}),
    "reject": frozenset({"created", "acknowledged"}),
}
TARGET: Mapping[str, str] = {
    "acknowledge": "acknowledged",
    "accept": "confirmed",
    "reject": "rejected",
}
DEFAULT_ADDRESS: Mapping[str, str] = {
    "name": "Felix Wolf",
    "line1": "Leopoldstrasse 10",
    "line2": "3. OG",
    "postal_code": "80802",
    "city": "Munich",
    "region": "Bavaria",
    "country_code": "DE",
}


@dataclass(frozen=True, slots=True)
class SimLine:
    """What a customer orders: `quantity` units of one product, each becoming an asset."""

    sku: str
    quantity: int = 1
    contract_type: str = "rent"
    unit_price: int = 119000  # gross, minor units, as topi sends money
    title: str = "Pro Laptop 64GB"
    # The reference source the product carries; "sku" is the simulated seller's own source.
    source: str = "sku"
    # Whether the product can be rented (topi then wants a serial for each unit, even one
    # bought outright). None: only when this line is rented.
    rent_option: bool | None = None

    @property
    def rentable(self) -> bool:
        return self.contract_type == "rent" if self.rent_option is None else self.rent_option


@dataclass(slots=True)
class _Asset:
    id: str
    product_id: str
    source: str
    reference: str
    title: str
    rentable: bool
    status: str = "created"
    serial_number: str | None = None
    tracking_url: str | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "product_id": self.product_id,
            "seller_product_references": [{"source": self.source, "reference": self.reference}],
            "status": self.status,
            "title": self.title,
        }
        if self.serial_number:
            out["serial_number"] = self.serial_number
        if self.tracking_url:
            out["tracking_url"] = self.tracking_url
        return out


@dataclass(slots=True)
class _Order:
    id: str
    offer_id: str
    seller_offer_reference: str
    status: str
    created_at: datetime
    lines: tuple[SimLine, ...]
    assets: list[_Asset]
    address: dict[str, str]
    email: str
    company: str
    metadata: dict[str, str] = field(default_factory=dict)
    canceled_at: datetime | None = None
    shipments: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "offer_id": self.offer_id,
            "seller_offer_reference": self.seller_offer_reference,
            "status": self.status,
            "assets": [a.wire() for a in self.assets],
            "metadata": dict(self.metadata),
        }

    def webhook(self) -> dict[str, Any]:
        """The bare order topi posts to the webhook (the fields its documentation lists)."""
        return {**self.summary(), "shipping_address": dict(self.address)}

    def full(self, seller: Mapping[str, Any]) -> dict[str, Any]:
        """The order as `GET /v1/orders/{id}` answers it (FullOrderResult), sold by `seller`."""
        address = {k: v for k, v in self.address.items() if k != "name"}
        address["recipient_name"] = self.address.get("name", "")
        out = {
            **self.summary(),
            "created_at": _iso(self.created_at),
            "offer_created_at": _iso(self.created_at),
            "customer_info": {
                "email": self.email,
                "full_name": self.address.get("name", ""),
                "company": {"name": self.company},
            },
            "order_lines": [_order_line(line) for line in self.lines],
            "seller_info": dict(seller),
            "shipping_address": address,
            "shipping_info": {
                "seller_shipping_reference": "standard",
                "is_in_store_pickup": False,
                "price": {"currency": "EUR", "gross": 0, "net": 0},
            },
            "tracking_urls": sorted({a.tracking_url for a in self.assets if a.tracking_url}),
        }
        if self.canceled_at is not None:
            out["canceled_at"] = _iso(self.canceled_at)
        return out


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _money(gross: int) -> dict[str, Any]:
    return {"currency": "EUR", "gross": gross, "net": round(gross / 1.19)}


def _order_line(line: SimLine) -> dict[str, Any]:
    rented = line.contract_type == "rent"
    monthly = line.unit_price // 12
    out: dict[str, Any] = {
        "quantity": line.quantity,
        "title": line.title,
        "subtitle": "",
        "contract_type": line.contract_type,
        "duration": 12 if rented else 0,
        "monthly_price": _money(monthly if rented else 0),
        "unit_price": _money(line.unit_price),
        "seller_product_references": [{"source": line.source, "reference": line.sku}],
        "selected_first_party_services": [],
    }
    if line.rentable:
        out["base_rental_price"] = _money(monthly)
    return out


def _unauthorised() -> JSONResponse:
    # topi documents its 401 body as a bare JSON string.
    return JSONResponse("unauthorized", status_code=401)


def _goa_error(status: int, name: str, message: str) -> JSONResponse:
    """topi's error body and media type."""
    return JSONResponse(
        {
            "name": name,
            "id": uuid.uuid4().hex[:8],
            "message": message,
            "temporary": False,
            "timeout": False,
            "fault": False,
        },
        status_code=status,
        media_type="application/vnd.goa.error",
    )


def _refuse(status: int, problems: list[str]) -> JSONResponse:
    """A request the description does not admit, refused in topi's goa format."""
    return _goa_error(status, "bad_request", "; ".join(problems))


def _refuse_token(status: int, problems: list[str]) -> JSONResponse:
    """A token request that is not a client-credentials grant for scope `client` (RFC 6749)."""
    if any("grant_type" in p for p in problems):
        error = "unsupported_grant_type"
    elif any("scope" in p for p in problems):
        error = "invalid_scope"
    else:
        error = "invalid_request"
    return JSONResponse(
        {"error": error, "error_description": "; ".join(problems)}, status_code=status
    )


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class TopiSimulator(SimulatorBase):
    """topi's identity service and Seller API as one FastAPI app (`self.app`)."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        webhook_secret: str,
        webhook_url: str | None = None,
        webhook_client: httpx.Client | None = None,
        token_ttl: int = 7200,
        product_reference_source: str = "sku",
    ) -> None:
        super().__init__(webhook_url=webhook_url, webhook_client=webhook_client)
        # The seller's account at topi (SellerInfo); its reference source names the SKU.
        self.seller: dict[str, Any] = {
            "id": "5e1d2c3b-0000-4000-8000-00000000a11e",
            "name": "Demo Seller",
            "address": {
                "line1": "Torstrasse 1",
                "postal_code": "10119",
                "city": "Berlin",
                "country_code": "DE",
            },
            "email": "seller@example.com",
            "currency": "EUR",
            "product_reference_source": product_reference_source,
            "capability_add_custom_products": False,
            "capability_anonymized_pricing": False,
            "capability_anonymous_ecom_offer_creation": False,
            "capability_bundles": False,
            "capability_dual_pricing": False,
            "capability_hide_buy_now": False,
            "capability_international_shipment": False,
        }
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_secret = webhook_secret
        self.token_ttl = token_ttl
        self.orders: dict[str, _Order] = {}
        self.tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self.issued_tokens = 0
        self._sequence = 0
        self._sequence_lock = threading.Lock()
        self.app = FastAPI(title="topi simulator")
        self._routes(self.app)
        # Requests that do not fit topi's description are refused as topi refuses them (a goa
        # 400, or an OAuth2 error at the token endpoint); installed first, so the recording
        # middleware sees those refusals too.
        enforce(
            self.app,
            CONTRACT,
            _refuse,
            refusers={token_path(CONTRACT.document): _refuse_token},
        )
        self.install(self.app)

    # -- driving the simulator (topi's and the customer's side) ----------------------------------

    def create_order(
        self,
        lines: Mapping[str, int] | Sequence[SimLine],
        *,
        address: Mapping[str, str] | None = None,
        order_id: str | None = None,
        seller_offer_reference: str | None = None,
        created_at: datetime | None = None,
        email: str = "buyer@example.com",
        company: str = "Unicorn Corp",
    ) -> str:
        """Place an order (`{sku: quantity}` or `SimLine`s) and send its `created` webhook."""
        sim_lines = (
            tuple(SimLine(sku, quantity) for sku, quantity in lines.items())
            if isinstance(lines, Mapping)
            else tuple(lines)
        )
        if not sim_lines or any(line.quantity < 1 for line in sim_lines):
            raise ValueError("an order needs at least one line of at least one unit")
        with self._sequence_lock:
            self._sequence += 1
            sequence = self._sequence
        oid = order_id or str(uuid.uuid4())
        assets = [
            _Asset(
                id=str(uuid.uuid4()),
                # topi's own product id: a UUID, whatever characters the seller's SKU has.
                product_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"topi-product:{line.sku}")),
                source=line.source,
                reference=line.sku,
                title=line.title,
                rentable=line.rentable,
            )
            for line in sim_lines
            for _ in range(line.quantity)
        ]
        order = _Order(
            id=oid,
            offer_id=str(uuid.uuid4()),
            seller_offer_reference=seller_offer_reference or f"OFFER-{sequence:05d}",
            status="created",
            created_at=created_at or datetime.now(UTC),
            lines=sim_lines,
            assets=assets,
            address=dict(address if address is not None else DEFAULT_ADDRESS),
            email=email,
            company=company,
        )
        with self.lock:
            if oid in self.orders:
                raise ValueError(f"order {oid} exists")
            self.orders[oid] = order
            payload = order.webhook()
        self.send_webhook(payload)
        return oid

    def cancel_order(self, order_id: str) -> None:
        """The customer cancels through topi: the order becomes `canceled` and topi notifies.
        topi cannot cancel a completed, rejected or canceled order (after completion it is a
        return)."""
        with self.lock:
            order = self.orders[order_id]
            if order.status in FINAL_STATUSES:
                raise ValueError(f"order {order_id} is {order.status}; it cannot be canceled")
            order.status = "canceled"
            order.canceled_at = datetime.now(UTC)
            payload = order.webhook()
        self.send_webhook(payload)

    def order(self, order_id: str) -> dict[str, Any]:
        """The order as `GET /v1/orders/{id}` shows it."""
        with self.lock:
            return self.orders[order_id].full(self.seller)

    def expire_tokens(self) -> None:
        """Every token issued so far stops working, as if its lifetime had run out."""
        with self.lock:
            self.tokens.clear()

    def send_webhook(self, payload: Mapping[str, Any], msg_id: str | None = None) -> int | None:
        """Sign `payload` the Svix way and deliver it; the target's status (None: dropped)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        timestamp = str(int(time.time()))
        signature = sign_standard_webhook(
            secret=self.webhook_secret, msg_id=msg_id, timestamp=timestamp, body=body
        )
        return self.deliver(
            body,
            {"svix-id": msg_id, "svix-timestamp": timestamp, "svix-signature": signature},
        )

    def redeliver(self, index: int = -1) -> int | None:
        """Send an earlier webhook again, with its message id and a fresh signature, as a
        retrying sender does."""
        with self.lock:
            sent = self.sent_webhooks[index]
        return self.send_webhook(json.loads(sent.body), msg_id=sent.headers["svix-id"])

    # -- the API --------------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self.lock:
            expires = self.tokens.get(token)
        return expires is not None and time.monotonic() < expires

    def _check_client(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        client_id, _, client_secret = decoded.partition(":")
        return hmac.compare_digest(client_id, self.client_id) and hmac.compare_digest(
            client_secret, self.client_secret
        )

    def place_order(self, sku: str, quantity: int = 1) -> str:
        """A customer rents `quantity` units of `sku`."""
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        return self.create_order({sku: quantity})

    def _routes(self, app: FastAPI) -> None:

        @app.post("/_sim/orders")
        def _sim_create(body: dict[str, Any]) -> dict[str, str]:
            lines = [SimLine(**line) for line in body.get("lines", [])]
            return {"id": self.create_order(lines, address=body.get("address"))}

        @app.post("/_sim/orders/{order_id}/cancel")
        def _sim_cancel(order_id: str) -> JSONResponse:
            try:
                self.cancel_order(order_id)
            except KeyError:
                return _goa_error(404, "not_found", f"order {order_id} not found")
            except ValueError as exc:
                return _goa_error(422, "invalid_status", str(exc))
            return JSONResponse({"id": order_id, "status": "canceled"})

        @app.post("/_sim/expire-tokens")
        def _sim_expire() -> dict[str, bool]:
            self.expire_tokens()
            return {"expired": True}

        @app.post("/oauth2/token")
        def _token(request: Request) -> JSONResponse:
            # The grant and the scope were checked against the contract before it got here.
            if not self._check_client(request):
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            token = secrets.token_urlsafe(24)
            with self.lock:
                self.tokens[token] = time.monotonic() + self.token_ttl
                self.issued_tokens += 1
            return JSONResponse(
                {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": self.token_ttl,
                    "scope": "seller-order:read seller-order:edit seller-shipment:edit",
                }
            )

        @app.get(f"{ORDER_PATH}/paginated")
        def _list(request: Request) -> JSONResponse:
            if not self._authorised(request):
                return _unauthorised()
            return self._list_orders(request.query_params)

        @app.get(ORDER_PATH + "/{order_id}")
        def _show(order_id: str, request: Request) -> JSONResponse:
            if not self._authorised(request):
                return _unauthorised()
            with self.lock:
                order = self.orders.get(order_id)
                if order is None:
                    return _goa_error(404, "not_found", f"order {order_id} not found")
                return JSONResponse(order.full(self.seller))

        for action in ALLOWED_FROM:
            self._transition_route(app, action)

        @app.post("/v1/shipment")
        async def _shipment(request: Request) -> JSONResponse:
            if not self._authorised(request):
                return _unauthorised()
            try:
                body = json.loads(await request.body())
            except ValueError:
                return _goa_error(400, "bad_request", "request body is not JSON")
            response, completed = self._create_shipment(body)
            if completed is not None:
                # Delivery blocks on the receiver; keep it off the event loop.
                await run_in_threadpool(self.send_webhook, completed)
            return response

    def _transition_route(self, app: FastAPI, action: str) -> None:
        @app.post(ORDER_PATH + "/{order_id}/" + action, name=f"order#{action}Order")
        def _transition(order_id: str, request: Request) -> JSONResponse:
            if not self._authorised(request):
                return _unauthorised()
            with self.lock:
                order = self.orders.get(order_id)
                if order is None:
                    return _goa_error(404, "not_found", f"order {order_id} not found")
                if order.status not in ALLOWED_FROM[action]:
                    return _goa_error(
                        422,
                        "invalid_status",
                        f"cannot {action} an order in status {order.status!r}; allowed from "
                        f"{', '.join(sorted(ALLOWED_FROM[action]))}",
                    )
                order.status = TARGET[action]
                return JSONResponse(order.summary())

    def _list_orders(self, query: Mapping[str, str]) -> JSONResponse:
        try:
            limit = int(query.get("limit", "20"))
            page = int(query.get("page", "1"))
            bounds = {
                name: _parse_time(query.get(name))
                for name in ("created_at_gt", "created_at_gte", "created_at_lt", "created_at_lte")
            }
        except ValueError as exc:
            return _goa_error(400, "bad_request", f"invalid query parameter: {exc}")
        if not 1 <= limit <= 100 or page < 1:
            return _goa_error(400, "bad_request", "limit must be 1..100 and page at least 1")
        order_by = query.get("sort_order", "asc")
        if order_by not in ("asc", "desc"):
            return _goa_error(400, "bad_request", "sort_order must be asc or desc")

        def wanted(order: _Order) -> bool:
            at = order.created_at
            gt, gte = bounds["created_at_gt"], bounds["created_at_gte"]
            lt, lte = bounds["created_at_lt"], bounds["created_at_lte"]
            return (
                (gt is None or at > gt)
                and (gte is None or at >= gte)
                and (lt is None or at < lt)
                and (lte is None or at <= lte)
            )

        with self.lock:
            matching = sorted(
                (o for o in self.orders.values() if wanted(o)),
                key=lambda o: (o.created_at, o.id),
                reverse=order_by == "desc",
            )
            rows = [
                {
                    "id": o.id,
                    "offer_id": o.offer_id,
                    "created_at": _iso(o.created_at),
                    "agent_name": "",
                    "seller_offer_reference": o.seller_offer_reference,
                    "status": o.status,
                    "company_name": o.company,
                    "full_name": o.address.get("name", ""),
                }
                for o in matching[(page - 1) * limit : page * limit]
            ]
        total = len(matching)
        return JSONResponse(
            {
                "orders": rows,
                "pagination": {
                    "page": page,
                    "page_size": limit,
                    "total_count": total,
                    "total_pages": (total + limit - 1) // limit,
                },
            }
        )

    def _create_shipment(self, body: Any) -> tuple[JSONResponse, dict[str, Any] | None]:
        """The answer to a shipment, and the `completed` webhook to send when it completed the
        order."""
        # The body's shape was checked against CreateRequestBody before it got here.
        if not body["serial_numbers"]:
            return _goa_error(400, "bad_request", "a shipment lists at least one unit"), None
        entries: list[dict[str, Any]] = body["serial_numbers"]
        tracking_url: str | None = body.get("tracking_url")
        completed: dict[str, Any] | None = None
        with self.lock:
            order = self.orders.get(body["order_id"])
            if order is None:
                return _goa_error(404, "not_found", f"order {body['order_id']} not found"), None
            if order.status not in SHIPPABLE_STATUSES:
                return _goa_error(
                    400,
                    "bad_request",
                    f"order is {order.status}; shipments need a confirmed order",
                ), None
            taken: set[str] = set()
            known_serials = {a.serial_number for a in order.assets if a.serial_number}
            plan: list[tuple[_Asset, str]] = []
            for entry in entries:
                ref = entry["seller_product_reference"]
                serial: str = entry["serial_number"]
                asset = next(
                    (
                        a
                        for a in order.assets
                        if a.status != SHIPPED
                        and a.id not in taken
                        and (a.source, a.reference) == (ref["source"], ref["reference"])
                    ),
                    None,
                )
                if asset is None:
                    return _goa_error(
                        400,
                        "bad_request",
                        f"no unshipped asset {ref['source']}:{ref['reference']} left in the "
                        "order: every unit can be shipped once",
                    ), None
                if not serial and asset.rentable:
                    return _goa_error(
                        400,
                        "bad_request",
                        f"asset {ref['reference']} has a rent option and requires a serial number",
                    ), None
                if serial and serial in known_serials:
                    return _goa_error(
                        400, "bad_request", f"serial number {serial} is already registered"
                    ), None
                if serial:
                    known_serials.add(serial)
                taken.add(asset.id)
                plan.append((asset, serial))
            for asset, serial in plan:
                asset.status = SHIPPED
                asset.serial_number = serial or None
                asset.tracking_url = tracking_url
            order.shipments.append(body)
            if all(a.status == SHIPPED for a in order.assets):
                order.status = "completed"
                completed = order.webhook()
            else:
                order.status = "partially_fulfilled"
        answer: dict[str, Any] = {"serial_numbers": entries}
        if tracking_url:
            answer["tracking_url"] = tracking_url
        if "metadata" in body:
            answer["metadata"] = body["metadata"]
        return JSONResponse(answer), completed
