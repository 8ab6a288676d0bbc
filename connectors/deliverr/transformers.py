"""Deliverr's wire format and every mapping between it and the canonical DTOs.

Wire facts, from Deliverr's v1 OpenAPI (`connectors/deliverr/spec`) and its seller guide:

- `POST /orders/v1/order` takes `externalOrderId`, `source`, `sourceOrderId`, `shiptoAddress`
  (every field but `company` and `street2` required, each with a length limit), `lineItems`,
  and optionally `shipMethod` (free text: Deliverr lists no values) and `orderCreationTime`;
  nothing else (the body admits no other field). It answers 201 with the whole order
  (`OrderApiStatusModel`), whose `orderId` is a numeric string. An `idempotency-key` header (a
  UUIDv4) makes a repeated create replay the first answer, marked `idempotent-replayed: true`.
- Orders carry one of seven statuses and, once shipped, one shipment per package, each with a
  status of its own. A shipment has no id of its own, so `shipment_id_for` derives a stable one.
  Deliverr reports no serial numbers (a shipped item has a lot number and an expiry date).
- ORDER_STATUS_UPDATE webhooks name Deliverr's `orderId`, never the `externalOrderId`, and come
  for CREATED, SHIPPED (the whole order, with every package) and CANCELLED only.
- Errors are `{"code": <the HTTP status>, "message", "type"?}`; on a create, `type` is one of the
  error types of the seller guide's table, which decide retry or attention (`ERROR_RULES`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from connectors.base import (
    Address,
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
    # The hub's OrderLine id: Deliverr echoes it on shippedItems, so a shipment names the exact
    # line it fulfils.
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
    """The 201 answer is the whole order; only its id is needed."""

    orderId: str


# Address field limits of Deliverr's `Address` schema (characters).
NAME_MIN, NAME_MAX, COMPANY_MAX = 3, 35, 30
LIMITS = {"street1": 50, "street2": 30, "city": 30, "state": 30, "postcode": 30}


class UnshippableAddress(ValueError):
    """An address Deliverr's schema cannot hold; the reason names the field and its limit."""


def _field(value: str | None) -> str:
    return " ".join((value or "").split())


def shipto_address(address: Address) -> ShiptoAddress:
    """The address as Deliverr's `Address` holds it.

    `state` and `postcode` are required fields: an address without them (outside the US, where
    Deliverr needs neither) sends them empty. A name or company over its limit is cut (a label
    has no more room); an address line, city, state or postcode over its limit is not, since
    cutting it could send the parcel elsewhere: `UnshippableAddress` names what to shorten.
    """
    name = _field(address.name) or _field(address.company)
    if len(name) < NAME_MIN:
        raise UnshippableAddress(
            f"Deliverr needs a recipient name of at least {NAME_MIN} characters, not {name!r}"
        )
    fields = {
        "street1": _field(address.line1),
        "street2": _field(address.line2),
        "city": _field(address.city),
        "state": _field(address.region),
        "postcode": _field(address.postal_code),
    }
    for key, value in fields.items():
        if len(value) > LIMITS[key]:
            raise UnshippableAddress(
                f"Deliverr takes at most {LIMITS[key]} characters in {key}; shorten {value!r}"
            )
    company = _field(address.company)[:COMPANY_MAX]
    return ShiptoAddress(
        name=name[:NAME_MAX],
        company=company or None,
        street1=fields["street1"],
        street2=fields["street2"] or None,
        city=fields["city"],
        state=fields["state"],
        postcode=fields["postcode"],
        countryCode=address.country_code.upper(),
    )


def create_order_body(request: FulfilmentRequest, ship_method: str | None) -> dict[str, Any]:
    """The JSON body of `POST /orders/v1/order` for a hub order; `externalOrderId` is its id.
    `UnshippableAddress` when the address does not fit Deliverr's limits."""
    wire = CreateOrderRequest(
        externalOrderId=request.order_id,
        source=request.channel,
        sourceOrderId=request.channel_order_id,
        shiptoAddress=shipto_address(request.shipping_address),
        lineItems=[
            LineItem(externalProductId=line.sku, quantity=line.quantity, lineItemId=line.line_id)
            for line in request.lines
        ],
        shipMethod=ship_method,
    )
    body = wire.model_dump(mode="json", exclude_none=True)
    # Formatted by hand: pydantic would write `+00:00`; Deliverr's documents use `Z`.
    body["orderCreationTime"] = format_time(request.placed_at)
    return body


def idempotency_key(order_id: str, body: Mapping[str, Any], round_: int = 0) -> str:
    """The `idempotency-key` of a create: a UUIDv4 (the form Deliverr's description demands)
    drawn from the order, its body and `round_`, so every retry of the same create sends the
    same key, and a changed order gets a fresh one instead of the old order's replay.

    `round_` moves on only after Deliverr replayed a refusal (see `DeliverrProvider`)."""
    material = json.dumps([order_id, body, round_], sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(material.encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


# ---------------------------------------------------------------------------------------------
# Orders and shipments
# ---------------------------------------------------------------------------------------------


class DeliverrOrderStatus(StrEnum):
    """ApiOrderStatus."""

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


class ShipmentStatus(StrEnum):
    """ApiOrderShipmentStatus: where one package stands."""

    CREATED = "CREATED"
    WAREHOUSE = "WAREHOUSE"
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"
    ERROR = "ERROR"


# Whether a package in each status is a shipment to tell the channel about: it has left the
# warehouse (with its tracking number), or not yet, or it never will (cancelled, failed).
PACKAGE_LEFT: dict[ShipmentStatus, bool] = {
    ShipmentStatus.CREATED: False,
    ShipmentStatus.WAREHOUSE: False,
    ShipmentStatus.PARTIALLY_SHIPPED: True,
    ShipmentStatus.SHIPPED: True,
    ShipmentStatus.CANCELLED: False,
    ShipmentStatus.ERROR: False,
}


def map_status(raw: str | None) -> ProviderOrderStatus:
    """The canonical status of a Deliverr status; one we do not know is UNSUPPORTED."""
    if raw is None:
        return ProviderOrderStatus.UNSUPPORTED
    try:
        return STATUS_MAP[DeliverrOrderStatus(raw)]
    except ValueError:
        return ProviderOrderStatus.UNSUPPORTED


class ShippedItem(_Wire):
    """OrderApiShipmentItem (bundles come expanded into their items)."""

    externalProductId: str
    productId: str | None = None
    lineItemId: str | None = None
    status: str | None = None
    quantityOrdered: int | None = None
    quantity: int
    lotNumber: str | None = None
    expirationDate: UtcDatetime | None = None


class Shipment(_Wire):
    """OrderShipmentObject: one package."""

    trackingNumber: str | None = None
    shippingCarrier: str | None = None
    shippingService: str | None = None
    shippedTime: UtcDatetime | None = None
    trackingUrl: str | None = None
    warehouseId: str | None = None
    status: str | None = None
    shippedItems: list[ShippedItem] = Field(default_factory=list)


class Order(_Wire):
    """OrderApiStatusModel."""

    orderId: str
    externalOrderId: str | None = None
    status: str
    shiptoAddress: ShiptoAddress | None = None
    lineItems: list[LineItem] = Field(default_factory=list)
    orderShippedTime: UtcDatetime | None = None
    orderDeliveredTime: UtcDatetime | None = None
    shipments: list[Shipment] = Field(default_factory=list)


def shipment_id_for(order_id: str, shipment: Shipment) -> str:
    """A stable id for a package, which Deliverr does not give.

    Deliverr ships one package per tracking number, so `{orderId}:{trackingNumber}` names the
    same package in every poll and every webhook. A package reported without a tracking number
    (the description requires one; read defensively) is named by a digest of what identifies it
    (warehouse, shipped time, items), prefixed `{orderId}:untracked-`; should Deliverr add the
    tracking number later, that package gets a new id, which the hub sees as a second shipment
    of the same lines and can reconcile.
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
    """One Deliverr package as a canonical shipment. Deliverr reports no serial numbers, so
    its lines carry none."""
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


# `fulfilment_status` as the hub stores it holds 32 characters.
RAW_STATUS_MAX = 32


def _fulfilment(order_id: str, raw_status: str, packages: list[Shipment]) -> FulfilmentStatus:
    """The canonical report: every package that has left the warehouse. A package in a status
    this table does not know makes the report UNSUPPORTED, naming that status, so a person
    looks instead of the package being counted, or dropped, on a guess."""
    status = map_status(raw_status)
    shipped: list[ProviderShipment] = []
    for package in packages:
        try:
            left = PACKAGE_LEFT[ShipmentStatus(package.status or "")]
        except ValueError:
            status = ProviderOrderStatus.UNSUPPORTED
            raw_status = f"package {package.status}"[:RAW_STATUS_MAX]
            continue
        if left:
            shipped.append(to_provider_shipment(order_id, package))
    return FulfilmentStatus(
        provider_order_id=order_id,
        external_order_id=None,
        status=status,
        raw_status=raw_status,
        shipments=tuple(shipped),
    )


def to_fulfilment_status(order: Order) -> FulfilmentStatus:
    """A Deliverr order as the canonical fulfilment status, shipped packages included."""
    report = _fulfilment(order.orderId, order.status, order.shipments)
    return FulfilmentStatus(
        provider_order_id=report.provider_order_id,
        external_order_id=order.externalOrderId,
        status=report.status,
        raw_status=report.raw_status,
        shipments=report.shipments,
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
    """OrderStatusWebhookEvent. It names the order by Deliverr's `orderId` only: the hub finds
    its order by the reference it stored when the create answered."""

    eventId: str
    eventTime: UtcDatetime | None = None
    type: str
    updateType: str | None = None
    oldStatus: str | None = None
    newStatus: str
    orderId: str
    shipments: list[Shipment] = Field(default_factory=list)


def status_update_to_fulfilment(event: StatusUpdateEvent) -> FulfilmentStatus:
    """The fulfilment status an ORDER_STATUS_UPDATE reports."""
    return _fulfilment(event.orderId, event.newStatus, event.shipments)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class ErrorBody(_Wire):
    """Deliverr's error answer: `code` repeats the HTTP status, `type` names the error."""

    code: int | None = None
    message: str | None = None
    type: str | None = None


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


def error_for(error_type: str | None, message: str | None, *, context: str) -> ConnectorError:
    """The failure a Deliverr error answer stands for.

    An error type of the seller guide's table follows `ERROR_RULES`: its explanation becomes the
    reason a person reads. Any other is Permanent and named, so it is investigated rather than
    retried blindly.
    """
    try:
        rule = ERROR_RULES[DeliverrErrorCode(error_type or "")]
    except ValueError:
        detail = f": {message}" if message else ""
        named = error_type or "without a type"
        return Permanent(f"{context}: Deliverr error {named}{detail}", code=error_type)
    if rule.outcome is Outcome.RETRY:
        return Retriable(f"{context}: {error_type}: {rule.explanation}", after=rule.retry_after)
    return Permanent(rule.explanation, code=error_type)


def parse_error(body: bytes) -> ErrorBody:
    """The `{code, message, type}` of an error answer; empty when the body is not that shape."""
    try:
        return ErrorBody.model_validate(load_json(body))
    except (ValueError, ValidationError):
        return ErrorBody()


def is_seed_error(error: ErrorBody) -> bool:
    """Whether the answer names one of the seller guide's error types."""
    return error.type in DeliverrErrorCode.__members__


# ---------------------------------------------------------------------------------------------
# Token renewal
# ---------------------------------------------------------------------------------------------


class TokenResponse(_Wire):
    """`POST /oauth/v1/token` (form `grant_type=refresh_token&refresh_token=...`)."""

    access_token: str
    refresh_token: str | None = None
    token_type: str = "bearer"
    expires_in: int | None = None
