"""The Depop Seller API over httpx: Bearer auth, the calls the hub makes, and error mapping.

Timeouts, transport errors, 429 and 5xx become `Retriable` in `connectors.http.send`; this module
maps Depop's own answers: 400/404/409/422 to `Permanent` carrying Depop's codes and messages, 401
and 403 `insufficient_scope` to `Permanent` naming the credential or scope that is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from connectors.base import (
    Capability,
    ChannelOrder,
    FlowNotSupported,
    ListingNotFound,
    MalformedPayload,
    OrderView,
    Permanent,
    Resume,
    WebhookReceiver,
)
from connectors.depop.config import DepopSettings
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

MAX_PAGE_SIZE = 200  # Depop's cap on `limit` for `GET /api/v1/orders/`

# Failures that cannot mean "Depop already has this parcel marked", so no re-read can excuse them.
_NOT_A_REPEAT = frozenset(
    {"unauthorized", "insufficient_scope", "order_not_found", "parcel_not_found"}
)

_SCOPE = re.compile(r"scope:\s*([a-z_]+)", re.IGNORECASE)


def _segment(value: str) -> str:
    """A path segment with everything but unreserved characters escaped (SKUs may hold '/')."""
    return quote(value, safe="")


# What Depop answers for a SKU it does not list.
_NOT_LISTED = frozenset({"product_not_found", "not_found", "http_404"})


class DepopClient:
    """One Depop seller account, reached with its API key."""

    def __init__(self, settings: DepopSettings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self._owns_http = http is None
        self.http = http if http is not None else new_client(settings.base_url)

    def close(self) -> None:
        """Close the pooled connection when this client built it."""
        if self._owns_http:
            self.http.close()

    # -- transport ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else ""
        if not key:
            raise Permanent("DEPOP_API_KEY is not set", code="unauthorized")
        return {"Authorization": f"Bearer {key}", "Accept": "application/json"}

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        response = send(self.http, method, path, json=json, params=params, headers=self._headers())
        if response.is_success:
            return response
        raise self._error(method, path, response)

    def _error(self, method: str, path: str, response: httpx.Response) -> Permanent:
        """The `Permanent` failure for a 4xx answer, worded so a person knows what to fix."""
        body = parse_errors(response.content)
        items = body.errors if body is not None else []
        codes = [item.code for item in items]
        detail = "; ".join(f"{i.code}: {i.message}" if i.message else i.code for i in items)
        detail = detail or response.text[:200] or response.reason_phrase
        status = response.status_code
        where = f"{method} {path}"
        if status == 401:
            return Permanent(
                f"Depop rejected DEPOP_API_KEY (401 on {where}): {detail}", code="unauthorized"
            )
        if status == 403 and "insufficient_scope" in codes:
            message = next(i.message for i in items if i.code == "insufficient_scope")
            found = _SCOPE.search(message)
            scope = found.group(1) if found else "unknown"
            return Permanent(
                f"DEPOP_API_KEY lacks the OAuth scope {scope} needed for {where}: {detail}",
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
        self._call("PUT", self._product_path(sku), json=dict(body))


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

    def __init__(self, settings: DepopSettings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self.client = DepopClient(settings, http)
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
        """A seller's cancellation of a paid Depop order is a full refund to the buyer."""
        self.client.refund(order.channel_order_id, send_buyer_message=reason or None)

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
                if exc.code in _NOT_A_REPEAT or not self._shipped(order.channel_order_id):
                    raise
                # Depop answers a repeat with a 400; the order's status says it already has it.

    def _shipped(self, purchase_id: str) -> bool:
        return self.client.get_order(purchase_id).status in SHIPPED_STATUSES

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
