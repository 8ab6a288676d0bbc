"""The Depop Seller API over httpx: Bearer auth, the calls the hub makes, and error mapping.

Signing in: the API key, or an OAuth access token renewed before it expires and after a 401
(`connectors.depop.oauth`). Every call first asks the rate limiter for a slot under the limits
Depop documents. Timeouts, transport errors, 429 (honouring `Retry-After`) and 5xx become
`Retriable` in `connectors.http.send`; this module maps Depop's own answers: 400/404/409/422 to
`Permanent` carrying Depop's codes and messages, 401 and 403 `insufficient_scope` to `Permanent`
naming the credential or scope that is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from connectors.base import (
    Capability,
    ChannelOrder,
    FlowNotSupported,
    LeasedTokenStore,
    ListingNotFound,
    MalformedPayload,
    OrderView,
    Permanent,
    Resume,
    WebhookReceiver,
)
from connectors.depop.config import DepopSettings
from connectors.depop.oauth import DepopOAuth
from connectors.depop.transformers import (
    PRODUCT_ON_SALE,
    PRODUCT_RESTOCKABLE,
    SHIPPED_STATUSES,
    DepopOrder,
    DepopOrdersPage,
    DepopProduct,
    format_time,
    loads,
    mark_as_shipped_body,
    parcels_completed_by,
    parse_errors,
    parse_order,
    parse_orders_page,
    parse_product,
    refund_body,
    refund_validation_errors,
    restock_body,
    to_channel_order,
)
from connectors.depop.webhooks import DepopWebhooks
from connectors.http import new_client, send
from connectors.ratelimit import LocalRateLimiter, RateLimit, RateLimiter

MAX_PAGE_SIZE = 200  # Depop's cap on `limit` for `GET /api/v1/orders/`

# Depop's limits, per API key (depop-rate-limits.yml): creating or updating a listing has a
# bucket of its own; every other endpoint shares one.
LIMIT = RateLimit("depop", 100, 1.0)
LISTINGS_LIMIT = RateLimit("depop:listings", 20, 1.0)
# The longest a call waits for a slot; beyond it the job is retried later (leases are minutes).
MAX_WAIT = 5.0

# Failures that cannot mean "Depop already has this parcel marked", so no re-read can excuse them.
_NOT_A_REPEAT = frozenset(
    {"unauthorized", "insufficient_scope", "order_not_found", "parcel_not_found"}
)

_SCOPE = re.compile(r"scope:\s*([a-z_]+)", re.IGNORECASE)

# How Depop words its refusal to mark a parcel twice. Its description documents only a generic
# 400 for mark-as-shipped, so the wording is unverified: matched loosely.
_ALREADY_MARKED = re.compile(r"\balready\b.*\b(marked|shipped)\b", re.IGNORECASE)

# Order statuses after which Depop refunds nothing more: the order's money went back already.
_REFUNDED = frozenset({"REFUNDED", "CANCELLED"})


def _segment(value: str) -> str:
    """A path segment with everything but unreserved characters escaped (SKUs may hold '/')."""
    return quote(value, safe="")


# What Depop answers for a SKU it does not list.
_NOT_LISTED = frozenset({"product_not_found", "not_found", "http_404"})


class DepopClient:
    """One Depop seller account, reached with its API key or as an OAuth app.

    `token_store` keeps the OAuth pair (the hub passes its database's, shared by every
    process); `limiter` spaces calls within Depop's limits (the hub may pass one shared by
    every process).
    """

    def __init__(
        self,
        settings: DepopSettings,
        http: httpx.Client | None = None,
        *,
        limiter: RateLimiter | None = None,
        token_store: LeasedTokenStore | None = None,
        attention: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self._owns_http = http is None
        self.http = http if http is not None else new_client(settings.base_url)
        self.limiter: RateLimiter = limiter if limiter is not None else LocalRateLimiter()
        self.oauth: DepopOAuth | None = None
        if settings.uses_oauth:
            self.oauth = DepopOAuth(
                settings,
                self.http,
                token_store,
                before_call=lambda: self.limiter.acquire(LIMIT, max_wait=MAX_WAIT),
                attention=attention,
            )

    def close(self) -> None:
        """Close the pooled connection when this client built it."""
        if self._owns_http:
            self.http.close()

    # -- transport ------------------------------------------------------------------------------

    def _token(self) -> str:
        if self.oauth is not None:
            return self.oauth.bearer()
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else ""
        if not key:
            raise Permanent("DEPOP_API_KEY is not set", code="unauthorized")
        return key

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        limit: RateLimit = LIMIT,
    ) -> httpx.Response:
        token = self._token()
        response = self._send(method, path, token, json=json, params=params, limit=limit)
        if response.status_code == 401 and self.oauth is not None:
            # An access token can stop working before its hour is up (revoked, or renewed
            # elsewhere); renew once and try again.
            self.oauth.rejected(token)
            token = self._token()
            response = self._send(method, path, token, json=json, params=params, limit=limit)
        if response.is_success:
            return response
        raise self._error(method, path, response)

    def _send(
        self,
        method: str,
        path: str,
        token: str,
        *,
        json: Any,
        params: Mapping[str, Any] | None,
        limit: RateLimit,
    ) -> httpx.Response:
        self.limiter.acquire(limit, max_wait=MAX_WAIT)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        return send(self.http, method, path, json=json, params=params, headers=headers)

    def _error(self, method: str, path: str, response: httpx.Response) -> Permanent:
        """The `Permanent` failure for a 4xx answer, worded so a person knows what to fix."""
        body = parse_errors(response.content)
        items = body.errors if body is not None else []
        codes = [item.code for item in items]
        detail = "; ".join(f"{i.code}: {i.message}" if i.message else i.code for i in items)
        detail = detail or response.text[:200] or response.reason_phrase
        status = response.status_code
        where = f"{method} {path}"
        credential = "the OAuth access token" if self.oauth is not None else "DEPOP_API_KEY"
        if status == 401:
            return Permanent(
                f"Depop rejected {credential} (401 on {where}): {detail}", code="unauthorized"
            )
        if status == 403 and "insufficient_scope" in codes:
            message = next(i.message for i in items if i.code == "insufficient_scope")
            found = _SCOPE.search(message)
            scope = found.group(1) if found else "unknown"
            return Permanent(
                f"{credential} lacks the OAuth scope {scope} needed for {where}: {detail}",
                code="insufficient_scope",
            )
        return Permanent(
            f"Depop answered {status} to {where}: {detail}",
            code=codes[0] if codes else f"http_{status}",
        )

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return loads(response.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayload(f"Depop answered with a body that is not JSON: {exc}") from exc

    # -- orders -------------------------------------------------------------------------------

    def get_order(self, purchase_id: str) -> DepopOrder:
        """`GET /api/v1/orders/{purchase_id}/`."""
        response = self._call("GET", f"/api/v1/orders/{_segment(purchase_id)}/")
        return parse_order(self._json(response))

    def orders_page(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int = MAX_PAGE_SIZE,
    ) -> DepopOrdersPage:
        """One page of `GET /api/v1/orders/`."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        params: dict[str, str | int] = {"limit": limit}
        if since is not None:
            params["from"] = format_time(since)
        if until is not None:
            # Depop's times are whole seconds and `to` is exclusive: rounding `until` down would
            # leave out orders placed in its last second, so round it up.
            ceiling = until + timedelta(microseconds=-until.microsecond % 1_000_000)
            params["to"] = format_time(ceiling)
        if cursor is not None:
            params["cursor"] = cursor
        response = self._call("GET", "/api/v1/orders/", params=params)
        return parse_orders_page(self._json(response))

    def list_orders(
        self, since: datetime, until: datetime, *, limit: int = MAX_PAGE_SIZE
    ) -> Iterator[DepopOrder]:
        """Every order in the window, following `meta.cursor` while `meta.has_more`."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = self.orders_page(since=since, until=until, cursor=cursor, limit=limit)
            yield from page.data
            if not page.meta.has_more or not page.meta.cursor:
                return
            if page.meta.cursor in seen:
                # A cursor that does not move would page forever; stop and let a person look.
                raise Permanent(
                    f"Depop repeated the orders cursor {page.meta.cursor!r}", code="cursor_loop"
                )
            seen.add(page.meta.cursor)
            cursor = page.meta.cursor

    def mark_as_shipped(
        self, purchase_id: str, parcel_id: str, tracking_numbers: Sequence[str], carrier: str
    ) -> None:
        """`POST .../parcels/{parcel_id}/mark-as-shipped/` with every tracking number of it."""
        numbers = [n.strip() for n in tracking_numbers if n.strip()]
        if not numbers:
            raise Permanent(
                f"parcel {parcel_id} of Depop order {purchase_id} has no tracking number",
                code="missing_tracking_number",
            )
        if not carrier.strip():
            raise Permanent(
                f"parcel {parcel_id} of Depop order {purchase_id} has no carrier",
                code="missing_carrier",
            )
        self._call(
            "POST",
            f"/api/v1/orders/{_segment(purchase_id)}/parcels/{_segment(parcel_id)}"
            "/mark-as-shipped/",
            json=mark_as_shipped_body(numbers, carrier.strip()),
        )

    def refund(
        self,
        purchase_id: str,
        *,
        items_refund_amount: Decimal | None = None,
        shipping_refund_amount: Decimal | None = None,
        send_buyer_message: str | None = None,
    ) -> None:
        """`POST /api/v1/orders/{purchase_id}/refund/`; the checks Depop documents run first."""
        problems = refund_validation_errors(
            purchase_id, items_refund_amount, shipping_refund_amount
        )
        if problems:
            raise Permanent("; ".join(f"validation: {p}" for p in problems), code="validation")
        self._call(
            "POST",
            f"/api/v1/orders/{_segment(purchase_id)}/refund/",
            json=refund_body(items_refund_amount, shipping_refund_amount, send_buyer_message),
        )

    # -- products -------------------------------------------------------------------------------

    def _product_path(self, sku: str) -> str:
        return f"/api/v1/products/by-sku/{_segment(sku)}/"

    def get_product_raw(self, sku: str) -> dict[str, Any]:
        """`GET /api/v1/products/by-sku/{sku}/` as Depop sent it."""
        data = self._json(self._call("GET", self._product_path(sku)))
        if not isinstance(data, dict):
            raise MalformedPayload(f"Depop product {sku!r} is not a JSON object")
        return data

    def get_product(self, sku: str) -> DepopProduct:
        return parse_product(self.get_product_raw(sku))

    def mark_as_sold(self, sku: str) -> None:
        """`POST /api/v1/products/by-sku/{sku}/mark-as-sold/` (Depop: safe on a sold product)."""
        self._call("POST", self._product_path(sku) + "mark-as-sold/")

    def patch_quantity(self, sku: str, quantity: int) -> None:
        """`PATCH /api/v1/products/by-sku/{sku}/` with a new quantity (on-sale products only)."""
        if quantity < 1:
            raise ValueError("Depop quantities start at 1; use mark_as_sold for 0")
        self._call("PATCH", self._product_path(sku), json={"quantity": quantity})

    def put_product(self, sku: str, body: Mapping[str, Any]) -> None:
        """`PUT /api/v1/products/by-sku/{sku}/`: create, update or restock a listing."""
        self._call("PUT", self._product_path(sku), json=dict(body), limit=LISTINGS_LIMIT)


class DepopChannel:
    """Depop as a `SalesChannel`: orders arrive paid, tracking goes back per parcel."""

    name = "depop"
    capabilities = frozenset(
        {
            Capability.CANCEL,
            Capability.REFUND,
            Capability.TRACKING_PER_PARCEL,
            Capability.LISTINGS,
        }
    )

    def __init__(
        self,
        settings: DepopSettings,
        http: httpx.Client | None = None,
        *,
        limiter: RateLimiter | None = None,
        token_store: LeasedTokenStore | None = None,
        attention: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.client = DepopClient(
            settings, http, limiter=limiter, token_store=token_store, attention=attention
        )
        self.webhooks: WebhookReceiver = DepopWebhooks(settings)

    def close(self) -> None:
        self.client.close()

    # Depop orders are paid when they arrive; it has no acknowledge, accept or reject call.

    def acknowledge(self, order: OrderView) -> None:
        raise FlowNotSupported("Depop has no acknowledge call: orders arrive paid")

    def accept(self, order: OrderView) -> None:
        raise FlowNotSupported("Depop has no accept call: orders arrive paid")

    def reject(self, order: OrderView, reason: str, *, resume: Resume = None) -> None:
        raise FlowNotSupported("Depop cannot reject a paid order; refund it or flag it instead")

    def cancel(self, order: OrderView, reason: str, *, resume: Resume = None) -> None:
        """Cancel the order's open units: refund the buyer for them at Depop.

        Nothing shipped: a full refund, items and shipping. Some units shipped: their items
        only; shipping is not refunded, and for Depop-managed shipping (`depop_shipping` on
        the order) it may not be, since Depop refunds that shipping only in a full refund.
        Refunds already made count towards the cancellation, so a retry after the refund took
        effect refunds nothing twice. Depop's refusal is `Permanent` with its message.
        """
        purchase_id = order.channel_order_id
        current = self.client.get_order(purchase_id)
        if current.status in _REFUNDED:
            return
        sold = {str(item.purchase_item_id): item.sold_price for item in current.line_items}
        open_lines = [line for line in order.lines if line.shipped_quantity < line.quantity]
        unknown = [line.channel_line_id for line in open_lines if line.channel_line_id not in sold]
        if unknown:
            raise Permanent(
                f"lines {', '.join(unknown)} are not on Depop order {purchase_id}",
                code="unknown_line",
            )
        whole = all(line.shipped_quantity == 0 for line in order.lines)
        refunded_items, refunded_shipping = _refunded_so_far(current)
        open_value = sum((sold[line.channel_line_id] for line in open_lines), Decimal(0))
        items = max(open_value - refunded_items, Decimal(0))
        shipping = Decimal(0)
        if whole:
            shipping = max(current.buyer_shipping_price - refunded_shipping, Decimal(0))
        if items <= 0 and shipping <= 0:
            return
        self.client.refund(
            purchase_id,
            items_refund_amount=items if items > 0 else None,
            shipping_refund_amount=shipping if shipping > 0 else None,
            send_buyer_message=reason or None,
        )

    def push_tracking(self, order: OrderView, shipment_id: str, *, resume: Resume = None) -> None:
        """Mark as shipped every parcel this shipment completes; a repeat is harmless."""
        try:
            parcels = parcels_completed_by(order, shipment_id)
        except KeyError:
            raise Permanent(
                f"shipment {shipment_id} is not on order {order.order_id}", code="unknown_shipment"
            ) from None
        except ValueError as exc:
            raise Permanent(str(exc), code="unroutable_shipment") from exc
        if not parcels:
            return
        shipment = next(s for s in order.shipments if s.shipment_id == shipment_id)
        if not shipment.carrier:
            raise Permanent(
                f"shipment {shipment_id} has no carrier, which Depop requires",
                code="missing_carrier",
            )
        for parcel_id, numbers in parcels:
            try:
                self.client.mark_as_shipped(
                    order.channel_order_id, parcel_id, numbers, shipment.carrier
                )
            except Permanent as exc:
                if exc.code in _NOT_A_REPEAT or not self._already_marked(
                    order.channel_order_id, parcel_id, exc
                ):
                    raise

    def _already_marked(self, purchase_id: str, parcel_id: str, refusal: Permanent) -> bool:
        """Whether Depop refused to mark `parcel_id` because it already holds its tracking
        (a retry of a call that took effect), judged by that parcel, not by the order: an
        order stays SHIPPING_PENDING while any other parcel of it is open."""
        current = self.client.get_order(purchase_id)
        if parcel_id not in {item.parcel_id for item in current.line_items}:
            return False
        if current.status in SHIPPED_STATUSES:
            return True  # every parcel of the order has its tracking
        if current.status != "SHIPPING_PENDING":
            return False  # refunded or cancelled: nothing may ship
        # Depop shows no per-parcel state, so its refusal must name this parcel as marked.
        return _ALREADY_MARKED.search(refusal.reason) is not None

    def fetch_order(self, channel_order_id: str) -> ChannelOrder:
        return to_channel_order(self.client.get_order(channel_order_id))

    def list_orders(self, since: datetime, until: datetime) -> Iterator[ChannelOrder]:
        for order in self.client.list_orders(since, until):
            yield to_channel_order(order)

    def update_listing(self, sku: str, available: int, *, resume: Resume = None) -> None:
        """0: mark as sold. More: PATCH the quantity of a listing on sale, or relist a sold one
        with a full PUT, as Depop asks ("to restock a product, call the PUT endpoint")."""
        if available < 0:
            raise ValueError("available cannot be negative")
        try:
            self._update_listing(sku, available)
        except Permanent as exc:
            if exc.code in _NOT_LISTED:
                raise ListingNotFound(f"Depop lists no product with SKU {sku!r}") from exc
            raise

    def _update_listing(self, sku: str, available: int) -> None:
        if available == 0:
            self.client.mark_as_sold(sku)
            return
        raw = self.client.get_product_raw(sku)
        product = parse_product(raw)
        if product.status == PRODUCT_ON_SALE:
            if product.quantity != available:
                self.client.patch_quantity(sku, available)
            return
        if product.status in PRODUCT_RESTOCKABLE:
            self.client.put_product(sku, restock_body(raw, available))
            return
        raise Permanent(
            f"Depop listing {sku!r} is {product.status} and cannot be restocked",
            code="product_unavailable",
        )

    def refund(
        self,
        channel_order_id: str,
        *,
        items_refund_amount: Decimal | None = None,
        shipping_refund_amount: Decimal | None = None,
        send_buyer_message: str | None = None,
    ) -> None:
        """Refund all or part of an order at Depop (Depop then sends `v1:order.refund`)."""
        self.client.refund(
            channel_order_id,
            items_refund_amount=items_refund_amount,
            shipping_refund_amount=shipping_refund_amount,
            send_buyer_message=send_buyer_message,
        )


def _refunded_so_far(order: DepopOrder) -> tuple[Decimal, Decimal]:
    """Items and shipping already refunded to the buyer, from the order's refund summary."""
    if order.refund_summary is None:
        return Decimal(0), Decimal(0)
    to_buyer = order.refund_summary.breakdown.refunded_to_buyer
    return (
        to_buyer.get("item_refund_amount", Decimal(0)),
        to_buyer.get("shipping_refund_amount", Decimal(0)),
    )
