"""ABOUT YOU Seller Center wire models and their mapping to the hub's canonical DTOs.

The wire contract is `../shared/specs/aboutyou-sellers-center-api.yml` (rebuilt from ABOUT YOU's
public reference, each fact tagged doc / doc-example / inferred / unverified / third-party) and
the order delegation webhook page (`seeds/order-delegation-webhook.txt`). Where a fact is not
documented the model below reads it defensively and says so beside the field.

Money. Order costs (`cost_with_tax`, `cost_without_tax`) are integers in the smallest currency
unit (documented: 2499 is EUR 24.99). Item prices are integers in the examples and read the same
way (unverified). An amount is accepted as an integer, or defensively as a string or JSON number
without a fractional part; a fractional amount means the unit is not what we think, so it is
refused rather than guessed. Nothing passes through float.

Identity. The order number is the only order identifier ABOUT YOU documents (no `id` field was
seen on an order), so it is the canonical `channel_order_id`; one order item is one unit, so each
becomes one line of quantity 1 keyed by the item id, which ship, cancel and return act on.

Item events. `order_items.shipped|cancelled|returned` carry a shipment object (`items`,
`carrier_key`, `tracking_key`, `return_tracking_key`) and, as documented, no order number: the
hub finds the order by the item ids. An `order_number` there is read when present (undocumented).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, assert_never

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from connectors.base import (
    Address,
    ChannelOrder,
    ChannelOrderLine,
    ChannelOrderStatus,
    MalformedPayload,
)

CHANNEL = "aboutyou"


# ---------------------------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------------------------


def loads(raw: bytes | str) -> Any:
    """JSON with every fractional number as a Decimal, so no amount passes through float."""
    return json.loads(raw, parse_float=Decimal)


def to_minor(value: Any) -> int:
    """An amount in the smallest currency unit: an integer as documented, or defensively a
    decimal string or JSON number that is whole. Anything else is refused, never rounded."""
    if isinstance(value, bool) or isinstance(value, float):
        # A float has already lost the exact figure; refusing it keeps the bug visible.
        raise ValueError(f"an amount must not be a {type(value).__name__}: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except ArithmeticError:
            raise ValueError(f"not an amount: {value!r}") from None
    else:
        raise ValueError(f"not an amount: {value!r}")
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise ValueError(f"an amount in the smallest currency unit must be whole: {value!r}")
    return int(amount)


def to_percent(value: Any) -> Decimal:
    """A VAT rate in percent (documented as an integer, 19 for 19 %), read as a Decimal."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"a rate must not be a {type(value).__name__}: {value!r}")
    if isinstance(value, int | Decimal):
        rate = Decimal(value)
    elif isinstance(value, str):
        try:
            rate = Decimal(value.strip())
        except ArithmeticError:
            raise ValueError(f"not a rate: {value!r}") from None
    else:
        raise ValueError(f"not a rate: {value!r}")
    if not rate.is_finite():
        raise ValueError(f"not a finite rate: {value!r}")
    return rate


# ISO 4217 currencies whose smallest unit is not a hundredth; every other has two decimals.
_MINOR_DIGITS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}


def from_minor(amount: int, currency: str) -> Decimal:
    """The amount in major units: 2499 EUR cents is Decimal("24.99")."""
    return Decimal(amount).scaleb(-_MINOR_DIGITS.get(currency.upper(), 2))


def to_utc(value: Any) -> datetime:
    """A timezone-aware UTC time from ISO 8601 (`Z` accepted); a naive time is taken as UTC,
    since ABOUT YOU documents its timestamps as UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {value!r}") from None
    else:
        raise ValueError(f"not a time: {value!r}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with `Z`, as ABOUT YOU writes its times."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


MinorAmount = Annotated[int, BeforeValidator(to_minor)]
Percent = Annotated[Decimal, BeforeValidator(to_percent)]
UtcTime = Annotated[datetime, BeforeValidator(to_utc)]


# ---------------------------------------------------------------------------------------------
# Exhaustive value maps: every value the spec lists, and an explicit UNSUPPORTED for the rest.
# ---------------------------------------------------------------------------------------------


class OrderStatus(StrEnum):
    """An order's status at ABOUT YOU; `mixed` means its items are in different states."""

    OPEN = "open"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"
    RETURNED = "returned"
    MIXED = "mixed"
    UNSUPPORTED = "unsupported"


ORDER_STATUSES: dict[str, OrderStatus] = {
    "open": OrderStatus.OPEN,
    "shipped": OrderStatus.SHIPPED,
    "cancelled": OrderStatus.CANCELLED,
    "returned": OrderStatus.RETURNED,
    "mixed": OrderStatus.MIXED,
}


class ItemStatus(StrEnum):
    """The status of one order item (one unit) at ABOUT YOU."""

    OPEN = "open"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"
    RETURNED = "returned"
    UNSUPPORTED = "unsupported"


ITEM_STATUSES: dict[str, ItemStatus] = {
    "open": ItemStatus.OPEN,
    "shipped": ItemStatus.SHIPPED,
    "cancelled": ItemStatus.CANCELLED,
    "returned": ItemStatus.RETURNED,
}

# Statuses an item reaches only after it left the warehouse.
SENT = frozenset({ItemStatus.SHIPPED, ItemStatus.RETURNED})


class FulfillmentType(StrEnum):
    """Who ships an ABOUT YOU order; only dropshipping orders are ours to fulfil."""

    DROPSHIPPING = "dropshipping"
    FULFILLMENT_BY_MARKETPLACE = "fulfillment_by_marketplace"
    UNSUPPORTED = "unsupported"


FULFILLMENT_TYPES: dict[str, FulfillmentType] = {
    "dropshipping": FulfillmentType.DROPSHIPPING,
    "fulfillment_by_marketplace": FulfillmentType.FULFILLMENT_BY_MARKETPLACE,
}


class BatchStatus(StrEnum):
    """Where an asynchronous batch stands (RequestStatus in the spec)."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    RETRY = "retry"  # ABOUT YOU will try the batch again itself: ask later, not at once
    FAILED = "failed"
    UNSUPPORTED = "unsupported"


BATCH_STATUSES: dict[str, BatchStatus] = {
    "pending": BatchStatus.PENDING,
    "processing": BatchStatus.PROCESSING,
    "completed": BatchStatus.COMPLETED,
    "retry": BatchStatus.RETRY,
    "failed": BatchStatus.FAILED,
}


class EventType(StrEnum):
    """The webhook events ABOUT YOU documents for order delegation."""

    ORDER_CREATED = "order.created"
    ITEMS_SHIPPED = "order_items.shipped"
    ITEMS_CANCELLED = "order_items.cancelled"
    ITEMS_RETURNED = "order_items.returned"
    UNDOCUMENTED = "undocumented"


EVENT_TYPES: dict[str, EventType] = {
    "order.created": EventType.ORDER_CREATED,
    "order_items.shipped": EventType.ITEMS_SHIPPED,
    "order_items.cancelled": EventType.ITEMS_CANCELLED,
    "order_items.returned": EventType.ITEMS_RETURNED,
}

# Names third-party clients report (order.updated, stock.updated, the deprecated order-level
# events); the public reference does not document them, so their payloads are not read.
REPORTED_UNDOCUMENTED_EVENTS = frozenset(
    {
        "order.updated",
        "order.shipped",
        "order.cancelled",
        "order.returned",
        "stock.updated",
        "product_master.status_updated",
    }
)


def item_status(raw: str | None) -> ItemStatus:
    return ITEM_STATUSES.get(raw or "", ItemStatus.UNSUPPORTED)


def fulfillment_type(raw: str | None) -> FulfillmentType:
    return FULFILLMENT_TYPES.get(raw or "", FulfillmentType.UNSUPPORTED)


def batch_status(raw: str | None) -> BatchStatus:
    return BATCH_STATUSES.get(raw or "", BatchStatus.UNSUPPORTED)


def event_type(raw: str | None) -> EventType:
    return EVENT_TYPES.get(raw or "", EventType.UNDOCUMENTED)


# ---------------------------------------------------------------------------------------------
# Wire models
# ---------------------------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WireOrderItem(_Wire):
    """One unit of an order (`order_items[]`); known from the documented examples only."""

    id: int
    sku: str | None = None
    status: str | None = None
    vat: Percent | None = None  # percent: 19 means 19 %
    # Integers in the examples; read in the smallest unit like the order costs (unverified).
    price_with_tax: MinorAmount
    price_without_tax: MinorAmount | None = None
    # Strings in the examples; null or absent before the item ships (not documented).
    shipment_tracking_key: str | None = None
    return_tracking_key: str | None = None
    custom_data: dict[str, Any] | list[Any] | None = None


class WireOrder(_Wire):
    """An order as `GET /api/v1/orders/` lists it, and the `message` of `order.created`.

    Only `order_items`, `order_number`, `carrier_key`, the costs, `delivery_document_url`,
    `status` and `customer_key` are in the documented schema; the rest is from the examples,
    and the phone numbers from third-party clients (unverified).
    """

    order_number: str
    status: str | None = None
    fulfillment_type: str | None = None
    # In the webhook example though not in the readable schema; an order is unreadable
    # without it, since its amounts mean nothing in an unknown currency.
    currency_code: str
    created_at: UtcTime
    updated_at: UtcTime | None = None
    order_items: list[WireOrderItem]
    cost_with_tax: MinorAmount | None = None
    cost_without_tax: MinorAmount | None = None
    customer_key: str | None = None
    carrier_key: str | None = None
    delivery_document_url: str | None = None
    shop: int | None = None
    payment_method: str | None = None
    custom_data: dict[str, Any] | list[Any] | None = None
    billing_street: str | None = None
    billing_zip_code: str | None = None
    billing_city: str | None = None
    billing_country_code: str | None = None
    billing_recipient_gender: str | None = None
    billing_recipient_first_name: str | None = None
    billing_recipient_last_name: str | None = None
    billing_additional: str | None = None
    billing_phone_number: str | None = None  # third-party only (unverified)
    shipping_street: str | None = None
    shipping_zip_code: str | None = None
    shipping_city: str | None = None
    shipping_country_code: str | None = None
    shipping_additional: str | None = None
    shipping_collection_point_key: str | None = None
    shipping_collection_point_type: str | None = None
    shipping_collection_point_customer_key: str | None = None
    shipping_collection_point_description: str | None = None
    shipping_recipient_gender: str | None = None
    shipping_recipient_first_name: str | None = None
    shipping_recipient_last_name: str | None = None
    shipping_phone_number: str | None = None  # third-party only (unverified)

    def item(self, item_id: int) -> WireOrderItem | None:
        return next((item for item in self.order_items if item.id == item_id), None)


class WebhookEnvelope(_Wire):
    """Every ABOUT YOU webhook: `{id, event, timestamp, subscription_id, message}`.

    `timestamp` is not read: there is no signature whose freshness it could prove, and an odd
    timestamp must not stop an otherwise readable event from being stored.
    """

    id: int | str
    event: str
    subscription_id: int | str | None = None
    message: Any = None


class WireShipmentItem(_Wire):
    """An order item inside an item event; only its id is needed."""

    id: int
    sku: str | None = None
    status: str | None = None
    shipment_tracking_key: str | None = None
    return_tracking_key: str | None = None


class WireShipment(_Wire):
    """The `message` of `order_items.*` events: the items the event is about.

    The documented shape carries no order number; one here is read when present (unverified).
    """

    items: list[WireShipmentItem] = Field(min_length=1)
    carrier_key: str | None = None
    tracking_key: str | None = None
    return_tracking_key: str | None = None
    order_number: str | None = None


class Pagination(_Wire):
    """Only `per_page` is documented; `page` and `pages` are what third-party clients read."""

    per_page: int | None = None
    page: int | None = None
    pages: int | None = None


class OrdersPage(_Wire):
    """`GET /api/v1/orders/`: one page of orders."""

    items: list[WireOrder]
    pagination: Pagination = Pagination()


class BatchAccepted(_Wire):
    """The answer to every batch call: the id to poll its result with."""

    batch_request_id: str = Field(alias="batchRequestId")


class BatchResultItem(_Wire):
    """The outcome of one submitted item, which `requestItem` echoes (match on it, not on
    position)."""

    request_item: dict[str, Any] | None = Field(default=None, alias="requestItem")
    success: bool
    errors: list[str] | None = None

    def describe(self) -> str:
        return "; ".join(self.errors or ()) or "failed without a message"


class BatchResult(_Wire):
    """A polled batch result; `items` is complete once `status` is completed or failed."""

    batch_request_id: str = Field(alias="batchRequestId")
    status: str
    items: list[BatchResultItem] = []

    @property
    def state(self) -> BatchStatus:
        return batch_status(self.status)


class WireError(_Wire):
    """An error answer: `{"message"}` is documented for 400 and 401; a validation answer in
    the `{"detail": [...]}` form of ABOUT YOU's framework is read too (unverified)."""

    message: str | None = None
    detail: Any = None

    def describe(self) -> str:
        if self.message:
            return self.message
        if isinstance(self.detail, str):
            return self.detail
        if isinstance(self.detail, list):
            parts = []
            for entry in self.detail:
                if isinstance(entry, dict):
                    where = ".".join(str(p) for p in entry.get("loc") or ())
                    text = str(entry.get("msg", ""))
                    parts.append(f"{where}: {text}" if where else text)
                else:
                    parts.append(str(entry))
            return "; ".join(parts)
        return ""


# ---------------------------------------------------------------------------------------------
# Mappings
# ---------------------------------------------------------------------------------------------


def order_status(order: WireOrder) -> ChannelOrderStatus:
    """Where the order stands for the hub. `mixed` is decided by its items: any open item
    leaves work to do; otherwise any item sent makes it shipped (a return is not a cancel)."""
    status = ORDER_STATUSES.get(order.status or "", OrderStatus.UNSUPPORTED)
    match status:
        case OrderStatus.OPEN:
            return ChannelOrderStatus.OPEN
        case OrderStatus.SHIPPED | OrderStatus.RETURNED:
            return ChannelOrderStatus.SHIPPED
        case OrderStatus.CANCELLED:
            return ChannelOrderStatus.CANCELLED
        case OrderStatus.MIXED:
            return _mixed(order.order_items)
        case OrderStatus.UNSUPPORTED:
            return ChannelOrderStatus.UNSUPPORTED
        case _:
            assert_never(status)


def _mixed(items: Sequence[WireOrderItem]) -> ChannelOrderStatus:
    statuses = {item_status(item.status) for item in items}
    if not statuses or ItemStatus.UNSUPPORTED in statuses:
        return ChannelOrderStatus.UNSUPPORTED
    if ItemStatus.OPEN in statuses:
        return ChannelOrderStatus.OPEN
    if statuses & SENT:
        return ChannelOrderStatus.SHIPPED
    return ChannelOrderStatus.CANCELLED


def _name(first: str | None, last: str | None) -> str:
    return " ".join(part.strip() for part in (first, last) if part and part.strip())


def shipping_address(order: WireOrder) -> Address | None:
    """The delivery address; None when ABOUT YOU sent no street, city or country."""
    if not (order.shipping_street and order.shipping_city and order.shipping_country_code):
        return None
    return Address(
        name=_name(order.shipping_recipient_first_name, order.shipping_recipient_last_name),
        line1=order.shipping_street,
        line2=order.shipping_additional or None,
        postal_code=order.shipping_zip_code or None,
        city=order.shipping_city,
        country_code=order.shipping_country_code,
        # A collection point (parcel shop, locker) prints its name above the street.
        company=order.shipping_collection_point_description or None,
        phone=order.shipping_phone_number or None,
    )


def _collection_point(order: WireOrder) -> dict[str, str | None] | None:
    point = {
        "key": order.shipping_collection_point_key,
        "type": order.shipping_collection_point_type,
        "customer_key": order.shipping_collection_point_customer_key,
        "description": order.shipping_collection_point_description,
    }
    return point if any(point.values()) else None


def _billing_address(order: WireOrder) -> dict[str, str | None]:
    return {
        "name": _name(order.billing_recipient_first_name, order.billing_recipient_last_name),
        "gender": order.billing_recipient_gender,
        "street": order.billing_street,
        "additional": order.billing_additional,
        "zip_code": order.billing_zip_code,
        "city": order.billing_city,
        "country_code": order.billing_country_code,
        "phone": order.billing_phone_number,
    }


def _text(amount: Decimal | None) -> str | None:
    """A decimal string for attributes, which must stay JSON-serialisable."""
    return None if amount is None else str(amount)


def order_line(item: WireOrderItem, currency: str) -> ChannelOrderLine:
    """One order item as a line of one unit at its price including VAT."""
    net = None if item.price_without_tax is None else from_minor(item.price_without_tax, currency)
    return ChannelOrderLine(
        channel_line_id=str(item.id),
        sku=item.sku,
        quantity=1,
        unit_price=from_minor(item.price_with_tax, currency),
        attributes={
            "price_without_tax": _text(net),
            "vat": _text(item.vat),
            "status": item.status,
        },
    )


def channel_order(order: WireOrder) -> ChannelOrder:
    """The canonical order. The total is `cost_with_tax`, or the items' sum when it is absent."""
    currency = order.currency_code
    total_minor = order.cost_with_tax
    if total_minor is None:
        total_minor = sum(item.price_with_tax for item in order.order_items)
    net = None if order.cost_without_tax is None else from_minor(order.cost_without_tax, currency)
    attributes: dict[str, Any] = {
        "order_number": order.order_number,
        "fulfillment_type": order.fulfillment_type,
        "cost_without_tax": _text(net),
        "customer_key": order.customer_key,
        "payment_method": order.payment_method,
        "shop": order.shop,
        "carrier_key": order.carrier_key,
        "delivery_document_url": order.delivery_document_url,
        "shipping_recipient_gender": order.shipping_recipient_gender,
        "shipping_collection_point": _collection_point(order),
        "billing_address": _billing_address(order),
        "updated_at": order.updated_at.isoformat() if order.updated_at else None,
    }
    return ChannelOrder(
        channel=CHANNEL,
        channel_order_id=order.order_number,
        status=order_status(order),
        channel_status=order.status or "",
        currency=currency,
        total_amount=from_minor(total_minor, currency),
        placed_at=order.created_at,
        shipping_address=shipping_address(order),
        lines=tuple(order_line(item, currency) for item in order.order_items),
        attributes=attributes,
    )


def read_order(data: Any) -> WireOrder:
    """A wire order from decoded JSON; `MalformedPayload` when it does not have the shape."""
    try:
        return WireOrder.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayload(f"not an ABOUT YOU order: {first_error(exc)}") from None


def parse_order(raw: bytes | str) -> ChannelOrder:
    """The canonical order from the raw JSON of one order."""
    try:
        data = loads(raw)
    except ValueError as exc:
        raise MalformedPayload(f"order is not JSON: {exc}") from None
    return channel_order(read_order(data))


def first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


# ---------------------------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------------------------


def ship_item(
    item_ids: Sequence[int], *, carrier_key: str, tracking_key: str, return_key: str
) -> dict[str, Any]:
    """One parcel of `POST /api/v1/orders/ship`; the batch result echoes it as `requestItem`."""
    return {
        "order_items": list(item_ids),
        "carrier_key": carrier_key,
        "shipment_tracking_key": tracking_key,
        "return_tracking_key": return_key,
    }


def ship_body(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """`POST /api/v1/orders/ship`."""
    return {"items": [dict(item) for item in items]}


def cancel_body(item_ids: Sequence[int]) -> dict[str, Any]:
    """`POST /api/v1/orders/cancel` for `item_ids` (ABOUT YOU takes no reason)."""
    return {"items": [{"id": item_id} for item_id in item_ids]}


def return_body(groups: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    """`POST /api/v1/orders/return`: the item ids per return tracking key."""
    return {
        "items": [
            {"order_items": list(ids), "return_tracking_key": key} for key, ids in groups.items()
        ]
    }


def stocks_body(sku: str, quantity: int, valid_at: datetime) -> dict[str, Any]:
    """`PUT /api/v1/products/stocks` for one SKU. `valid_at` lets ABOUT YOU drop an update
    older than one it already applied, so a late retry cannot overwrite a newer figure."""
    return {"items": [{"sku": sku, "quantity": quantity, "valid_at": iso(valid_at)}]}
