"""Flexport Logistics API wire format and every mapping between it and the canonical DTOs.

Wire facts (`../shared/specs/flexport-logistics-notes.md`, the index the contract subset is
derived from, `connectors/flexport/spec`):

- `POST {v}/orders` takes `externalOrderId`, `address` (`address1`, `city`, `countryCode`
  required; `address2`, `company`, `name`, `phone`, `provinceCode`, `zip` optional) and
  `lineItems` of `{logisticsSku, quantity}`: Flexport's own SKU, never the seller's. An
  `idempotency-key` header (any string) makes a repeated create replay the first answer.
- An order (`OrderModel`) has an `id` (declared a string; real answers and events carry
  numbers: both are read), a `state` with `internalStatus` and `fulfillmentStatus`,
  `shipments[]` each with `packages[]`, and each package its `lineItems` and a `label`
  (carrier as free text, tracking code and URL): tracking is per package, so a partial
  shipment reports exactly the items that left. An `error` with `retriable: true` is retried
  through `POST {v}/orders/{id}/retry`, never by creating the order again.
- Webhooks and the events feed carry ids only (`logisticsEventId`, `orderId`, ...).
- Errors are RFC 7807 `application/problem+json`: `{status, type, title, detail?, instance?}`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from connectors.base import (
    Address,
    FulfilmentRequest,
    FulfilmentStatus,
    MalformedPayload,
    ProviderOrderStatus,
    ProviderShipment,
    ProviderShipmentLine,
)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _id_text(value: object) -> object:
    """Ids arrive as strings or as numbers (`127405472`): both become the same text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal) and value == int(value):
        return str(int(value))
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
IdText = Annotated[str, BeforeValidator(_id_text)]


def format_time(value: datetime) -> str:
    """A timezone-aware time as RFC 3339 in UTC with a `Z`."""
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def load_json(body: bytes | str) -> Any:
    """Parse a Flexport body; decimals stay `Decimal` so no number is rounded by a float."""
    return json.loads(body, parse_float=Decimal)


class _Wire(BaseModel):
    """Base of the wire models: Flexport adds fields across versions; unread ones are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# ---------------------------------------------------------------------------------------------
# Create order
# ---------------------------------------------------------------------------------------------


class AddressInput(_Wire):
    address1: str
    address2: str | None = None
    city: str
    company: str | None = None
    countryCode: str
    name: str | None = None
    phone: str | None = None
    provinceCode: str | None = None
    zip: str | None = None


class LineItemInput(_Wire):
    logisticsSku: str
    quantity: int


class CreateOrderInput(_Wire):
    externalOrderId: str
    address: AddressInput
    lineItems: list[LineItemInput]
    shipMethod: str | None = None


def _text(value: str | None) -> str | None:
    cleaned = " ".join((value or "").split())
    return cleaned or None


def address_input(address: Address) -> AddressInput:
    """The address as Flexport's `AddressInput` names its fields."""
    return AddressInput(
        address1=_text(address.line1) or "",
        address2=_text(address.line2),
        city=_text(address.city) or "",
        company=_text(address.company),
        countryCode=address.country_code.strip().upper(),
        name=_text(address.name),
        phone=_text(address.phone),
        provinceCode=_text(address.region),
        zip=_text(address.postal_code),
    )


def create_order_body(
    request: FulfilmentRequest, logistics_skus: Mapping[str, str], ship_method: str | None
) -> dict[str, Any]:
    """The body of `POST {v}/orders`; `externalOrderId` is the hub's order id. Lines of one
    SKU are summed: Flexport's line items carry no line id to tell them apart."""
    quantities: dict[str, int] = {}
    for line in request.lines:
        dsku = logistics_skus[line.sku]
        quantities[dsku] = quantities.get(dsku, 0) + line.quantity
    wire = CreateOrderInput(
        externalOrderId=request.order_id,
        address=address_input(request.shipping_address),
        lineItems=[LineItemInput(logisticsSku=k, quantity=q) for k, q in quantities.items()],
        shipMethod=ship_method,
    )
    return wire.model_dump(mode="json", exclude_none=True)


def idempotency_key(order_id: str, body: Mapping[str, Any]) -> str:
    """The same create always sends the same key; a changed order gets a new one."""
    material = json.dumps([order_id, body], sort_keys=True, separators=(",", ":"))
    return f"hub-{order_id}-{hashlib.sha256(material.encode()).hexdigest()[:24]}"


# ---------------------------------------------------------------------------------------------
# Orders, shipments, packages
# ---------------------------------------------------------------------------------------------


class InternalStatus(StrEnum):
    """InternalOrderStatus."""

    CREATED = "CREATED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    ERROR = "ERROR"


STATUS_MAP: dict[InternalStatus, ProviderOrderStatus] = {
    InternalStatus.CREATED: ProviderOrderStatus.PENDING,
    InternalStatus.SHIPPED: ProviderOrderStatus.SHIPPED,
    InternalStatus.DELIVERED: ProviderOrderStatus.DELIVERED,
    InternalStatus.CANCELLED: ProviderOrderStatus.CANCELLED,
    InternalStatus.ERROR: ProviderOrderStatus.ERROR,
}


class ShipmentStatus(StrEnum):
    """ShipmentStatus: where one warehouse's shipment of the order stands."""

    CREATED = "CREATED"
    WAREHOUSE = "WAREHOUSE"
    SHIPPED = "SHIPPED"
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    OVER_SHIPPED = "OVER_SHIPPED"
    CANCELLED = "CANCELLED"
    ERROR = "ERROR"
    NOT_SYNCED = "NOT_SYNCED"


# Whether the labelled packages of a shipment in each status have left the warehouse.
SHIPMENT_LEFT: dict[ShipmentStatus, bool] = {
    ShipmentStatus.CREATED: False,
    ShipmentStatus.WAREHOUSE: False,
    ShipmentStatus.SHIPPED: True,
    ShipmentStatus.PARTIALLY_SHIPPED: True,
    ShipmentStatus.OVER_SHIPPED: True,
    ShipmentStatus.CANCELLED: False,
    ShipmentStatus.ERROR: False,
    ShipmentStatus.NOT_SYNCED: False,
}

# `fulfilment_status` as the hub stores it holds 32 characters.
RAW_STATUS_MAX = 32
PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"


class OrderState(_Wire):
    internalStatus: str
    fulfillmentStatus: str | None = None
    fulfillmentInProgress: bool | None = None
    fulfillmentDelayed: bool | None = None


class OrderError(_Wire):
    code: int | Decimal | None = None
    type: str | None = None
    message: str | None = None
    retriable: bool = False


class PackageItem(_Wire):
    logisticsSku: str
    quantity: int


class Label(_Wire):
    carrier: str | None = None
    trackingCode: str | None = None
    trackingUrl: str | None = None
    shippingMethod: str | None = None


class Package(_Wire):
    id: IdText
    lineItems: list[PackageItem] = Field(default_factory=list)
    label: Label | None = None
    carrierShipTime: UtcDatetime | None = None


class Shipment(_Wire):
    id: IdText
    status: str
    warehouseId: str | None = None
    shippedAt: UtcDatetime | None = None
    packages: list[Package] = Field(default_factory=list)


class LineItem(_Wire):
    logisticsSku: str
    quantity: int


class Order(_Wire):
    """OrderModel."""

    id: IdText
    externalOrderId: str | None = None
    state: OrderState
    lineItems: list[LineItem] = Field(default_factory=list)
    shipments: list[Shipment] = Field(default_factory=list)
    error: OrderError | None = None

    @property
    def internal_status(self) -> str:
        return self.state.internalStatus

    def anything_shipped(self) -> bool:
        return any(_left(s) for s in self.shipments)


def _left(shipment: Shipment) -> bool | None:
    """Whether the shipment's packages have left; None for a status this table does not know."""
    try:
        return SHIPMENT_LEFT[ShipmentStatus(shipment.status)]
    except ValueError:
        return None


def map_status(raw: str) -> ProviderOrderStatus:
    try:
        return STATUS_MAP[InternalStatus(raw)]
    except ValueError:
        return ProviderOrderStatus.UNSUPPORTED


def to_provider_shipment(
    order_id: str, shipment: Shipment, package: Package, merchant_skus: Mapping[str, str]
) -> ProviderShipment:
    """One labelled package as a canonical shipment: its own items, its own tracking. A DSKU
    the map does not know is passed on as it is, so the hub counts it as not on the order."""
    label = package.label or Label()
    return ProviderShipment(
        shipment_id=f"{order_id}:{package.id}",
        carrier=label.carrier,
        tracking_numbers=(label.trackingCode,) if label.trackingCode else (),
        tracking_url=label.trackingUrl,
        shipped_at=package.carrierShipTime or shipment.shippedAt,
        service=label.shippingMethod,
        lines=tuple(
            ProviderShipmentLine(
                sku=merchant_skus.get(item.logisticsSku, item.logisticsSku),
                quantity=item.quantity,
            )
            for item in package.lineItems
            if item.quantity > 0
        ),
    )


def to_fulfilment_status(order: Order, merchant_skus: Mapping[str, str]) -> FulfilmentStatus:
    """The order as the canonical status: every labelled package of every shipment that has
    left. A shipment in a status this module does not know makes the report UNSUPPORTED, naming
    it, so a person looks instead of a package being counted or dropped on a guess."""
    raw = order.internal_status
    status = map_status(raw)
    shipped: list[ProviderShipment] = []
    for shipment in order.shipments:
        left = _left(shipment)
        if left is None:
            status = ProviderOrderStatus.UNSUPPORTED
            raw = f"shipment {shipment.status}"[:RAW_STATUS_MAX]
            continue
        if left:
            shipped.extend(
                to_provider_shipment(order.id, shipment, package, merchant_skus)
                for package in shipment.packages
                if package.label is not None
            )
    if status is ProviderOrderStatus.PENDING and shipped:
        # Flexport keeps an order CREATED until its last shipment leaves.
        status, raw = ProviderOrderStatus.PARTIALLY_SHIPPED, PARTIALLY_SHIPPED
    return FulfilmentStatus(
        provider_order_id=order.id,
        external_order_id=order.externalOrderId,
        status=status,
        raw_status=raw,
        shipments=tuple(shipped),
    )


def parse_order(body: bytes | str) -> Order:
    try:
        return Order.model_validate(load_json(body))
    except (ValueError, ValidationError) as exc:
        raise MalformedPayload(f"unreadable Flexport order: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Products (merchantSku -> logisticsSku)
# ---------------------------------------------------------------------------------------------


class Product(_Wire):
    logisticsSku: str
    merchantSku: str | None = None


def parse_products(body: bytes | str) -> list[Product]:
    try:
        rows = load_json(body)
        if not isinstance(rows, list):
            raise ValueError("not a list")
        return [Product.model_validate(row) for row in rows]
    except (ValueError, ValidationError) as exc:
        raise MalformedPayload(f"unreadable Flexport products page: {exc}") from exc


def sku_pairs(products: Sequence[Product]) -> dict[str, str]:
    """merchantSku -> logisticsSku of every product that names a merchant SKU."""
    return {p.merchantSku: p.logisticsSku for p in products if p.merchantSku}


# ---------------------------------------------------------------------------------------------
# Events: webhooks and the pull feed
# ---------------------------------------------------------------------------------------------

# Event types that say an order changed; the event carries ids only, so the order is read.
ORDER_EVENT_TYPES = frozenset(
    {
        "Order.Cancelled",
        "Order.Shipped",
        "Shipment.Cancelled",
        "Shipment.Created",
        "Shipment.Shipped",
    }
)


class WebhookEnvelope(_Wire):
    logisticsEventId: IdText
    logisticsEventType: str
    logisticsEventTime: str | None = None
    logisticsAccountId: IdText | None = None
    orderId: IdText | None = None
    externalOrderId: str | None = None


class FeedEvent(_Wire):
    """NetworkEventsEventsResponseItem: `payload` is a string map."""

    id: IdText
    type: str
    time: str
    payload: dict[str, Any] | None = None

    @property
    def order_id(self) -> str | None:
        value = _id_text((self.payload or {}).get("orderId"))
        return value if isinstance(value, str) and value else None


def parse_feed(body: bytes | str) -> list[FeedEvent]:
    try:
        rows = load_json(body)
        if not isinstance(rows, list):
            raise ValueError("not a list")
        return [FeedEvent.model_validate(row) for row in rows]
    except (ValueError, ValidationError) as exc:
        raise MalformedPayload(f"unreadable Flexport events page: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Errors (RFC 7807)
# ---------------------------------------------------------------------------------------------


class Problem(_Wire):
    status: int | None = None
    type: str | None = None
    title: str | None = None
    detail: str | None = None
    instance: str | None = None

    def describe(self) -> str:
        parts = [p for p in (self.title, self.detail) if p]
        return ": ".join(parts) if parts else "no detail given"


def parse_problem(body: bytes) -> Problem:
    """The problem+json of an error answer; empty when the body is not one."""
    try:
        return Problem.model_validate(load_json(body))
    except (ValueError, ValidationError):
        return Problem()
