"""Deliverr's wire format and every mapping between it and the canonical DTOs.

Wire facts (seeds/deliverr-order-fulfillment.txt and ARCHITECTURE.md):

- `POST /orders/v1/order` takes `externalOrderId`, `source`, `sourceOrderId`, `shiptoAddress`,
  `lineItems`, `shipMethod`, `orderCreationTime` and answers the new `orderId`.
- Orders carry one of seven statuses and a list of shipments, one per package. A shipment has no
  id of its own, so `shipment_id_for` derives a stable one (see there).
- Errors are answered as `{"code": "<error type>", "message": "<explanation>"}`, the error types
  being those of the seed's table. That body shape is the one the simulator implements; the
  seed names the codes but not the envelope.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from connectors.base import (
    ConnectorError,
    FulfilmentRequest,
    FulfilmentStatus,
    MalformedPayload,
    Permanent,
    ProviderOrderStatus,
    ProviderShipment,
    ProviderShipmentLine,
    Retriable,
)

# ---------------------------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------------------------


def _as_utc(value: datetime) -> datetime:
    # Deliverr writes `Z` times; a time without an offset is read as UTC rather than local time.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def format_time(value: datetime) -> str:
    """A timezone-aware time as Deliverr writes it: UTC with a `Z` (`2019-08-24T14:15:22Z`)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: the hub's times are timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def load_json(body: bytes | str) -> Any:
    """Parse a Deliverr body; decimals stay `Decimal` so no number is ever rounded by a float."""
    return json.loads(body, parse_float=Decimal)


class _Wire(BaseModel):
    """Base of the wire models: Deliverr may add fields, and we ignore what we do not read."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# ---------------------------------------------------------------------------------------------
# Create order
# ---------------------------------------------------------------------------------------------


class ShiptoAddress(_Wire):
    name: str | None = None
    company: str | None = None
    street1: str | None = None
    street2: str | None = None
    city: str | None = None
    state: str | None = None
    postcode: str | None = None
    countryCode: str | None = None


class LineItem(_Wire):
    externalProductId: str | None = None
    quantity: int = 0
    # Not in the seed's sample body, but Deliverr echoes it on shippedItems: it carries the
    # hub's OrderLine id so a shipment names the exact line it fulfils.
    lineItemId: str | None = None


class CreateOrderRequest(_Wire):
    externalOrderId: str
    source: str | None = None
    sourceOrderId: str | None = None
    shiptoAddress: ShiptoAddress | None = None
    lineItems: list[LineItem] | None = None
    orderDeliveryTime: UtcDatetime | None = None
    shipMethod: str | None = None
    orderShipmentTime: UtcDatetime | None = None
    orderCreationTime: UtcDatetime | None = None


class CreateOrderResponse(_Wire):
    orderId: str


def create_order_body(request: FulfilmentRequest) -> dict[str, Any]:
    """The JSON body of `POST /orders/v1/order` for a hub order; `externalOrderId` is its id."""
    address = request.shipping_address
    wire = CreateOrderRequest(
        externalOrderId=request.order_id,
        source=request.channel,
        sourceOrderId=request.channel_order_id,
        shiptoAddress=ShiptoAddress(
            name=address.name,
            company=address.company,
            street1=address.line1,
            street2=address.line2,
            city=address.city,
            state=address.region,
            postcode=address.postal_code,
            countryCode=address.country_code,
        ),
        lineItems=[
            LineItem(externalProductId=line.sku, quantity=line.quantity, lineItemId=line.line_id)
            for line in request.lines
        ],
        shipMethod=request.ship_method,
    )
    body = wire.model_dump(mode="json", exclude_none=True)
    # Formatted by hand: pydantic would write `+00:00`; Deliverr's documents use `Z`.
    body["orderCreationTime"] = format_time(request.placed_at)
    return body


# ---------------------------------------------------------------------------------------------
# Orders and shipments
# ---------------------------------------------------------------------------------------------


class DeliverrOrderStatus(StrEnum):
    CREATED = "CREATED"
    PROCESSING = "PROCESSING"
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    ERROR = "ERROR"


STATUS_MAP: dict[DeliverrOrderStatus, ProviderOrderStatus] = {
    DeliverrOrderStatus.CREATED: ProviderOrderStatus.PENDING,
    DeliverrOrderStatus.PROCESSING: ProviderOrderStatus.PROCESSING,
    DeliverrOrderStatus.PARTIALLY_SHIPPED: ProviderOrderStatus.PARTIALLY_SHIPPED,
    DeliverrOrderStatus.SHIPPED: ProviderOrderStatus.SHIPPED,
    DeliverrOrderStatus.DELIVERED: ProviderOrderStatus.DELIVERED,
    DeliverrOrderStatus.CANCELLED: ProviderOrderStatus.CANCELLED,
    DeliverrOrderStatus.ERROR: ProviderOrderStatus.ERROR,
}

# Statuses in which at least one package has left the warehouse: cancelling means a return.
SHIPPED_STATUSES = frozenset(
    {
        DeliverrOrderStatus.PARTIALLY_SHIPPED,
        DeliverrOrderStatus.SHIPPED,
        DeliverrOrderStatus.DELIVERED,
    }
)


def map_status(raw: str | None) -> ProviderOrderStatus:
    """The canonical status of a Deliverr status; one we do not know is UNSUPPORTED."""
    if raw is None:
        return ProviderOrderStatus.UNSUPPORTED
    try:
        return STATUS_MAP[DeliverrOrderStatus(raw)]
    except ValueError:
        return ProviderOrderStatus.UNSUPPORTED


class ShippedItem(_Wire):
    externalProductId: str
    productId: str | None = None
    lineItemId: str | None = None
    quantityOrdered: int | None = None
    quantity: int


class Shipment(_Wire):
    trackingNumber: str | None = None
    shippingCarrier: str | None = None
    shippingService: str | None = None
    shippedTime: UtcDatetime | None = None
    trackingUrl: str | None = None
    warehouseId: str | None = None
    status: str | None = None
    shippedItems: list[ShippedItem] = Field(default_factory=list)


class Order(_Wire):
    orderId: str
    externalOrderId: str | None = None
    status: str
    shiptoAddress: ShiptoAddress | None = None
    lineItems: list[LineItem] = Field(default_factory=list)
    shipMethod: str | None = None
    orderCreationTime: UtcDatetime | None = None
    shipments: list[Shipment] = Field(default_factory=list)


def shipment_id_for(order_id: str, shipment: Shipment) -> str:
    """A stable id for a package, which Deliverr does not give.

    Deliverr ships one package per tracking number, so `{orderId}:{trackingNumber}` names the
    same package in every poll and every webhook. A package reported without a tracking number
    is named by a digest of what identifies it (warehouse, shipped time, items), prefixed
    `{orderId}:untracked-`; should Deliverr add the tracking number later, that package gets a
    new id, which the hub sees as a second shipment of the same lines and can reconcile.
    """
    if shipment.trackingNumber:
        return f"{order_id}:{shipment.trackingNumber}"
    items = sorted(
        (item.externalProductId, item.lineItemId or "", item.quantity)
        for item in shipment.shippedItems
    )
    shipped = format_time(shipment.shippedTime) if shipment.shippedTime else ""
    material = json.dumps([shipment.warehouseId or "", shipped, items])
    return f"{order_id}:untracked-{hashlib.sha256(material.encode()).hexdigest()[:16]}"


def to_provider_shipment(order_id: str, shipment: Shipment) -> ProviderShipment:
    """One Deliverr package as a canonical shipment."""
    return ProviderShipment(
        shipment_id=shipment_id_for(order_id, shipment),
        carrier=shipment.shippingCarrier,
        tracking_numbers=(shipment.trackingNumber,) if shipment.trackingNumber else (),
        tracking_url=shipment.trackingUrl,
        shipped_at=shipment.shippedTime,
        service=shipment.shippingService,
        lines=tuple(
            ProviderShipmentLine(
                sku=item.externalProductId, quantity=item.quantity, line_id=item.lineItemId
            )
            for item in shipment.shippedItems
            # An item listed with nothing in this package ships nothing; it is not a line of it.
            if item.quantity > 0
        ),
    )


def to_fulfilment_status(order: Order) -> FulfilmentStatus:
    """A Deliverr order as the canonical fulfilment status, shipments included."""
    return FulfilmentStatus(
        provider_order_id=order.orderId,
        external_order_id=order.externalOrderId,
        status=map_status(order.status),
        raw_status=order.status,
        shipments=tuple(to_provider_shipment(order.orderId, s) for s in order.shipments),
    )


def parse_order(body: bytes | str) -> Order:
    """A `GET /orders/v1/order/...` answer; `MalformedPayload` when it is not one."""
    try:
        return Order.model_validate(load_json(body))
    except (ValueError, ValidationError) as exc:
        raise MalformedPayload(f"unreadable Deliverr order: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------

ORDER_STATUS_UPDATE = "ORDER_STATUS_UPDATE"


class StatusUpdateEvent(_Wire):
    eventId: str
    eventTime: UtcDatetime | None = None
    type: str
    updateType: str | None = None
    oldStatus: str | None = None
    newStatus: str
    orderId: str
    # Not in the documented event, but read when present: it is the hub's own order id.
    externalOrderId: str | None = None
    shipments: list[Shipment] = Field(default_factory=list)


def status_update_to_fulfilment(event: StatusUpdateEvent) -> FulfilmentStatus:
    """The fulfilment status an ORDER_STATUS_UPDATE reports."""
    return FulfilmentStatus(
        provider_order_id=event.orderId,
        external_order_id=event.externalOrderId,
        status=map_status(event.newStatus),
        raw_status=event.newStatus,
        shipments=tuple(to_provider_shipment(event.orderId, s) for s in event.shipments),
    )


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class ErrorBody(_Wire):
    code: str | None = None
    message: str | None = None


class DeliverrErrorCode(StrEnum):
    """Every error type of the seed's Create Order table."""

    ORDER_INVENTORY_DSKU_NEVER_INBOUNDED = "ORDER_INVENTORY_DSKU_NEVER_INBOUNDED"
    PRODUCT_NOT_APPROVED_FOR_SALE = "PRODUCT_NOT_APPROVED_FOR_SALE"
    ORDER_CANNOT_BE_FULFILLED = "ORDER_CANNOT_BE_FULFILLED"
    ORDER_MISSING_LINE_ITEM = "ORDER_MISSING_LINE_ITEM"
    ORDER_MISSING_SHIPPING_ADDRESS = "ORDER_MISSING_SHIPPING_ADDRESS"
    ORDER_MISSING_ADDRESS_LINE = "ORDER_MISSING_ADDRESS_LINE"
    ORDER_MISSING_CITY = "ORDER_MISSING_CITY"
    ORDER_MISSING_STATE_ZIP = "ORDER_MISSING_STATE_ZIP"
    ORDER_INVALID_COUNTRY_CODE = "ORDER_INVALID_COUNTRY_CODE"
    ORDER_PRODUCT_MISSING_CUSTOMS = "ORDER_PRODUCT_MISSING_CUSTOMS"
    ORDER_PREVIOUSLY_SEEN_ERROR = "ORDER_PREVIOUSLY_SEEN_ERROR"
    ORDER_SUBMITTED_TOO_EARLY = "ORDER_SUBMITTED_TOO_EARLY"
    PRODUCT_NOT_AVAILABLE = "PRODUCT_NOT_AVAILABLE"


class Outcome(StrEnum):
    RETRY = "retry"  # the same request may succeed later
    ATTENTION = "attention"  # a person must fix the order or the product first


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """What an error type means for the hub: its outcome and the seed's explanation."""

    outcome: Outcome
    explanation: str
    retry_after: float | None = None


# ORDER_PREVIOUSLY_SEEN_ERROR: the seed says to wait at least an hour before creating the order
# again, so it is retried with an hour's hint; if the cause persists the retry reports it.
PREVIOUSLY_SEEN_WAIT_SECONDS = 3600.0

ERROR_RULES: dict[DeliverrErrorCode, ErrorRule] = {
    DeliverrErrorCode.ORDER_INVENTORY_DSKU_NEVER_INBOUNDED: ErrorRule(
        Outcome.ATTENTION,
        "The product associated has never been inbounded. Please create an inbound shipment for "
        "the product, before submitting orders against it.",
    ),
    DeliverrErrorCode.PRODUCT_NOT_APPROVED_FOR_SALE: ErrorRule(
        Outcome.ATTENTION,
        "The product is not approved for sale. Please correct the product definition and ensure "
        "it has all the required fields such as dimensions or verification of hazardous material.",
    ),
    DeliverrErrorCode.ORDER_CANNOT_BE_FULFILLED: ErrorRule(
        Outcome.ATTENTION,
        "Missing lineItems object representing the products to fulfill. Please update the order "
        "definition.",
    ),
    DeliverrErrorCode.ORDER_MISSING_LINE_ITEM: ErrorRule(
        Outcome.ATTENTION,
        "Missing externalproductID for one of the lineItems objects. Please update the order "
        "definition.",
    ),
    DeliverrErrorCode.ORDER_MISSING_SHIPPING_ADDRESS: ErrorRule(
        Outcome.ATTENTION,
        "Missing shiptoAddress object. Please update the order definition.",
    ),
    DeliverrErrorCode.ORDER_MISSING_ADDRESS_LINE: ErrorRule(
        Outcome.ATTENTION,
        "Missing street1 address field. Please update the order definition.",
    ),
    DeliverrErrorCode.ORDER_MISSING_CITY: ErrorRule(
        Outcome.ATTENTION,
        "Missing city field. Please update the order definition.",
    ),
    DeliverrErrorCode.ORDER_MISSING_STATE_ZIP: ErrorRule(
        Outcome.ATTENTION,
        "Missing state or zip fields; both are required for domestic orders. Please update the "
        "order definition.",
    ),
    DeliverrErrorCode.ORDER_INVALID_COUNTRY_CODE: ErrorRule(
        Outcome.ATTENTION,
        "The countryCode field is invalid. Please update the order definition with a valid "
        "country code.",
    ),
    DeliverrErrorCode.ORDER_PRODUCT_MISSING_CUSTOMS: ErrorRule(
        Outcome.ATTENTION,
        "Product does not have the minimum customs information required. Please update product "
        "definition.",
    ),
    DeliverrErrorCode.ORDER_PREVIOUSLY_SEEN_ERROR: ErrorRule(
        Outcome.RETRY,
        "This order was already created in the last hour and it failed with an error. Please "
        "wait at least one hour before re-creating orders with errors.",
        retry_after=PREVIOUSLY_SEEN_WAIT_SECONDS,
    ),
    DeliverrErrorCode.ORDER_SUBMITTED_TOO_EARLY: ErrorRule(
        Outcome.RETRY,
        "This order was created within the order ingestion delay set for the merchant's "
        "account. Please wait until the ingestion delay window has passed, before re-creating "
        "the order.",
    ),
    DeliverrErrorCode.PRODUCT_NOT_AVAILABLE: ErrorRule(
        Outcome.ATTENTION,
        "Contains item(s) that have never been inbounded. Please ensure that the product has "
        "inventory before creating orders against it.",
    ),
}


def error_for(code: str | None, message: str | None, *, context: str) -> ConnectorError:
    """The failure a Deliverr error answer stands for.

    A seed error type follows `ERROR_RULES`: its explanation becomes the reason a person reads.
    Any other code is Permanent and named, so it is investigated rather than retried blindly.
    """
    try:
        rule = ERROR_RULES[DeliverrErrorCode(code or "")]
    except ValueError:
        detail = f": {message}" if message else ""
        return Permanent(f"{context}: Deliverr error {code or 'without a code'}{detail}", code=code)
    if rule.outcome is Outcome.RETRY:
        return Retriable(f"{context}: {code}: {rule.explanation}", after=rule.retry_after)
    return Permanent(rule.explanation, code=code)


def parse_error(body: bytes) -> ErrorBody:
    """The `{code, message}` of an error answer; empty when the body is not that shape."""
    try:
        return ErrorBody.model_validate(load_json(body))
    except (ValueError, ValidationError):
        return ErrorBody()


# ---------------------------------------------------------------------------------------------
# Token renewal
# ---------------------------------------------------------------------------------------------


class TokenResponse(_Wire):
    """`POST /oauth/v1/token` (form `grant_type=refresh_token&refresh_token=...`)."""

    access_token: str
    refresh_token: str | None = None
    token_type: str = "bearer"
    expires_in: int | None = None
