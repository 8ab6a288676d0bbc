"""Depop's wire models and every mapping between them and the canonical DTOs.

Depop sends money as decimal strings; bodies are parsed with `parse_float=Decimal` anyway, so a
number that slips in as JSON is never rounded through a float.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from connectors.base import (
    Address,
    ChannelEvent,
    ChannelOrder,
    ChannelOrderLine,
    ChannelOrderStatus,
    EventKind,
    MalformedPayload,
    OrderLineView,
    OrderView,
    ShipmentView,
    WebhookIdentity,
)

CHANNEL = "depop"

M = TypeVar("M", bound=BaseModel)

ORDER_NEW = "v1:order.new"
ORDER_REFUND = "v1:order.refund"
PRODUCT_LIKE = "v1:product.like"
PRODUCT_UNLIKE = "v1:product.unlike"

# Every order status the Seller API documents; anything else is UNSUPPORTED, never guessed.
ORDER_STATUS: dict[str, ChannelOrderStatus] = {
    "SHIPPING_PENDING": ChannelOrderStatus.OPEN,
    "SHIPPED": ChannelOrderStatus.SHIPPED,
    "COMPLETED": ChannelOrderStatus.SHIPPED,
    "REFUNDED": ChannelOrderStatus.CANCELLED,
    "CANCELLED": ChannelOrderStatus.CANCELLED,
}

# Statuses in which Depop already holds tracking for the order's parcels.
SHIPPED_STATUSES = frozenset({"SHIPPED", "COMPLETED"})


def order_status(raw: str) -> ChannelOrderStatus:
    """The canonical status of a Depop order status; unknown ones are UNSUPPORTED."""
    return ORDER_STATUS.get(raw, ChannelOrderStatus.UNSUPPORTED)


# ---------------------------------------------------------------------------------------------
# Wire models
# ---------------------------------------------------------------------------------------------


class _Wire(BaseModel):
    """Depop adds fields over time; unknown ones are kept rather than rejected. An amount that
    is no number ("NaN", "Infinity") is read as sent, so the order is kept and the hub flags
    its money instead of losing the whole event as unreadable."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=True)


class DepopShippingAddress(_Wire):
    """The buyer's address on an order read from the Orders endpoints. Depop requires only
    city, postal code and country; name and street may be absent."""

    city: str
    country_code: str
    postal_code: str | None = None
    name: str | None = None
    address: str | None = None
    address2: str | None = None
    state: str | None = None
    phone_number: str | None = None


class DepopWebhookAddress(_Wire):
    """The buyer's address in a `v1:order.new` webhook, where Depop spells the country
    `country`. `country_code` is read too, so the reader keeps working if Depop aligns the
    webhook with its Orders endpoint."""

    city: str
    country: str = Field(validation_alias=AliasChoices("country", "country_code"))
    postal_code: str | None = None
    name: str | None = None
    address: str | None = None
    address2: str | None = None
    state: str | None = None
    phone_number: str | None = None


class DepopLineItem(_Wire):
    purchase_item_id: int
    sku: str | None = None
    product_id: int
    sold_price: Decimal
    parcel_id: str | None = None
    slug: str | None = None
    description: str | None = None
    original_price: Decimal | None = None
    sold_via_offers: bool | None = None
    image_url: str | None = None


class DepopFee(_Wire):
    fee_type: str
    amount: Decimal
    currency: str


class DepopRefundBreakdown(_Wire):
    refunded_to_buyer: dict[str, Decimal] = {}
    refunded_to_seller: dict[str, Decimal] = {}


class DepopRefundSummary(_Wire):
    buyer_refund_amount: Decimal
    refund_date: AwareDatetime
    refunded_by: str
    breakdown: DepopRefundBreakdown
    # Deprecated by Depop ("returns incorrect values"): read so it parses, never relied upon.
    seller_refund_amount: Decimal | None = None


class DepopOrder(_Wire):
    seller_id: int
    purchase_id: str
    status: str
    currency: str
    buyer_pays_amount: Decimal
    seller_receives_amount: Decimal
    buyer_shipping_price: Decimal
    buyer_address: DepopShippingAddress
    line_items: list[DepopLineItem]
    seller_fee_breakdown: list[DepopFee]
    created_at: AwareDatetime
    buyer_tax_amount: Decimal | None = None
    depop_shipping: dict[str, Any] | None = None
    refund_summary: DepopRefundSummary | None = None


class DepopOrderWebhook(_Wire):
    """The order a `v1:order.new` webhook carries. Depop's OpenAPI describes it as the Orders
    endpoint's order with the total fee (`fee_amount`) instead of its breakdown, without
    `created_at` or tax, and the country as `country`; its older guide showed the Orders shape.
    Both are read: the fields only one of them has are optional here."""

    seller_id: int
    purchase_id: str
    status: str
    currency: str
    buyer_pays_amount: Decimal
    seller_receives_amount: Decimal
    buyer_shipping_price: Decimal
    buyer_address: DepopWebhookAddress
    line_items: list[DepopLineItem]
    fee_amount: Decimal | None = None
    seller_fee_breakdown: list[DepopFee] = []
    created_at: AwareDatetime | None = None
    buyer_tax_amount: Decimal | None = None
    depop_shipping: dict[str, Any] | None = None


class DepopOrdersMeta(_Wire):
    cursor: str | None = None
    has_more: bool = False


class DepopOrdersPage(_Wire):
    meta: DepopOrdersMeta
    data: list[DepopOrder]


class DepopRefundedOrder(_Wire):
    purchase_id: str
    refunded_by: str


class DepopProductLike(_Wire):
    product_id: int
    seller_id: int | None = None
    sku: str | None = None
    slug: str | None = None
    liker_id: int | None = None


class DepopEnvelope(_Wire):
    id: str
    event_type: str
    created_at: AwareDatetime
    data: dict[str, Any]


class DepopErrorItem(_Wire):
    code: str
    message: str = ""


class DepopErrorBody(_Wire):
    id: str | None = None
    errors: list[DepopErrorItem] = []


class DepopTokenResponse(_Wire):
    """`OAuthTokenResponse`: a new access token and the refresh token that replaces the one
    just spent."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str | None = None


class DepopOAuthError(_Wire):
    """`OAuthErrorResponse`; `error_description` and `error_message` are its legacy twins."""

    error: str
    code: int | None = None
    message: str | None = None
    detail: str | None = None
    error_description: str | None = None

    @property
    def explanation(self) -> str:
        return self.detail or self.error_description or self.message or ""


def parse_oauth_error(body: bytes) -> DepopOAuthError | None:
    try:
        return DepopOAuthError.model_validate(loads(body))
    except (ValueError, UnicodeDecodeError, ValidationError):
        return None


class DepopProduct(_Wire):
    """The fields of a product read by SKU that the connector uses; the rest ride along."""

    product_id: int
    slug: str
    status: str
    quantity: int
    sku: str | None = None


# Product statuses: on sale (PATCH works), sold (restock with PUT), gone for good.
PRODUCT_ON_SALE = "STATUS_ONSALE"
PRODUCT_RESTOCKABLE = frozenset({"STATUS_PURCHASED", "STATUS_MARKED_AS_SOLD"})

# Fields of a product read back by GET that a restocking PUT may send again. `brand` comes back
# where PUT wants `brand_name`; `is_boosted` is left out so the current boost state is kept.
_PUT_FIELDS = (
    "address",
    "description",
    "price_currency",
    "price_amount",
    "discount_price",
    "auto_send_offer_price",
    "auto_negotiate_offer_price",
    "international_shipping_cost",
    "department",
    "product_type",
    "size_set_id",
    "size_id",
    "condition",
    "colour",
    "style",
    "age",
    "source",
    "attributes",
)


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def loads(body: bytes | str) -> Any:
    """JSON with every non-integer number as Decimal, so money never passes through a float."""
    return json.loads(body, parse_float=Decimal)


def _validate(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayload(f"{what}: {exc.error_count()} invalid field(s): {exc}") from exc


def parse_order(data: Any) -> DepopOrder:
    """A Depop order from decoded JSON; `MalformedPayload` when it is not one."""
    return _validate(DepopOrder, data, "Depop order")


def parse_orders_page(data: Any) -> DepopOrdersPage:
    return _validate(DepopOrdersPage, data, "Depop orders page")


def parse_product(data: Any) -> DepopProduct:
    return _validate(DepopProduct, data, "Depop product")


def parse_envelope(body: bytes) -> DepopEnvelope:
    """The webhook envelope `{id, event_type, created_at, data}` from the raw body."""
    try:
        decoded = loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedPayload(f"webhook body is not JSON: {exc}") from exc
    return _validate(DepopEnvelope, decoded, "Depop webhook envelope")


def parse_errors(body: bytes) -> DepopErrorBody | None:
    """Depop's error body `{id, errors: [{code, message}]}`, or None when the body is not one."""
    try:
        return DepopErrorBody.model_validate(loads(body))
    except (ValueError, UnicodeDecodeError, ValidationError):
        return None


# ---------------------------------------------------------------------------------------------
# Wire -> canonical
# ---------------------------------------------------------------------------------------------


def _money(value: Decimal) -> str:
    return str(value)


def to_address(address: DepopShippingAddress | DepopWebhookAddress) -> Address:
    country = address.country_code if isinstance(address, DepopShippingAddress) else address.country
    return Address(
        # Depop may leave out the name and the street (only city, postal code and country are
        # required); the canonical address keeps them as empty text for a person to complete.
        name=address.name or "",
        line1=address.address or "",
        line2=address.address2 or None,
        city=address.city,
        postal_code=address.postal_code or None,
        region=address.state or None,
        country_code=country,
        phone=address.phone_number or None,
    )


def to_line(item: DepopLineItem) -> ChannelOrderLine:
    """One Depop line item is one unit: Depop sells each listing unit as its own line."""
    return ChannelOrderLine(
        channel_line_id=str(item.purchase_item_id),
        sku=item.sku,
        quantity=1,
        unit_price=item.sold_price,
        parcel_ref=item.parcel_id,
        attributes={
            "product_id": item.product_id,
            "slug": item.slug,
            "original_price": (
                _money(item.original_price) if item.original_price is not None else None
            ),
        },
    )


def refund_summary_attributes(summary: DepopRefundSummary) -> dict[str, Any]:
    """The refund summary as JSON-ready data, amounts as decimal strings."""
    return {
        "buyer_refund_amount": _money(summary.buyer_refund_amount),
        "refund_date": summary.refund_date.astimezone(UTC).isoformat(),
        "refunded_by": summary.refunded_by,
        "breakdown": {
            "refunded_to_buyer": {
                k: _money(v) for k, v in summary.breakdown.refunded_to_buyer.items()
            },
            "refunded_to_seller": {
                k: _money(v) for k, v in summary.breakdown.refunded_to_seller.items()
            },
        },
    }


def to_channel_order(order: DepopOrder) -> ChannelOrder:
    """The canonical order for a Depop order read from the Orders endpoints."""
    attributes: dict[str, Any] = {
        "seller_id": order.seller_id,
        "seller_receives_amount": _money(order.seller_receives_amount),
        "buyer_shipping_price": _money(order.buyer_shipping_price),
        "buyer_tax_amount": (
            _money(order.buyer_tax_amount) if order.buyer_tax_amount is not None else None
        ),
        "fees": [
            {"fee_type": fee.fee_type, "amount": _money(fee.amount), "currency": fee.currency}
            for fee in order.seller_fee_breakdown
        ],
    }
    if order.depop_shipping is not None:
        attributes["depop_shipping"] = order.depop_shipping
    if order.refund_summary is not None:
        attributes["refund_summary"] = refund_summary_attributes(order.refund_summary)
    return _channel_order(order, order.created_at, attributes)


def webhook_channel_order(order: DepopOrderWebhook, sent_at: datetime) -> ChannelOrder:
    """The canonical order for the order in a `v1:order.new` webhook. Without a creation time
    in it, the envelope's (moments after the purchase) stands in."""
    fees = [
        {"fee_type": fee.fee_type, "amount": _money(fee.amount), "currency": fee.currency}
        for fee in order.seller_fee_breakdown
    ]
    fee_amount = order.fee_amount
    if fee_amount is None and order.seller_fee_breakdown:
        fee_amount = sum((fee.amount for fee in order.seller_fee_breakdown), Decimal(0))
    attributes: dict[str, Any] = {
        "seller_id": order.seller_id,
        "seller_receives_amount": _money(order.seller_receives_amount),
        "buyer_shipping_price": _money(order.buyer_shipping_price),
        "buyer_tax_amount": (
            _money(order.buyer_tax_amount) if order.buyer_tax_amount is not None else None
        ),
        "fee_amount": _money(fee_amount) if fee_amount is not None else None,
    }
    if fees:
        attributes["fees"] = fees
    if order.depop_shipping is not None:
        attributes["depop_shipping"] = order.depop_shipping
    return _channel_order(order, order.created_at or sent_at, attributes)


def _channel_order(
    order: DepopOrder | DepopOrderWebhook, placed_at: datetime, attributes: dict[str, Any]
) -> ChannelOrder:
    return ChannelOrder(
        channel=CHANNEL,
        channel_order_id=order.purchase_id,
        status=order_status(order.status),
        channel_status=order.status,
        currency=order.currency,
        total_amount=order.buyer_pays_amount,
        placed_at=placed_at.astimezone(UTC),
        shipping_address=to_address(order.buyer_address),
        lines=tuple(to_line(item) for item in order.line_items),
        buyer_email=None,
        attributes=attributes,
    )


def identify(body: bytes) -> WebhookIdentity:
    """The envelope id (Depop's dedupe key) and event type of a webhook body."""
    try:
        decoded = loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedPayload(f"webhook body is not JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise MalformedPayload("webhook body is not a JSON object")
    event_id, event_type = decoded.get("id"), decoded.get("event_type")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedPayload("webhook envelope has no id")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedPayload("webhook envelope has no event_type")
    return WebhookIdentity(external_id=event_id, event_type=event_type)


def to_event(envelope: DepopEnvelope) -> ChannelEvent:
    """The canonical event for a verified webhook envelope."""
    kind = envelope.event_type
    if kind == ORDER_NEW:
        webhook_order = _validate(DepopOrderWebhook, envelope.data, "Depop order webhook")
        order = webhook_channel_order(webhook_order, envelope.created_at)
        return ChannelEvent(
            kind=EventKind.ORDER_PLACED,
            event_type=kind,
            channel_order_id=order.channel_order_id,
            order=order,
        )
    if kind == ORDER_REFUND:
        refund = _validate(DepopRefundedOrder, envelope.data, "Depop refund event")
        # The event says only who refunded; amounts and the new status come from a fetch.
        return ChannelEvent(
            kind=EventKind.ORDER_CHANGED,
            event_type=kind,
            channel_order_id=refund.purchase_id,
            detail={"refunded_by": refund.refunded_by},
            note=f"refunded by {refund.refunded_by}; fetch the order for the amounts",
        )
    if kind in (PRODUCT_LIKE, PRODUCT_UNLIKE):
        like = _validate(DepopProductLike, envelope.data, "Depop product like event")
        return ChannelEvent(
            kind=EventKind.IGNORED,
            event_type=kind,
            note="product likes are engagement data; the hub does not act on them",
            detail={"product_id": like.product_id, "sku": like.sku, "liker_id": like.liker_id},
        )
    return ChannelEvent(
        kind=EventKind.IGNORED,
        event_type=kind,
        note=f"unknown Depop event type {kind!r}",
    )


# ---------------------------------------------------------------------------------------------
# Canonical -> wire
# ---------------------------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """A query-string time for Depop: ISO 8601 in UTC with a `Z`."""
    if moment.tzinfo is None:
        raise ValueError("Depop times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mark_as_shipped_body(tracking_numbers: Sequence[str], carrier: str) -> dict[str, str]:
    """Depop wants several tracking numbers as one string, comma-joined without spaces."""
    return {
        "tracking_number": ",".join(n.strip() for n in tracking_numbers),
        "carrier": carrier,
    }


def refund_body(
    items_refund_amount: Decimal | None,
    shipping_refund_amount: Decimal | None,
    send_buyer_message: str | None,
) -> dict[str, str]:
    body: dict[str, str] = {}
    if items_refund_amount is not None:
        body["items_refund_amount"] = _money(items_refund_amount)
    if shipping_refund_amount is not None:
        body["shipping_refund_amount"] = _money(shipping_refund_amount)
    if send_buyer_message:
        body["send_buyer_message"] = send_buyer_message
    return body


def refund_validation_errors(
    purchase_id: str,
    items_refund_amount: Decimal | None,
    shipping_refund_amount: Decimal | None,
) -> list[str]:
    """The seed's refund checks that need no order data, in Depop's own words."""
    if items_refund_amount is None and shipping_refund_amount is None:
        return [
            f"Refund for purchase id {purchase_id} must have an item amount or a shipping "
            "amount to refund."
        ]
    amounts = [a for a in (items_refund_amount, shipping_refund_amount) if a is not None]
    if any(a < 0 for a in amounts) or sum(amounts, Decimal(0)) <= 0:
        return [f"Refund for purchase id {purchase_id} must have a positive amount to refund."]
    return []


def restock_body(product: Mapping[str, Any], quantity: int) -> dict[str, Any]:
    """A full `PUT` body that relists a sold product, rebuilt from its `GET` representation."""
    body: dict[str, Any] = {k: product[k] for k in _PUT_FIELDS if product.get(k) is not None}
    body["brand_name"] = product.get("brand") or "unbranded"
    body["pictures"] = [{"url": p["url"]} for p in product.get("pictures", []) if "url" in p]
    # Depop takes either its managed shipping or a national cost, never both.
    if product.get("depop_shipping") is not None:
        body["depop_shipping"] = product["depop_shipping"]
    elif product.get("national_shipping_cost") is not None:
        body["national_shipping_cost"] = product["national_shipping_cost"]
    body["quantity"] = quantity
    return body


# ---------------------------------------------------------------------------------------------
# Which parcels a shipment completes
# ---------------------------------------------------------------------------------------------


def _shipped_upto(shipments: Sequence[ShipmentView], end: int) -> dict[str, int]:
    totals: dict[str, int] = {}
    for shipment in shipments[:end]:
        for line in shipment.lines:
            totals[line.channel_line_id] = totals.get(line.channel_line_id, 0) + line.quantity
    return totals


def _parcel_complete(lines: Sequence[OrderLineView], shipped: Mapping[str, int]) -> bool:
    return all(shipped.get(line.channel_line_id, 0) >= line.quantity for line in lines)


def parcels_completed_by(order: OrderView, shipment_id: str) -> list[tuple[str, list[str]]]:
    """Parcels that shipment `shipment_id` makes fully shipped, each with its tracking numbers.

    Counting is done over `order.shipments` up to and including this shipment, so the answer for
    a shipment never changes when later shipments arrive: pushing it again asks the same thing.
    Tracking numbers are those of every shipment so far that carried a line of the parcel.
    """
    index = next((i for i, s in enumerate(order.shipments) if s.shipment_id == shipment_id), None)
    if index is None:
        raise KeyError(shipment_id)
    shipment = order.shipments[index]
    by_line = {line.channel_line_id: line for line in order.lines}
    parcels: dict[str, list[OrderLineView]] = {}
    for line in order.lines:
        if line.parcel_ref is not None:
            parcels.setdefault(line.parcel_ref, []).append(line)
    touched: list[str] = []
    for shipped_line in shipment.lines:
        order_line = by_line.get(shipped_line.channel_line_id)
        if order_line is None:
            raise ValueError(f"shipment line {shipped_line.channel_line_id} is not on the order")
        if order_line.parcel_ref is None:
            raise ValueError(f"line {order_line.channel_line_id} has no Depop parcel id")
        if order_line.parcel_ref not in touched:
            touched.append(order_line.parcel_ref)
    before = _shipped_upto(order.shipments, index)
    after = _shipped_upto(order.shipments, index + 1)
    completed: list[tuple[str, list[str]]] = []
    for parcel in touched:
        lines = parcels[parcel]
        if not _parcel_complete(lines, after) or _parcel_complete(lines, before):
            continue
        ids = {line.channel_line_id for line in lines}
        numbers: list[str] = []
        for earlier in order.shipments[: index + 1]:
            if any(line.channel_line_id in ids for line in earlier.lines):
                numbers.extend(n for n in earlier.tracking_numbers if n not in numbers)
        completed.append((parcel, numbers))
    return completed
