"""A stateful fake of the Depop Seller API, for tests and the demo.

It keeps products by SKU and orders, refuses every request that does not fit Depop's published
description (`connectors.depop.spec`, enforced in its own app) and validates the rest the way the
Seller API documents, answers errors in Depop's `{id, errors: [{code, message}]}` format, checks
the Bearer credential (the API key, which has every scope, or an OAuth access token limited to
the scopes it was granted), serves the seller's authorize page at `GET /settings/oauth/apps/`
(authorization code with PKCE S256; the seller approves, or declines when told to), issues
OAuth tokens at `POST /api/v1/oauth2/access-token/` (single-use codes, access tokens for an
hour, single-use refresh tokens; a grant the seller revokes stops them all), and sends signed
`v1:order.new`,
`v1:order.refund` and `v1:product.like|unlike` webhooks to the configured target.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.contracts import enforce
from connectors.depop.spec import AUTHORIZE, AUTHORIZE_PATH, OPENAPI
from connectors.depop.spec import SCOPES as spec_scopes
from connectors.depop.transformers import (
    ORDER_NEW,
    ORDER_REFUND,
    PRODUCT_LIKE,
    PRODUCT_ON_SALE,
    PRODUCT_UNLIKE,
)
from connectors.signatures import sign_timestamped_hex
from connectors.simulation import SimulatorBase

HOST = "https://partnerapi.depop.com"
SELLER_ID = 123456
TOKEN_PATH = "/api/v1/oauth2/access-token/"
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_LIFETIME = timedelta(days=365)
CODE_LIFETIME = timedelta(minutes=10)  # RFC 6749 4.1.2: "a maximum ... of 10 minutes"
SCOPES = frozenset(spec_scopes)  # what Depop's description names

_PUT_REQUIRED = (
    "address",
    "description",
    "price_currency",
    "price_amount",
    "quantity",
    "pictures",
    "department",
    "product_type",
    "condition",
    "brand_name",
    "attributes",
)
_PATCHABLE = (
    "price_amount",
    "discount_price",
    "auto_send_offer_price",
    "auto_negotiate_offer_price",
    "quantity",
)
_CENT = Decimal("0.01")

# A JSON object request body, as the Seller API takes on every write.
JsonBody = Annotated[dict[str, Any], Body()]

DEFAULT_BUYER: dict[str, str] = {
    "name": "John Doe",
    "address": "123 Main St",
    "address2": "Apt 1",
    "city": "London",
    "postal_code": "EC1V 4PW",
    "state": "Greater London",
    "country_code": "GB",
}


class DepopError(Exception):
    """An answer in Depop's error format; raised by handlers and by the driving methods."""

    def __init__(self, status: int, errors: Iterable[tuple[str, str]]) -> None:
        self.status = status
        self.errors = [{"code": code, "message": message} for code, message in errors]
        super().__init__("; ".join(f"{e['code']}: {e['message']}" for e in self.errors))

    def body(self) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "errors": self.errors}


def _bad_request(message: str) -> DepopError:
    return DepopError(400, [("bad-request", message)])


def _refuse(status: int, problems: list[str]) -> Response:
    """A request that does not fit its operation, answered as Depop answers one."""
    code = "validation" if status == 422 else "bad-request"
    return JSONResponse(DepopError(status, [(code, p) for p in problems]).body(), status)


class OAuthError(Exception):
    """An answer of the token endpoint, in its own format (`OAuthErrorResponse`)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.status, self.error, self.detail = status, error, detail

    def response(self) -> JSONResponse:
        body = {
            "code": self.status,
            "error": self.error,
            "message": "Depop OAuth2 error",
            "detail": self.detail,
            "id": str(uuid.uuid4()),
        }
        return JSONResponse(body, status_code=self.status)


def _refuse_token_request(status: int, problems: list[str]) -> Response:
    return OAuthError(400, "invalid_request", "; ".join(problems)).response()


@dataclass
class _Grant:
    """What a seller's authorization granted: scopes, and when its refresh tokens stop."""

    client_id: str
    scopes: frozenset[str]
    expires_at: datetime
    id: str = dataclass_field(default_factory=lambda: uuid.uuid4().hex)
    revoked: bool = False


@dataclass
class _Code:
    grant: _Grant
    challenge: str
    redirect_uri: str
    expires_at: datetime


def _with_query(url: str, params: Mapping[str, str]) -> str:
    """`url` with `params` added to its query (RFC 6749 4.1.2 keeps the redirect_uri's own)."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _authorize_refusal(error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


def _amount(value: Any, field: str, errors: list[tuple[str, str]]) -> Decimal | None:
    """A decimal-string price, or None with an error noted when it is not one."""
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(("bad-request", f"{field} must be a decimal string"))
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        errors.append(("bad-request", f"{field} is not a decimal amount"))
        return None
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -2:
        errors.append(("bad-request", f"{field} must be a finite amount with up to 2 decimals"))
        return None
    return amount


def _money(value: Decimal) -> str:
    return str(value.quantize(_CENT))


def _webhook_order(order: Mapping[str, Any]) -> dict[str, Any]:
    """An order as `v1:order.new` carries it (`OrderWebhook`): the total fee instead of its
    breakdown, no creation time, refund or tax, and the country spelled `country`."""
    data = {
        key: value
        for key, value in order.items()
        if key not in ("seller_fee_breakdown", "created_at", "refund_summary", "buyer_tax_amount")
    }
    fees = sum((Decimal(fee["amount"]) for fee in order["seller_fee_breakdown"]), Decimal(0))
    data["fee_amount"] = _money(fees)
    address = dict(order["buyer_address"])
    address["country"] = address.pop("country_code")
    data["buyer_address"] = address
    payload: dict[str, Any] = json.loads(json.dumps(data))
    return payload


class DepopSimulator(SimulatorBase):
    """The Seller API's behaviour over in-memory state, served as `self.app`."""

    def __init__(
        self,
        api_key: str = "depop-sim-key",
        webhook_secret: str = "depop-sim-secret",
        webhook_url: str | None = None,
        webhook_client: httpx.Client | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        oauth_client: tuple[str, str] | None = None,
        redirect_uris: Iterable[str] | None = (),
        seller_id: int = SELLER_ID,
    ) -> None:
        super().__init__(webhook_url=webhook_url, webhook_client=webhook_client)
        self.api_key = api_key
        self.seller_id = seller_id
        # OAuth: the registered client (id, secret), its registered redirect URIs, and what its
        # sellers granted.
        self.oauth_client = oauth_client
        # None: any http(s) URL counts as registered (the demo, whose hub URL is not known).
        self.redirect_uris: set[str] | None = None if redirect_uris is None else set(redirect_uris)
        # What the seller does on the authorize page: approve (True) or decline.
        self.seller_approves = True
        self.token_latency = 0.0  # seconds the token endpoint takes, as a slow one would
        self._grants: dict[str, _Grant] = {}
        self._refresh_tokens: dict[str, _Grant] = {}
        self._spent_refresh_tokens: dict[str, _Grant] = {}
        self._access_tokens: dict[str, tuple[_Grant, datetime]] = {}
        self._codes: dict[str, _Code] = {}
        self.webhook_secret = webhook_secret
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        # None: an API key, which has every scope. A set: an OAuth token limited to those scopes.
        self.scopes: set[str] | None = None
        self.products: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        # purchase_id -> parcel_id -> {"tracking_number", "carrier"} once marked as shipped.
        self.shipped_parcels: dict[str, dict[str, dict[str, str]]] = {}
        self.sent_events: dict[str, tuple[bytes, str]] = {}  # event id -> (body, timestamp)
        self._next_product_id = 7021251
        self._next_purchase_id = 4000001
        self._next_item_id = 2385551
        self.app = FastAPI(title="Depop Seller API (simulator)")
        self._routes(self.app)
        self._control_routes(self.app)
        # Added before `install`, so injected faults and the call record wrap the validation.
        enforce(self.app, OPENAPI, _refuse, refusers={TOKEN_PATH: _refuse_token_request})
        self.install(self.app)

    def fail_next(self, n: int, status: int = 500, body: Any = None) -> None:
        """The next `n` API calls answer `status`, errors in Depop's format by default."""
        if body is None and status >= 400:
            code = "too_many_requests" if status == 429 else "internal_server_error"
            body = DepopError(status, [(code, f"simulated {status}")]).body()
        super().fail_next(n, status, body)

    # -- webhooks -----------------------------------------------------------------------------

    def signed_headers(self, body: bytes, timestamp: str) -> dict[str, str]:
        """The headers Depop sends with a webhook body signed at `timestamp` (Unix seconds)."""
        return {
            "X-Depop-Timestamp": timestamp,
            "X-Depop-Signature": sign_timestamped_hex(
                secret=self.webhook_secret, timestamp=timestamp, body=body
            ),
        }

    def send_event(self, event_type: str, data: Mapping[str, Any]) -> str:
        """Build, sign and deliver one webhook; its envelope id."""
        event_id = str(uuid.uuid4())
        envelope = {
            "id": event_id,
            "event_type": event_type,
            "created_at": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": data,
        }
        body = json.dumps(envelope).encode()
        timestamp = str(int(self.clock().timestamp()))
        with self.lock:
            self.sent_events[event_id] = (body, timestamp)
        self.deliver(body, self.signed_headers(body, timestamp))
        return event_id

    def redeliver(self, event_id: str) -> int | None:
        """Deliver an earlier webhook again, byte for byte, freshly signed, as retries do."""
        with self.lock:
            body, _ = self.sent_events[event_id]
        return self.deliver(body, self.signed_headers(body, str(int(self.clock().timestamp()))))

    # -- driving methods ----------------------------------------------------------------------

    def add_product(
        self,
        sku: str,
        *,
        price: str = "25.99",
        quantity: int = 1,
        currency: str = "GBP",
        **fields: Any,
    ) -> dict[str, Any]:
        """List a product as a seller would (a valid PUT by SKU); the stored product."""
        body: dict[str, Any] = {
            "address": {"country_code": "GB", "state": "Greater London"},
            "description": f"Listing {sku}",
            "price_currency": currency,
            "price_amount": price,
            "national_shipping_cost": "5.00",
            "quantity": quantity,
            "pictures": [{"url": f"https://images.example.com/{sku}.jpg"}],
            "department": "menswear",
            "product_type": "tshirts",
            "condition": "used_excellent",
            "brand_name": "Nike",
            "attributes": {},
            **fields,
        }
        self.put_product(sku, body)
        return self.products[sku]

    def put_product(self, sku: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create or update a listing with the PUT endpoint's validation."""
        errors: list[tuple[str, str]] = []
        missing = [name for name in _PUT_REQUIRED if name not in body]
        errors.extend(("bad-request", f"{name} is required") for name in missing)
        price = _amount(body.get("price_amount"), "price_amount", errors)
        if price is not None and price < 1:
            errors.append(("bad-request", "price_amount must be at least 1.00"))
        for name in ("discount_price", "national_shipping_cost", "international_shipping_cost"):
            _amount(body.get(name), name, errors)
        quantity = body.get("quantity")
        if "quantity" in body and (not isinstance(quantity, int) or quantity < 1):
            errors.append(("bad-request", "quantity must be at least 1"))
        pictures = body.get("pictures")
        if "pictures" in body and (not isinstance(pictures, list) or not 1 <= len(pictures) <= 8):
            errors.append(("bad-request", "pictures must hold between 1 and 8 images"))
        shipping = ("national_shipping_cost" in body, "depop_shipping" in body)
        if shipping.count(True) != 1:
            errors.append(
                ("bad-request", "either national_shipping_cost or depop_shipping must be provided")
            )
        with self.lock:
            existing = self.products.get(sku)
            if existing is not None and existing["status"].startswith("STATUS_DELETED"):
                errors.append(("bad-request", f"SKU {sku} was deleted and cannot be reused"))
            if errors:
                raise DepopError(400, errors)
            now = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
            if existing is None:
                product_id = self._next_product_id
                self._next_product_id += 1
                existing = {
                    "sku": sku,
                    "product_id": product_id,
                    "slug": f"{sku.lower()}-{product_id}",
                    "created_at": now,
                    "is_boosted": False,
                    "colour": [],
                    "style": [],
                    "age": [],
                    "source": [],
                }
                self.products[sku] = existing
            for key, value in body.items():
                if key == "brand_name":
                    existing["brand"] = value
                elif key == "pictures":
                    existing["pictures"] = [
                        {"url": p.get("url"), "height": 1280, "width": 1280} for p in value
                    ]
                else:
                    existing[key] = value
            if "depop_shipping" in body:
                existing.pop("national_shipping_cost", None)
            else:
                existing.pop("depop_shipping", None)
            existing["current_price"] = existing.get("discount_price") or existing["price_amount"]
            existing["status"] = PRODUCT_ON_SALE
            existing["updated_at"] = now
            return existing

    def _product(self, sku: str) -> dict[str, Any]:
        product = self.products.get(sku)
        if product is None or product["status"].startswith("STATUS_DELETED"):
            product_id = product["product_id"] if product else 0
            raise DepopError(
                404, [("product_not_found", f"Product (sku: {sku}, id: {product_id}) not found")]
            )
        return product

    def purchase(
        self,
        *skus: str,
        buyer: Mapping[str, str] | None = None,
        shipping_price: str = "5.00",
        tax: str | None = None,
        depop_shipping: Mapping[str, str] | None = None,
        parcel_per_item: bool = False,
    ) -> str:
        """A buyer buys one unit of each SKU in one parcel (today's Depop), or with
        `parcel_per_item` in a parcel each; the order's purchase id.

        The order is SHIPPING_PENDING and a signed `v1:order.new` is delivered.
        """
        if not skus:
            raise ValueError("a purchase needs at least one SKU")
        with self.lock:
            products = [self._product(sku) for sku in skus]
            for product in products:
                if product["status"] != PRODUCT_ON_SALE:
                    raise _bad_request(f"Product (sku: {product['sku']}) is not on sale")
            purchase_id = str(self._next_purchase_id)
            self._next_purchase_id += 1
            parcel_id = str(uuid.uuid4())
            items: list[dict[str, Any]] = []
            for product in products:
                if parcel_per_item and product is not products[0]:
                    parcel_id = str(uuid.uuid4())
                product["quantity"] -= 1
                if product["quantity"] <= 0:
                    product["quantity"] = 0
                    product["status"] = "STATUS_PURCHASED"
                items.append(
                    {
                        "purchase_item_id": self._next_item_id,
                        "sku": product["sku"],
                        "product_id": product["product_id"],
                        "slug": product["slug"],
                        "parcel_id": parcel_id,
                        "description": product["description"],
                        "original_price": product["price_amount"],
                        "sold_price": product["current_price"],
                        "sold_via_offers": False,
                        "image_url": product["pictures"][0]["url"],
                    }
                )
                self._next_item_id += 1
            currency = products[0]["price_currency"]
            order = self._new_order(
                purchase_id,
                items,
                currency,
                buyer=dict(buyer or DEFAULT_BUYER),
                shipping=Decimal(shipping_price),
                tax=Decimal(tax) if tax is not None else None,
            )
            if depop_shipping is not None:
                order["depop_shipping"] = dict(depop_shipping)
            self.orders[purchase_id] = order
            self.shipped_parcels[purchase_id] = {}
            payload = _webhook_order(order)
        self.send_event(ORDER_NEW, payload)
        return purchase_id

    def _new_order(
        self,
        purchase_id: str,
        items: list[dict[str, Any]],
        currency: str,
        *,
        buyer: dict[str, str],
        shipping: Decimal,
        tax: Decimal | None,
    ) -> dict[str, Any]:
        item_total = sum((Decimal(i["sold_price"]) for i in items), Decimal(0))
        depop_fee = (item_total * Decimal("0.10")).quantize(_CENT)
        payment_fee = (item_total * Decimal("0.03") + Decimal("0.20")).quantize(_CENT)
        buyer_pays = item_total + shipping + (tax or Decimal(0))
        order: dict[str, Any] = {
            "seller_id": self.seller_id,
            "purchase_id": purchase_id,
            "status": "SHIPPING_PENDING",
            "currency": currency,
            "buyer_pays_amount": _money(buyer_pays),
            "seller_receives_amount": _money(item_total + shipping - depop_fee - payment_fee),
            "buyer_shipping_price": _money(shipping),
            "buyer_address": buyer,
            "line_items": items,
            "seller_fee_breakdown": [
                {"fee_type": "DEPOP_FEE", "amount": _money(depop_fee), "currency": currency},
                {"fee_type": "PAYMENT_FEE", "amount": _money(payment_fee), "currency": currency},
                {"fee_type": "SHIPPING_FEE", "amount": "0.00", "currency": currency},
            ],
            "created_at": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if tax is not None:
            order["buyer_tax_amount"] = _money(tax)
        return order

    def _order(self, purchase_id: str, *, missing: int = 404) -> dict[str, Any]:
        """The order; a missing one answers `missing`: 404 where the operation documents it,
        400 (the bad-input answer) on the writes, which document no 404."""
        order = self.orders.get(purchase_id)
        if order is None:
            raise DepopError(
                missing, [("order_not_found", f"Order (purchase id: {purchase_id}) not found")]
            )
        return order

    def mark_parcel_shipped(
        self, purchase_id: str, parcel_id: str, tracking_number: Any, carrier: Any
    ) -> None:
        """Record tracking for a parcel; the order is SHIPPED once every parcel is."""
        if not isinstance(tracking_number, str) or not tracking_number:
            raise _bad_request("tracking_number is required")
        if not isinstance(carrier, str) or not carrier:
            raise _bad_request("carrier is required")
        if any(ch.isspace() for ch in tracking_number) or "" in tracking_number.split(","):
            raise _bad_request("tracking numbers must be separated by commas without spaces")
        with self.lock:
            order = self._order(purchase_id, missing=400)
            parcels = {item["parcel_id"] for item in order["line_items"]}
            if parcel_id not in parcels:
                raise DepopError(
                    400,
                    [("parcel_not_found", f"Parcel {parcel_id} not found in order {purchase_id}")],
                )
            if order["status"] in ("REFUNDED", "CANCELLED"):
                raise _bad_request(f"Order {purchase_id} is {order['status']} and cannot ship")
            shipped = self.shipped_parcels[purchase_id]
            if parcel_id in shipped:
                raise _bad_request(f"Parcel {parcel_id} has already been marked as shipped")
            shipped[parcel_id] = {"tracking_number": tracking_number, "carrier": carrier}
            if parcels <= shipped.keys() and order["status"] == "SHIPPING_PENDING":
                order["status"] = "SHIPPED"

    def complete(self, purchase_id: str) -> None:
        """The buyer received the order: SHIPPED becomes COMPLETED."""
        with self.lock:
            order = self._order(purchase_id)
            if order["status"] != "SHIPPED":
                raise _bad_request(f"Order {purchase_id} is {order['status']}, not SHIPPED")
            order["status"] = "COMPLETED"

    def refund(
        self,
        purchase_id: str,
        items_refund_amount: str | None = None,
        shipping_refund_amount: str | None = None,
        *,
        refunded_by: str = "PARTNER",
        send_buyer_message: str | None = None,
    ) -> None:
        """Refund with the Seller API's validation, then deliver `v1:order.refund`.

        Refunding every item and the shipping makes the order REFUNDED; less leaves its status.
        Raises `DepopError` (422, code `validation`) as the endpoint answers.
        """
        del send_buyer_message  # goes to the buyer's chat, which the simulator does not model
        self._record_refund(purchase_id, items_refund_amount, shipping_refund_amount, refunded_by)
        self.send_event(ORDER_REFUND, {"purchase_id": purchase_id, "refunded_by": refunded_by})

    def _record_refund(
        self,
        purchase_id: str,
        items_refund_amount: str | None,
        shipping_refund_amount: str | None,
        refunded_by: str,
    ) -> None:
        errors: list[tuple[str, str]] = []
        prefix = f"Refund for purchase id {purchase_id}"
        items = _amount(items_refund_amount, "items_refund_amount", errors)
        shipping = _amount(shipping_refund_amount, "shipping_refund_amount", errors)
        if errors:
            raise DepopError(400, errors)
        with self.lock:
            order = self._order(purchase_id, missing=400)
            summary = order.get("refund_summary")
            to_buyer = dict(summary["breakdown"]["refunded_to_buyer"]) if summary else {}
            done_items = Decimal(to_buyer.get("item_refund_amount", "0"))
            done_shipping = Decimal(to_buyer.get("shipping_refund_amount", "0"))
            item_total = sum((Decimal(i["sold_price"]) for i in order["line_items"]), Decimal(0))
            shipping_price = Decimal(order["buyer_shipping_price"])
            if items is None and shipping is None:
                errors.append(
                    (
                        "validation",
                        f"{prefix} must have an item amount or a shipping amount to refund.",
                    )
                )
            else:
                amounts = [a for a in (items, shipping) if a is not None]
                if any(a < 0 for a in amounts) or sum(amounts, Decimal(0)) <= 0:
                    errors.append(
                        ("validation", f"{prefix} must have a positive amount to refund.")
                    )
            if items is not None and done_items + items > item_total:
                errors.append(
                    ("validation", f"{prefix} has items_refund_amount greater than product price.")
                )
            if shipping is not None and done_shipping + shipping > shipping_price:
                errors.append(
                    (
                        "validation",
                        f"{prefix} has shipping_refund_amount greater than shipping price.",
                    )
                )
            new_items = done_items + (items or Decimal(0))
            new_shipping = done_shipping + (shipping or Decimal(0))
            full = new_items == item_total and new_shipping == shipping_price
            if shipping and not full and order.get("depop_shipping") is not None:
                errors.append(
                    (
                        "validation",
                        f"{prefix} can only refund Depop shipping as part of a full refund.",
                    )
                )
            if errors:
                raise DepopError(422, errors)
            tax = Decimal(order.get("buyer_tax_amount", "0")) if full else Decimal(0)
            fees = {f["fee_type"]: Decimal(f["amount"]) for f in order["seller_fee_breakdown"]}
            order["refund_summary"] = {
                "buyer_refund_amount": _money(new_items + new_shipping + tax),
                "refund_date": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "refunded_by": refunded_by,
                "breakdown": {
                    "refunded_to_buyer": {
                        "item_refund_amount": _money(new_items),
                        "shipping_refund_amount": _money(new_shipping),
                        "tax_refund_amount": _money(tax),
                        "depop_fee_refund_amount": "0.00",
                    },
                    "refunded_to_seller": {
                        "depop_fee_refund_amount": _money(
                            fees.get("DEPOP_FEE", Decimal(0)) if full else Decimal(0)
                        ),
                        "payment_fee_refund_amount": _money(
                            fees.get("PAYMENT_FEE", Decimal(0)) if full else Decimal(0)
                        ),
                        "ads_fee_refund_amount": "0.00",
                        "shipping_refund_amount": "0.00",
                    },
                },
            }
            if full:
                order["status"] = "REFUNDED"

    def cancel(self, purchase_id: str) -> None:
        """Depop cancels the order itself (auto-cancel): fully refunded by DEPOP, CANCELLED."""
        with self.lock:
            order = self._order(purchase_id)
            if order["status"] != "SHIPPING_PENDING":
                raise _bad_request(f"Order {purchase_id} is {order['status']}; cannot cancel")
            item_total = sum((Decimal(i["sold_price"]) for i in order["line_items"]), Decimal(0))
            shipping = Decimal(order["buyer_shipping_price"])
            self._record_refund(purchase_id, _money(item_total), _money(shipping), "DEPOP")
            order["status"] = "CANCELLED"
        self.send_event(ORDER_REFUND, {"purchase_id": purchase_id, "refunded_by": "DEPOP"})

    def like(self, sku: str, liker_id: int = 789012, *, unlike: bool = False) -> str:
        """A buyer likes (or unlikes) a product; the webhook's envelope id."""
        with self.lock:
            product = self._product(sku)
            data = {
                "seller_id": self.seller_id,
                "product_id": product["product_id"],
                "sku": sku,
                "slug": product["slug"],
                "liker_id": liker_id,
            }
        return self.send_event(PRODUCT_UNLIKE if unlike else PRODUCT_LIKE, data)

    # -- HTTP ---------------------------------------------------------------------------------

    def _authorize(self, request: Request, scope: str) -> None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        if token and token == self.api_key:
            scopes = self.scopes  # an API key has every scope unless a test narrowed them
        else:
            with self.lock:
                issued = self._access_tokens.get(token)
            if issued is None:
                raise DepopError(401, [("unauthorized", "invalid api key")])
            grant, expires_at = issued  # a revoked grant's access tokens are gone already
            if self.clock() >= expires_at:
                raise DepopError(401, [("unauthorized", "access token expired")])
            scopes = set(grant.scopes)
        if scopes is not None and scope not in scopes:
            raise DepopError(403, [("insufficient_scope", f"Required scope: {scope}")])

    # -- OAuth --------------------------------------------------------------------------------

    def grant(self, scopes: Iterable[str] = SCOPES) -> str:
        """A seller authorizes the OAuth client: the first refresh token of the grant."""
        if self.oauth_client is None:
            raise ValueError("the simulator has no OAuth client")
        grant = _Grant(
            self.oauth_client[0], frozenset(scopes), self.clock() + REFRESH_TOKEN_LIFETIME
        )
        token = f"prt_{secrets.token_hex(20)}"
        with self.lock:
            self._grants[grant.id] = grant
            self._refresh_tokens[token] = grant
        return token

    def authorization_code(
        self, code_challenge: str, redirect_uri: str, scopes: Iterable[str] = SCOPES
    ) -> str:
        """A seller approves the client at the authorize page (PKCE, S256): the code that
        Depop sends to `redirect_uri`, single-use, good for `CODE_LIFETIME`."""
        if self.oauth_client is None:
            raise ValueError("the simulator has no OAuth client")
        now = self.clock()
        grant = _Grant(self.oauth_client[0], frozenset(scopes), now + REFRESH_TOKEN_LIFETIME)
        code = secrets.token_urlsafe(16)
        with self.lock:
            self._codes[code] = _Code(grant, code_challenge, redirect_uri, now + CODE_LIFETIME)
        return code

    def authorize(self, url: str) -> Response:
        """The authorize page (RFC 6749 4.1.1-4.1.2, RFC 7636 4.3): an unknown client or an
        unregistered redirect_uri is refused here (never redirected to); any other problem,
        the seller's refusal, or the code goes back to the redirect_uri with the state."""
        params = dict(parse_qsl(urlsplit(url).query))
        client = self.oauth_client
        if client is None or params.get("client_id") != client[0]:
            return _authorize_refusal("invalid_client", "unknown client_id")
        redirect_uri = params.get("redirect_uri", "")
        registered = (
            redirect_uri.startswith(("http://", "https://"))
            if self.redirect_uris is None
            else redirect_uri in self.redirect_uris
        )
        if not registered:
            return _authorize_refusal(
                "invalid_request", "redirect_uri is not registered for this client"
            )
        answer = {"state": params["state"]} if params.get("state") else {}
        problems = AUTHORIZE.request_problems("GET", url, {}, None)
        if params.get("response_type") != "code":
            error = "unsupported_response_type"
        elif problems:
            error = "invalid_request"
        elif not self.seller_approves:
            error, problems = "access_denied", ["the seller declined the app"]
        else:
            code = self.authorization_code(
                params["code_challenge"], redirect_uri, params["scope"].split(" ")
            )
            return RedirectResponse(_with_query(redirect_uri, {"code": code, **answer}), 302)
        description = "; ".join(problems) or "response_type must be code"
        query = {"error": error, "error_description": description, **answer}
        return RedirectResponse(_with_query(redirect_uri, query), 302)

    def grants(self) -> list[dict[str, Any]]:
        """Every grant sellers gave the client: its id, scopes, and whether it was revoked."""
        with self.lock:
            return [
                {"id": g.id, "scopes": sorted(g.scopes), "revoked": g.revoked}
                for g in self._grants.values()
            ]

    def revoke(self, refresh_token: str) -> None:
        """The seller disconnects the app: the grant that issued `refresh_token` (current or
        spent) ends, with every refresh and access token it issued."""
        with self.lock:
            grant = self._refresh_tokens.get(refresh_token) or self._spent_refresh_tokens.get(
                refresh_token
            )
        if grant is not None:
            self.revoke_grant(grant.id)

    def revoke_grant(self, grant_id: str) -> None:
        """End one grant: its refresh tokens answer invalid_grant, its access tokens 401."""
        with self.lock:
            grant = self._grants.get(grant_id)
            if grant is None:
                raise KeyError(grant_id)
            grant.revoked = True
            self._refresh_tokens = {
                t: g for t, g in self._refresh_tokens.items() if g.id != grant_id
            }
            self._access_tokens = {
                t: v for t, v in self._access_tokens.items() if v[0].id != grant_id
            }

    def exchange_token(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The token endpoint: a new access and refresh token for a code or a refresh token.
        A refresh token is spent by its use; the new one keeps the grant's expiry."""
        client = self.oauth_client
        if client is None or form.get("client_id") != client[0]:
            raise OAuthError(401, "invalid_client", "unknown client")
        if not secrets.compare_digest(form.get("client_secret", ""), client[1]):
            raise OAuthError(401, "client secret does not match", "Depop OAuth2 error")
        now = self.clock()
        with self.lock:
            if form["grant_type"] == "refresh_token":
                presented = form.get("refresh_token", "")
                grant = self._refresh_tokens.pop(presented, None)
                if grant is None or grant.expires_at <= now:
                    spent = presented in self._spent_refresh_tokens
                    raise OAuthError(
                        400,
                        "invalid_grant",
                        "The refresh token was already used"
                        if spent
                        else "The refresh token is invalid, expired, revoked, or does not "
                        "belong to the client",
                    )
                self._spent_refresh_tokens[presented] = grant
            else:
                grant = self._redeem_code(form, now)
                self._grants[grant.id] = grant
            access = f"pat_{secrets.token_hex(20)}"
            refresh = f"prt_{secrets.token_hex(20)}"
            self._access_tokens[access] = (grant, now + timedelta(seconds=ACCESS_TOKEN_SECONDS))
            self._refresh_tokens[refresh] = grant
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "token_type": "Bearer",
        }

    def _redeem_code(self, form: Mapping[str, str], now: datetime) -> _Grant:
        # Popped first: a code is spent by any attempt, as RFC 6749 4.1.2 asks.
        code = self._codes.pop(form.get("code", ""), None)
        if code is None or code.expires_at <= now or code.grant.client_id != form["client_id"]:
            raise OAuthError(400, "invalid_grant", "The provided authorization grant is invalid")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError(
                400,
                "invalid_grant",
                "The provided authorization grant does not match the redirection URI used in "
                "the authorization request",
            )
        verifier = form.get("code_verifier", "")
        if not re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier):
            raise OAuthError(400, "invalid_request", "code_verifier is required (PKCE)")
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code.challenge:
            raise OAuthError(400, "invalid_request", "PKCE verification failed")
        return code.grant

    def _list_orders(self, params: Mapping[str, str]) -> bytes:
        """A page of `GET /api/v1/orders/`, encoded: a page is 200 orders, and FastAPI's
        generic encoding of them cost more than finding them."""
        try:
            limit = int(params.get("limit", "20"))
        except ValueError:
            raise _bad_request("limit must be an integer") from None
        if not 1 <= limit <= 200:
            raise _bad_request("limit must be between 1 and 200")
        bounds: dict[str, datetime] = {}
        for name in ("from", "to"):
            if name in params:
                try:
                    moment = datetime.fromisoformat(params[name].replace("Z", "+00:00"))
                except ValueError:
                    raise _bad_request(f"{name} is not an ISO 8601 date") from None
                bounds[name] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        cursor = params.get("cursor")
        try:
            before = int(cursor) if cursor is not None else None
        except ValueError:
            raise _bad_request("cursor is not one this API gave") from None
        with self.lock:
            # Newest first; the cursor is the last purchase id of the previous page. Only the
            # orders below the cursor are read, and only until one past the page is found (it
            # says whether there is more): a page costs the sort, not a pass over every order.
            newest_first = sorted(self.orders, key=int, reverse=True)
            start = 0
            if before is not None:
                start = bisect_right(
                    newest_first, -before, key=lambda purchase_id: -int(purchase_id)
                )
            matching: list[dict[str, Any]] = []
            for purchase_id in islice(newest_first, start, None):
                order = self.orders[purchase_id]
                created = datetime.fromisoformat(order["created_at"].replace("Z", "+00:00"))
                if "from" in bounds and created < bounds["from"]:
                    continue
                if "to" in bounds and created >= bounds["to"]:
                    continue
                matching.append(order)
                if len(matching) > limit:
                    break
            page = matching[:limit]
            has_more = len(matching) > limit
            # Encoded under the lock: the answer is a copy, as the real API's would be.
            return json.dumps(
                {
                    # Depop's cursor is a string when there is one; without one it is left out.
                    "meta": {"has_more": has_more}
                    | ({"cursor": page[-1]["purchase_id"]} if page else {})
                    | ({} if page or cursor is None else {"cursor": cursor}),
                    "data": page,
                },
                ensure_ascii=False,
                allow_nan=False,
                separators=(",", ":"),
            ).encode()

    def _routes(self, app: FastAPI) -> None:
        @app.exception_handler(DepopError)
        async def _depop_error(request: Request, exc: DepopError) -> JSONResponse:
            return JSONResponse(exc.body(), status_code=exc.status)

        @app.exception_handler(RequestValidationError)
        async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
            return JSONResponse(_bad_request("invalid request").body(), status_code=400)

        @app.exception_handler(StarletteHTTPException)
        async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
            error = DepopError(exc.status_code, [("not_found", str(exc.detail))])
            return JSONResponse(error.body(), status_code=exc.status_code)

        products = "/api/v1/products/by-sku/{sku}/"

        @app.put(products)
        def put_product(sku: str, request: Request, body: JsonBody) -> dict[str, Any]:
            self._authorize(request, "products_write")
            product = self.put_product(sku, body)
            return {"product_id": product["product_id"], "slug": product["slug"], "sku": sku}

        @app.patch(products)
        def patch_product(sku: str, request: Request, body: JsonBody) -> Response:
            self._authorize(request, "products_write")
            errors: list[tuple[str, str]] = []
            unknown = sorted(set(body) - set(_PATCHABLE))
            errors.extend(("bad-request", f"{name} cannot be patched") for name in unknown)
            for name in _PATCHABLE[:-1]:
                _amount(body.get(name), name, errors)
            quantity = body.get("quantity")
            if "quantity" in body and (not isinstance(quantity, int) or quantity < 1):
                errors.append(
                    ("bad-request", "quantity must be at least 1; use mark-as-sold for 0")
                )
            with self.lock:
                product = self._product(sku)
                if product["status"] != PRODUCT_ON_SALE:
                    errors.append(
                        (
                            "bad-request",
                            f"Product (sku: {sku}) is not on sale; PUT it again to restock",
                        )
                    )
                if errors:
                    raise DepopError(400, errors)
                product.update(body)
                product["current_price"] = product.get("discount_price") or product["price_amount"]
                product["updated_at"] = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
            return Response(status_code=200)  # "Successful operation, no content returned"

        @app.get(products)
        def get_product(sku: str, request: Request) -> dict[str, Any]:
            self._authorize(request, "products_read")
            with self.lock:
                return dict(self._product(sku))

        @app.delete(products)
        def delete_product(sku: str, request: Request) -> Response:
            self._authorize(request, "products_write")
            with self.lock:
                product = self.products.get(sku)
                if product is not None:
                    product["status"] = "STATUS_DELETED"
            return Response(status_code=200)

        @app.post(products + "mark-as-sold/")
        def mark_as_sold(sku: str, request: Request) -> Response:
            self._authorize(request, "products_write")
            with self.lock:
                product = self._product(sku)
                # Depop: a product not in a selling state stays as it is, and the call succeeds.
                if product["status"] == PRODUCT_ON_SALE:
                    product["status"] = "STATUS_MARKED_AS_SOLD"
                    product["quantity"] = 0
            return Response(status_code=200)

        @app.post(products + "purchase/")
        def purchase(sku: str, request: Request) -> Response:
            # Staging only: the order's id reaches the seller by its webhook, not in the answer.
            self._authorize(request, "products_write")
            self.purchase(sku)
            return Response(status_code=200)

        @app.get("/api/v1/shop/")
        def shop(request: Request) -> dict[str, Any]:
            self._authorize(request, "shop_read")
            return {
                "id": self.seller_id,
                "username": f"shop-{self.seller_id}",
                "country_code": "GB",
            }

        @app.get("/api/v1/orders/")
        def list_orders(request: Request) -> Response:
            self._authorize(request, "orders_read")
            body = self._list_orders(dict(request.query_params))
            return Response(body, media_type="application/json")

        @app.get("/api/v1/orders/{purchase_id}/")
        def get_order(purchase_id: str, request: Request) -> dict[str, Any]:
            self._authorize(request, "orders_read")
            with self.lock:
                order: dict[str, Any] = json.loads(json.dumps(self._order(purchase_id)))
            return order

        @app.post("/api/v1/orders/{purchase_id}/parcels/{parcel_id}/mark-as-shipped/")
        def mark_as_shipped(
            purchase_id: str, parcel_id: str, request: Request, body: JsonBody
        ) -> Response:
            self._authorize(request, "orders_write")
            self.mark_parcel_shipped(
                purchase_id, parcel_id, body.get("tracking_number"), body.get("carrier")
            )
            return Response(status_code=200)

        @app.post("/api/v1/orders/{purchase_id}/refund/")
        def refund(purchase_id: str, request: Request, body: JsonBody) -> Response:
            self._authorize(request, "orders_write")
            self.refund(
                purchase_id,
                body.get("items_refund_amount"),
                body.get("shipping_refund_amount"),
                send_buyer_message=body.get("send_buyer_message"),
            )
            return Response(status_code=200)

        @app.post(TOKEN_PATH)
        async def access_token(request: Request) -> Response:
            # A form post; the last value of a repeated field wins, as in most form parsers.
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
            if self.token_latency:
                await asyncio.sleep(self.token_latency)
            try:
                return JSONResponse(self.exchange_token(form))
            except OAuthError as exc:
                return exc.response()

        @app.get("/status")
        def status() -> dict[str, str]:
            return {"status": "OK"}

        @app.get(AUTHORIZE_PATH)
        def authorize(request: Request) -> Response:
            # The raw query, as sent: the contract judges what the client built.
            return self.authorize(str(request.url))

    def place_order(self, sku: str, quantity: int = 1) -> str:
        """A buyer buys `sku` (listed first when it is not on sale): Depop sells one unit of a
        listing per purchase, so `quantity` purchases are made; the last one's id."""
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        purchase_id = ""
        for _ in range(quantity):
            self.add_product(sku, quantity=1)
            purchase_id = self.purchase(sku)
        return purchase_id

    def _control_routes(self, app: FastAPI) -> None:
        """Demo handles under `/_sim`, registered before the base mounts its own sub-app there."""

        @app.post("/_sim/products/{sku}")
        def sim_add_product(sku: str, price: str = "25.99", quantity: int = 1) -> dict[str, Any]:
            product = self.add_product(sku, price=price, quantity=quantity)
            return {"sku": sku, "product_id": product["product_id"]}

        @app.post("/_sim/purchase")
        def sim_purchase(body: JsonBody) -> dict[str, str]:
            skus = body.get("skus") or [body.get("sku")]
            if not all(isinstance(s, str) for s in skus):
                raise _bad_request("give sku or skus")
            return {"purchase_id": self.purchase(*skus, buyer=body.get("buyer"))}

        @app.post("/_sim/orders/{purchase_id}/refund")
        def sim_refund(purchase_id: str, body: JsonBody) -> dict[str, str]:
            self.refund(
                purchase_id,
                body.get("items_refund_amount"),
                body.get("shipping_refund_amount"),
                refunded_by=body.get("refunded_by", "PARTNER"),
            )
            return {"status": self.orders[purchase_id]["status"]}

        @app.post("/_sim/orders/{purchase_id}/cancel")
        def sim_cancel(purchase_id: str) -> dict[str, str]:
            self.cancel(purchase_id)
            return {"status": "CANCELLED"}

        @app.post("/_sim/products/{sku}/like")
        def sim_like(sku: str, unlike: bool = False) -> dict[str, str]:
            return {"event_id": self.like(sku, unlike=unlike)}

        @app.get("/_sim/shipped-parcels")
        def sim_shipped_parcels() -> dict[str, dict[str, dict[str, str]]]:
            """Tracking recorded per purchase and parcel: what reached Depop, once each."""
            with self.lock:
                return json.loads(json.dumps(self.shipped_parcels))  # type: ignore[no-any-return]

        @app.post("/_sim/oauth/seller")
        def sim_oauth_seller(approve: bool = True) -> dict[str, bool]:
            """What the seller does on the authorize page from now on: approve or decline."""
            self.seller_approves = approve
            return {"approve": approve}

        @app.get("/_sim/oauth/grants")
        def sim_oauth_grants() -> list[dict[str, Any]]:
            return self.grants()

        @app.post("/_sim/oauth/grants/{grant_id}/revoke")
        def sim_oauth_revoke(grant_id: str) -> Response:
            try:
                self.revoke_grant(grant_id)
            except KeyError:
                return JSONResponse({"error": "grant_not_found"}, status_code=404)
            return JSONResponse({"id": grant_id, "revoked": True})

        @app.post("/_sim/events/{event_id}/redeliver")
        def sim_redeliver(event_id: str) -> dict[str, int | None]:
            return {"status": self.redeliver(event_id)}
