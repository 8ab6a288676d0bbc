"""ABOUT YOU Seller Center wire models and their mapping to the hub's canonical DTOs.

Money. The seed (seeds/order-delegation-webhook.txt) shows `price_with_tax`, `price_without_tax`,
`cost_with_tax` and `cost_without_tax` as bare JSON numbers next to `currency_code` and a `vat`
of `19`, which is a percentage (19 % German VAT), not a fraction. The amounts are read as MAJOR
currency units (`29.99` is 29.99 EUR, `1` is 1 EUR), for three reasons: the document gives no
cents field or multiplier, ABOUT YOU's platform warns that prices "may be numbers" that must not
pass through float (a concern only for fractional values, which cents never are), and the hub's
own money (Order JSON `"25.99"`) is in major units too. JSON is parsed with
`parse_float=Decimal` and integers are converted with `Decimal(int)`, so no amount ever becomes a
float; a float handed to a money field is refused rather than rounded.

Identity. The order in a webhook's `message` has the shape of `GET /api/v1/orders/{id}`. The
canonical `channel_order_id` is `str(id)` of that order; the seed's example shows no top-level
order `id`, so when it is absent the `order_number` stands in (and `fetch_order` looks such an
order up by number). One order item is one unit at ABOUT YOU, so each becomes one line of
quantity 1 whose `channel_line_id` is `str(item id)`.

Shipping address. `shipping_street` / `shipping_additional` become `line1` / `line2`. A
collection point (parcel shop, Packstation) keeps its description in `Address.company`, the
line a label prints above the street, and all four `shipping_collection_point_*` fields (key,
type, customer_key such as a Postnummer, description) under the order attribute
`shipping_collection_point`. The billing address has no canonical slot and is kept whole under
the attribute `billing_address`.

Item events. The seed documents `order.created` only. `order_items.cancelled`, `.shipped` and
`.returned` use the same envelope `{id, event, timestamp, subscription_id, message}` with
`message = {"order_id", "order_number", "order_items": [items as in the order format]}` listing
only the items the event is about.

Batches. `POST /api/v1/orders/ship`, `POST /api/v1/orders/cancel` and `PUT
/api/v1/products/stocks` answer `{"batch_request_id"}`; the result, polled from
`/api/v1/results/{ship-orders|cancel-orders|stocks}?batch_request_id=`, is `{"batch_request_id",
"status": "pending"|"completed", "items": [{"order_item_id"|"sku", "success", "error_code",
"error_message"}]}`. Errors outside a batch are `{"message", "errors": {"field": ["..."]}}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from connectors.base import (
    Address,
    ChannelOrder,
    ChannelOrderLine,
    ChannelOrderStatus,
    EventKind,
    MalformedPayload,
)

CHANNEL = "aboutyou"


# ---------------------------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------------------------


def loads(raw: bytes | str) -> Any:
    """JSON with every fractional number as a Decimal, so money never passes through float."""
    return json.loads(raw, parse_float=Decimal)


def to_money(value: Any) -> Decimal:
    """An amount in major units from a JSON number (int or Decimal) or a decimal string."""
    if isinstance(value, bool) or isinstance(value, float):
        # A float has already lost the exact amount; refusing it keeps the bug visible.
        raise ValueError(f"money must not be a {type(value).__name__}: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except ArithmeticError:
            raise ValueError(f"not an amount: {value!r}") from None
    else:
        raise ValueError(f"not an amount: {value!r}")
    if not result.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return result


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


Money = Annotated[Decimal, BeforeValidator(to_money)]
UtcTime = Annotated[datetime, BeforeValidator(to_utc)]


def money_text(amount: Decimal | None) -> str | None:
    """A decimal string for attributes, which must stay JSON-serialisable."""
    return None if amount is None else str(amount)


# ---------------------------------------------------------------------------------------------
# Exhaustive value maps. Anything not listed maps to an explicit UNSUPPORTED member.
# ---------------------------------------------------------------------------------------------


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

# A returned order had been shipped: for the hub it is a return, never a cancellation.
ORDER_STATUSES: dict[str, ChannelOrderStatus] = {
    "open": ChannelOrderStatus.OPEN,
    "shipped": ChannelOrderStatus.SHIPPED,
    "returned": ChannelOrderStatus.SHIPPED,
    "cancelled": ChannelOrderStatus.CANCELLED,
}


class FulfillmentType(StrEnum):
    """Who ships an ABOUT YOU order; only dropshipping orders are ours to fulfil."""

    DROPSHIPPING = "dropshipping"
    FULFILLMENT_BY_MARKETPLACE = "fulfillment_by_marketplace"
    UNSUPPORTED = "unsupported"


FULFILLMENT_TYPES: dict[str, FulfillmentType] = {
    "dropshipping": FulfillmentType.DROPSHIPPING,
    "fulfillment_by_marketplace": FulfillmentType.FULFILLMENT_BY_MARKETPLACE,
}


class EventType(StrEnum):
    """The webhook events ABOUT YOU sends for order delegation."""

    ORDER_CREATED = "order.created"
    ITEMS_SHIPPED = "order_items.shipped"
    ITEMS_CANCELLED = "order_items.cancelled"
    ITEMS_RETURNED = "order_items.returned"
    UNSUPPORTED = "unsupported"


EVENT_TYPES: dict[str, EventType] = {
    "order.created": EventType.ORDER_CREATED,
    "order_items.shipped": EventType.ITEMS_SHIPPED,
    "order_items.cancelled": EventType.ITEMS_CANCELLED,
    "order_items.returned": EventType.ITEMS_RETURNED,
}

# What each item event means for the hub; order.created depends on the fulfillment type.
ITEM_EVENT_KINDS: dict[EventType, EventKind] = {
    EventType.ITEMS_CANCELLED: EventKind.LINES_CANCELLED,
    EventType.ITEMS_SHIPPED: EventKind.ORDER_NOTICE,
    EventType.ITEMS_RETURNED: EventKind.ORDER_NOTICE,
}


def item_status(raw: str | None) -> ItemStatus:
    return ITEM_STATUSES.get(raw or "", ItemStatus.UNSUPPORTED)


def order_status(raw: str | None) -> ChannelOrderStatus:
    return ORDER_STATUSES.get(raw or "", ChannelOrderStatus.UNSUPPORTED)


def fulfillment_type(raw: str | None) -> FulfillmentType:
    return FULFILLMENT_TYPES.get(raw or "", FulfillmentType.UNSUPPORTED)


def event_type(raw: str | None) -> EventType:
    return EVENT_TYPES.get(raw or "", EventType.UNSUPPORTED)


# ---------------------------------------------------------------------------------------------
# Wire models
# ---------------------------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WireOrderItem(_Wire):
    """One unit of an order, as `order_items[]` carries it."""

    id: int
    sku: str | None = None
    status: str | None = None
    vat: Money | None = None  # percent: 19 means 19 %
    price_with_tax: Money
    price_without_tax: Money | None = None
    shipment_tracking_key: str | None = None
    return_tracking_key: str | None = None
    custom_data: dict[str, Any] | list[Any] | None = None


class WireOrder(_Wire):
    """An order in the format of `GET /api/v1/orders/{id}` (also a webhook's `message`)."""

    id: int | None = None
    order_number: str
    status: str | None = None
    fulfillment_type: str | None = None
    currency_code: str
    created_at: UtcTime
    updated_at: UtcTime | None = None
    order_items: list[WireOrderItem]
    cost_with_tax: Money | None = None
    cost_without_tax: Money | None = None
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

    @property
    def channel_order_id(self) -> str:
        return order_key(self.id, self.order_number)


class WebhookEnvelope(_Wire):
    """Every ABOUT YOU webhook: `{id, event, timestamp, subscription_id, message}`.

    `timestamp` is not read: a key header has no freshness to check, and an odd timestamp must
    not stop an otherwise readable event from being stored.
    """

    id: int | str
    event: str
    subscription_id: int | str | None = None
    message: Any = None


class WireEventItem(_Wire):
    """An order item named by an item event; only its id is required."""

    id: int
    sku: str | None = None
    status: str | None = None
    shipment_tracking_key: str | None = None
    return_tracking_key: str | None = None


class WireItemEvent(_Wire):
    """The `message` of `order_items.*` events (our design; the seed shows order.created only)."""

    order_id: int | None = None
    order_number: str | None = None
    order_items: list[WireEventItem] = Field(min_length=1)

    @property
    def channel_order_id(self) -> str:
        if self.order_id is None and not self.order_number:
            raise ValueError("an item event names neither order_id nor order_number")
        return order_key(self.order_id, self.order_number or "")


class Pagination(_Wire):
    page: int
    per_page: int
    total: int
    last_page: int


class OrdersPage(_Wire):
    """`GET /api/v1/orders/`: one page of orders, oldest update first."""

    items: list[WireOrder]
    pagination: Pagination


class BatchAccepted(_Wire):
    """The answer to a batch call: the id to poll its result with."""

    batch_request_id: str


class BatchStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    UNSUPPORTED = "unsupported"


BATCH_STATUSES: dict[str, BatchStatus] = {
    "pending": BatchStatus.PENDING,
    "processing": BatchStatus.PENDING,
    "completed": BatchStatus.COMPLETED,
}


class BatchResultItem(_Wire):
    """The outcome for one order item (ship, cancel) or one SKU (stocks) of a batch."""

    order_item_id: int | None = None
    sku: str | None = None
    success: bool
    error_code: str | None = None
    error_message: str | None = None

    @property
    def subject(self) -> str:
        if self.order_item_id is not None:
            return f"order item {self.order_item_id}"
        return f"SKU {self.sku}"


class BatchResult(_Wire):
    """A polled batch result; `items` is complete once `status` is completed."""

    batch_request_id: str
    status: str
    items: list[BatchResultItem] = []

    @property
    def state(self) -> BatchStatus:
        return BATCH_STATUSES.get(self.status, BatchStatus.UNSUPPORTED)


class Carrier(_Wire):
    key: str
    name: str


class CarriersPage(_Wire):
    items: list[Carrier]


class WireError(_Wire):
    """ABOUT YOU's error body outside batches: a sentence plus messages per field."""

    message: str = ""
    errors: dict[str, list[str]] = {}

    def describe(self) -> str:
        details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in self.errors.items())
        return f"{self.message} ({details})" if details else self.message


# ---------------------------------------------------------------------------------------------
# Mappings
# ---------------------------------------------------------------------------------------------


def order_key(order_id: int | None, order_number: str) -> str:
    """The canonical `channel_order_id`: the order id, or the order number when there is none."""
    return str(order_id) if order_id is not None else order_number


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
        company=order.shipping_collection_point_description or None,
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
    }


def order_line(item: WireOrderItem) -> ChannelOrderLine:
    """One order item as a line of one unit at its price including VAT."""
    attributes: dict[str, Any] = {
        "price_without_tax": money_text(item.price_without_tax),
        "vat": money_text(item.vat),
        "status": item.status,
    }
    return ChannelOrderLine(
        channel_line_id=str(item.id),
        sku=item.sku,
        quantity=1,
        unit_price=item.price_with_tax,
        attributes=attributes,
    )


def channel_order(order: WireOrder) -> ChannelOrder:
    """The canonical order. The total is `cost_with_tax`, or the items' sum when it is absent."""
    total = order.cost_with_tax
    if total is None:
        total = sum((item.price_with_tax for item in order.order_items), Decimal(0))
    attributes: dict[str, Any] = {
        "order_id": order.id,
        "order_number": order.order_number,
        "fulfillment_type": order.fulfillment_type,
        "amount_unit": "major",
        "cost_without_tax": money_text(order.cost_without_tax),
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
        channel_order_id=order.channel_order_id,
        status=order_status(order.status),
        channel_status=order.status or "",
        currency=order.currency_code,
        total_amount=total,
        placed_at=order.created_at,
        shipping_address=shipping_address(order),
        lines=tuple(order_line(item) for item in order.order_items),
        attributes=attributes,
    )


def read_order(data: Any) -> WireOrder:
    """A wire order from decoded JSON; `MalformedPayload` when it does not have the shape."""
    try:
        return WireOrder.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayload(f"not an ABOUT YOU order: {_first_error(exc)}") from None


def parse_order(raw: bytes | str) -> ChannelOrder:
    """The canonical order from the raw JSON of one order (`GET /api/v1/orders/{id}`)."""
    try:
        data = loads(raw)
    except ValueError as exc:
        raise MalformedPayload(f"order is not JSON: {exc}") from None
    return channel_order(read_order(data))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


# ---------------------------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------------------------


def ship_body(
    item_ids: Sequence[int], *, carrier_key: str, tracking_key: str, return_key: str
) -> dict[str, Any]:
    """`POST /api/v1/orders/ship` for one parcel holding `item_ids`."""
    return {
        "items": [
            {
                "order_items": list(item_ids),
                "carrier_key": carrier_key,
                "shipment_tracking_key": tracking_key,
                "return_tracking_key": return_key,
            }
        ]
    }


def cancel_body(item_ids: Sequence[int]) -> dict[str, Any]:
    """`POST /api/v1/orders/cancel` for `item_ids`."""
    return {"items": [{"id": item_id} for item_id in item_ids]}


def stocks_body(quantities: Mapping[str, int]) -> dict[str, Any]:
    """`PUT /api/v1/products/stocks` setting each SKU's sellable quantity."""
    return {"items": [{"sku": sku, "quantity": qty} for sku, qty in quantities.items()]}
