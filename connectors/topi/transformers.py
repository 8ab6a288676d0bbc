"""topi's wire format and every mapping between it and the canonical model.

Units: topi orders a number of *assets*, one per physical unit, each carrying the seller's own
product references. The hub's lines are those assets grouped by the reference whose `source` is
the SKU source: `TOPI_SKU_SOURCE` when set, else the order's own
`seller_info.product_reference_source` (the webhook's order carries no `seller_info`; its assets
stay unmapped until the full order is read, which the hub does for every new order):

- a line with a SKU has `channel_line_id` = the SKU (topi references match `[a-zA-Z0-9._-]`, so
  it can never collide with the next form) and `quantity` = the number of assets with that SKU;
- an asset with no reference from that source becomes its own line, `sku=None`,
  `channel_line_id` = `asset:<asset id>`, quantity 1, so the hub sees it and can reject the order.

Quantities come from the assets, not from `order_lines`: assets are present in every order shape
(webhook, `GET /v1/orders/{id}`) and they are what `POST /v1/shipment` reports, one entry each.
`order_lines` (only in the full order) give the prices and the contract type; they are used for
quantities only when an order carries no assets at all.

Rent: a line rented (`contract_type` rent) carries its `monthly_price` and `duration_months`.
topi refuses a shipment that gives no serial number for an asset with a *rent option*, even one
bought outright. An order line has no field that says so; a rented line has one, and so does a
line with a `base_rental_price`, the product's monthly rental price (inferred, not stated by
topi). `serial_required` is that, per line, for every unit of it.

Money: topi sends integer minor units (`MoneyAmount.gross`); the currencies topi supports (EUR,
GBP, USD) all have two decimals. A line's `unit_price` is the gross unit price; the order total is
the lines plus the gross shipping price. The webhook carries no money at all: such orders have
`unit_price` 0 and `attributes["prices_known"] = False` until the full order is fetched.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import (
    Address,
    ChannelOrder,
    ChannelOrderLine,
    ChannelOrderStatus,
    OrderView,
    ShipmentView,
)

CHANNEL = "topi"

# topi's webhook and some order shapes carry no money; topi prices in EUR unless told otherwise.
DEFAULT_CURRENCY = "EUR"
MINOR_UNIT_EXPONENT = 2

# Every order status in topi's OpenAPI (OrderResult.status / OrderSummary.status).
STATUS_MAP: dict[str, ChannelOrderStatus] = {
    "created": ChannelOrderStatus.OPEN,
    "acknowledged": ChannelOrderStatus.OPEN,
    "accepted": ChannelOrderStatus.OPEN,
    "confirmed": ChannelOrderStatus.OPEN,
    "partially_fulfilled": ChannelOrderStatus.OPEN,
    "completed": ChannelOrderStatus.SHIPPED,
    "canceled": ChannelOrderStatus.CANCELLED,
    "rejected": ChannelOrderStatus.CANCELLED,
}

# Asset statuses (Asset.status) meaning topi already has the unit's shipment.
SHIPPED_ASSET_STATUSES = frozenset({"shipped", "completed", "returned"})

# The contract type whose assets topi refuses to ship without a serial number.
RENT = "rent"


def map_status(status: str) -> ChannelOrderStatus:
    """The canonical status of a topi order status; an unknown one is UNSUPPORTED, never guessed."""
    return STATUS_MAP.get(status, ChannelOrderStatus.UNSUPPORTED)


def minor_to_decimal(amount: int) -> Decimal:
    """Integer minor units (cents) as a Decimal amount with two places."""
    return Decimal(amount).scaleb(-MINOR_UNIT_EXPONENT)


def decimal_to_minor(amount: Decimal) -> int:
    """A Decimal amount as integer minor units; refuses fractions of a cent rather than round."""
    scaled = amount.scaleb(MINOR_UNIT_EXPONENT)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {MINOR_UNIT_EXPONENT} decimal places")
    return int(scaled)


def loads(raw: bytes | str) -> Any:
    """JSON with every non-integer number as Decimal, so money never passes through float."""
    return json.loads(raw, parse_float=Decimal)


# ---------------------------------------------------------------------------------------------
# Wire models (the subset of topi's OpenAPI the connector reads; unknown fields are ignored).
# ---------------------------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WireReference(_Wire):
    """SellerProductReference: one of the seller's own identifiers for a product."""

    source: str = Field(min_length=1)
    reference: str = Field(min_length=1)

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.reference)


class WireMoney(_Wire):
    """MoneyAmount: gross and net in minor units."""

    currency: str
    gross: int
    net: int


class WireAsset(_Wire):
    """Asset: one physical unit of an order."""

    id: str
    product_id: str | None = None
    seller_product_references: list[WireReference] = Field(default_factory=list)
    serial_number: str | None = None
    status: str = "created"
    title: str | None = None
    tracking_url: str | None = None

    def reference_from(self, source: str) -> WireReference | None:
        return next((r for r in self.seller_product_references if r.source == source), None)


class WireOrderLine(_Wire):
    """OrderLineItem: what was sold, with prices and the contract type (rent or pay_now)."""

    quantity: int
    title: str | None = None
    contract_type: str | None = None
    duration: int | None = None
    product_id: str | None = None
    seller_product_references: list[WireReference] = Field(default_factory=list)
    unit_price: WireMoney | None = None
    monthly_price: WireMoney | None = None
    base_rental_price: WireMoney | None = None

    def reference_from(self, source: str) -> WireReference | None:
        return next((r for r in self.seller_product_references if r.source == source), None)

    @property
    def rent_option(self) -> bool:
        """Whether the product could be rented, so topi wants a serial for each unit."""
        return self.contract_type == RENT or (
            self.base_rental_price is not None and self.base_rental_price.gross > 0
        )


class WireShippingAddress(_Wire):
    """ShippingAddress: `name` in the webhook payload, `recipient_name` in the full order."""

    name: str | None = None
    recipient_name: str | None = None
    line1: str
    line2: str | None = None
    postal_code: str | None = None
    city: str
    region: str | None = None
    country_code: str


class WireCompany(_Wire):
    name: str | None = None


class WireCustomerInfo(_Wire):
    email: str | None = None
    full_name: str | None = None
    phone_number: str | None = None
    company: WireCompany | None = None


class WireShippingInfo(_Wire):
    price: WireMoney | None = None
    seller_shipping_reference: str | None = None


class WireSellerInfo(_Wire):
    currency: str | None = None
    product_reference_source: str | None = None


class WireOrder(_Wire):
    """An order as topi sends it: the webhook's bare order, OrderResult or FullOrderResult."""

    id: str
    status: str
    assets: list[WireAsset] = Field(default_factory=list)
    offer_id: str | None = None
    seller_offer_reference: str | None = None
    metadata: dict[str, str] | None = None
    shipping_address: WireShippingAddress | None = None
    created_at: datetime | None = None
    offer_created_at: datetime | None = None
    canceled_at: datetime | None = None
    order_lines: list[WireOrderLine] = Field(default_factory=list)
    customer_info: WireCustomerInfo | None = None
    shipping_info: WireShippingInfo | None = None
    seller_info: WireSellerInfo | None = None
    tracking_urls: list[str] | None = None


class WireOrderSummary(_Wire):
    """OrderSummary: one row of `GET /v1/orders/paginated`."""

    id: str
    status: str
    created_at: datetime | None = None
    seller_offer_reference: str | None = None


class WirePagination(_Wire):
    page: int
    page_size: int
    total_count: int
    total_pages: int


class WireOrdersPage(_Wire):
    """OrdersSummaryPaginated."""

    orders: list[WireOrderSummary]
    pagination: WirePagination


class WireError(_Wire):
    """topi's (goa) error body."""

    name: str | None = None
    id: str | None = None
    message: str | None = None
    temporary: bool = False
    timeout: bool = False
    fault: bool = False


class WireToken(_Wire):
    """The OAuth2 token endpoint's answer."""

    access_token: str = Field(min_length=1)
    token_type: str = "Bearer"
    expires_in: int = 3600


class ReferenceBody(TypedDict):
    source: str
    reference: str


class SerialNumberEntry(TypedDict):
    """SerialNumberByAsset: one shipped unit."""

    seller_product_reference: ReferenceBody
    serial_number: str


class ShipmentBody(TypedDict, total=False):
    """CreateRequestBody of `POST /v1/shipment`."""

    order_id: str
    serial_numbers: list[SerialNumberEntry]
    tracking_url: str
    metadata: dict[str, str]


def parse_order(data: Any) -> WireOrder:
    """A topi order from decoded JSON; `ValueError` (pydantic's) when it is not one."""
    return WireOrder.model_validate(data)


# ---------------------------------------------------------------------------------------------
# topi -> canonical
# ---------------------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    # topi sends RFC 3339 with an offset; a bare timestamp is read as UTC rather than local time.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _blank(value: str | None) -> str | None:
    return value if value else None


def to_address(order: WireOrder) -> Address | None:
    """The shipping address; the recipient falls back to the customer, then the company."""
    wire = order.shipping_address
    if wire is None:
        return None
    customer = order.customer_info
    company = customer.company.name if customer and customer.company else None
    name = (
        wire.name
        or wire.recipient_name
        or (customer.full_name if customer else None)
        or company
        or ""
    )
    return Address(
        name=name,
        line1=wire.line1,
        line2=_blank(wire.line2),
        postal_code=_blank(wire.postal_code),
        city=wire.city,
        region=_blank(wire.region),
        country_code=wire.country_code.upper(),
        company=company,
        phone=customer.phone_number if customer else None,
        email=customer.email if customer else None,
    )


def _currency(order: WireOrder) -> str:
    for line in order.order_lines:
        if line.unit_price is not None:
            return line.unit_price.currency
    if order.shipping_info and order.shipping_info.price:
        return order.shipping_info.price.currency
    if order.seller_info and order.seller_info.currency:
        return order.seller_info.currency
    return DEFAULT_CURRENCY


def _reference_body(reference: WireReference | None) -> ReferenceBody | None:
    if reference is None:
        return None
    return {"source": reference.source, "reference": reference.reference}


def sku_source_of(order: WireOrder, configured: str | None) -> str | None:
    """The reference source that holds the SKU: the configured one, else the order's own;
    None when neither is known (a webhook's order without TOPI_SKU_SOURCE)."""
    if configured:
        return configured
    if order.seller_info and order.seller_info.product_reference_source:
        return order.seller_info.product_reference_source
    return None


def _line_attributes(
    *,
    asset_ids: Sequence[str],
    reference: WireReference | None,
    order_line: WireOrderLine | None,
) -> dict[str, Any]:
    contract = order_line.contract_type if order_line else None
    net = order_line.unit_price.net if order_line and order_line.unit_price else None
    rented = order_line is not None and contract == RENT
    monthly = order_line.monthly_price if order_line and rented else None
    return {
        "asset_ids": list(asset_ids),
        # The reference `POST /v1/shipment` names this line's units by.
        "reference": _reference_body(reference),
        "contract_type": contract,
        # Per unit: topi refuses a unit with a rent option shipped without a serial number.
        # None: unknown until the full order is read (the webhook's order has no lines).
        "serial_required": order_line.rent_option if order_line is not None else None,
        "unit_price_net": str(minor_to_decimal(net)) if net is not None else None,
        "monthly_price": str(minor_to_decimal(monthly.gross)) if monthly is not None else None,
        "duration_months": order_line.duration if order_line is not None and rented else None,
    }


def _unit_price(order_line: WireOrderLine | None) -> Decimal:
    if order_line is None or order_line.unit_price is None:
        return Decimal("0.00")
    return minor_to_decimal(order_line.unit_price.gross)


def _unmapped_line(asset: WireAsset) -> ChannelOrderLine:
    """An asset without a SKU: a line of its own, so the hub sees it and holds the order."""
    first = asset.seller_product_references[0] if asset.seller_product_references else None
    return ChannelOrderLine(
        channel_line_id=f"asset:{asset.id}",
        sku=None,
        quantity=1,
        unit_price=Decimal("0.00"),
        attributes={
            **_line_attributes(asset_ids=[asset.id], reference=first, order_line=None),
            "title": asset.title,
        },
    )


def to_lines(order: WireOrder, sku_source: str | None) -> tuple[ChannelOrderLine, ...]:
    """The order's lines, grouped by SKU as the module docstring describes; with no known SKU
    source every asset is a line of its own without a SKU."""
    if sku_source is None:
        return tuple(_unmapped_line(asset) for asset in order.assets)
    lines_by_sku: dict[str, WireOrderLine] = {}
    for order_line in order.order_lines:
        ref = order_line.reference_from(sku_source)
        if ref is not None:
            lines_by_sku.setdefault(ref.reference, order_line)

    if not order.assets:
        return tuple(
            ChannelOrderLine(
                channel_line_id=sku,
                sku=sku,
                quantity=sum(
                    ol.quantity
                    for ol in order.order_lines
                    if (r := ol.reference_from(sku_source)) is not None and r.reference == sku
                ),
                unit_price=_unit_price(order_line),
                attributes=_line_attributes(
                    asset_ids=(),
                    reference=order_line.reference_from(sku_source),
                    order_line=order_line,
                ),
            )
            for sku, order_line in lines_by_sku.items()
        )

    assets_by_sku: dict[str, list[WireAsset]] = {}
    lines: list[ChannelOrderLine] = []
    unmapped: list[WireAsset] = []
    for asset in order.assets:
        ref = asset.reference_from(sku_source)
        if ref is None:
            unmapped.append(asset)
        else:
            assets_by_sku.setdefault(ref.reference, []).append(asset)
    for sku, assets in assets_by_sku.items():
        priced = lines_by_sku.get(sku)
        lines.append(
            ChannelOrderLine(
                channel_line_id=sku,
                sku=sku,
                quantity=len(assets),
                unit_price=_unit_price(priced),
                attributes=_line_attributes(
                    asset_ids=[a.id for a in assets],
                    reference=WireReference(source=sku_source, reference=sku),
                    order_line=priced,
                ),
            )
        )
    lines.extend(_unmapped_line(asset) for asset in unmapped)
    return tuple(lines)


def to_channel_order(
    order: WireOrder, sku_source: str | None, *, received_at: datetime | None = None
) -> ChannelOrder:
    """The canonical order, its SKUs read from `sku_source` (None: the order's own source).
    `received_at` dates an order that carries no `created_at` (the webhook payload); without
    either, `ValueError`."""
    placed = order.created_at or order.offer_created_at
    attributes: dict[str, Any] = {
        "seller_offer_reference": order.seller_offer_reference,
        "offer_id": order.offer_id,
        "prices_known": bool(order.order_lines),
    }
    if placed is None:
        if received_at is None:
            raise ValueError(f"topi order {order.id} has no created_at")
        placed = received_at
        attributes["placed_at_estimated"] = True
    if order.metadata:
        attributes["metadata"] = dict(order.metadata)
    if order.canceled_at is not None:
        attributes["canceled_at"] = _utc(order.canceled_at).isoformat()
    shipping = Decimal("0.00")
    if order.shipping_info and order.shipping_info.price:
        shipping = minor_to_decimal(order.shipping_info.price.gross)
        attributes["shipping_price"] = str(shipping)
    if order.shipping_info and order.shipping_info.seller_shipping_reference:
        attributes["seller_shipping_reference"] = order.shipping_info.seller_shipping_reference
    lines = to_lines(order, sku_source_of(order, sku_source))
    total = sum((line.unit_price * line.quantity for line in lines), shipping)
    return ChannelOrder(
        channel=CHANNEL,
        channel_order_id=order.id,
        status=map_status(order.status),
        channel_status=order.status,
        currency=_currency(order),
        total_amount=total,
        placed_at=_utc(placed),
        shipping_address=to_address(order),
        lines=lines,
        buyer_email=order.customer_info.email if order.customer_info else None,
        # The seller's own name for the delivery the buyer was offered (its shipping method).
        shipping_service=(
            order.shipping_info.seller_shipping_reference if order.shipping_info else None
        ),
        attributes=attributes,
    )


# ---------------------------------------------------------------------------------------------
# canonical -> topi: which units a shipment reports
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShipmentUnit:
    """One unit to report in `POST /v1/shipment`."""

    source: str
    reference: str
    serial_number: str

    def entry(self) -> SerialNumberEntry:
        return {
            "seller_product_reference": {"source": self.source, "reference": self.reference},
            "serial_number": self.serial_number,
        }


class UnmappableLine(ValueError):
    """A shipment line the connector cannot name to topi (no reference, no SKU)."""


def line_reference(
    order: OrderView, channel_line_id: str, sku: str | None, sku_source: str | None
) -> tuple[str, str]:
    """The (source, reference) topi knows a shipment line's units by."""
    for line in order.lines:
        if line.channel_line_id == channel_line_id:
            ref = line.attributes.get("reference")
            if isinstance(ref, Mapping) and ref.get("source") and ref.get("reference"):
                return (str(ref["source"]), str(ref["reference"]))
            break
    if sku and sku_source:
        return (sku_source, sku)
    raise UnmappableLine(f"line {channel_line_id} has no topi product reference and no SKU")


def _units(order: OrderView, shipment: ShipmentView, sku_source: str | None) -> list[ShipmentUnit]:
    units: list[ShipmentUnit] = []
    for line in shipment.lines:
        if line.quantity <= 0:
            continue
        source, reference = line_reference(order, line.channel_line_id, line.sku, sku_source)
        serials = list(line.serial_numbers[: line.quantity])
        serials += [""] * (line.quantity - len(serials))
        units.extend(ShipmentUnit(source, reference, serial) for serial in serials)
    return units


def units_to_report(
    order: OrderView, shipment: ShipmentView, topi_order: WireOrder, sku_source: str | None
) -> list[ShipmentUnit]:
    """The units of `shipment` topi does not have yet, so no unit is ever reported twice.

    Per product reference: a unit whose serial topi already holds is known. Of the units without
    a serial, as many are treated as known as topi holds shipped assets beyond those explained by
    the hub's other, already pushed shipments and by the serial matches (a retry after a call
    that took effect but whose answer was lost).
    """
    units = _units(order, shipment, sku_source)
    shipped: dict[tuple[str, str], list[WireAsset]] = {}
    for asset in topi_order.assets:
        if asset.status in SHIPPED_ASSET_STATUSES:
            for ref in asset.seller_product_references:
                shipped.setdefault(ref.key, []).append(asset)
    pushed_before: Counter[tuple[str, str]] = Counter()
    for other in order.shipments:
        if other.shipment_id != shipment.shipment_id and other.pushed_to_channel:
            pushed_before.update((u.source, u.reference) for u in _units(order, other, sku_source))

    result: list[ShipmentUnit] = []
    by_key: dict[tuple[str, str], list[ShipmentUnit]] = {}
    for unit in units:
        by_key.setdefault((unit.source, unit.reference), []).append(unit)
    for key, key_units in by_key.items():
        assets = shipped.get(key, [])
        serials_at_topi = Counter(a.serial_number for a in assets if a.serial_number)
        remaining: list[ShipmentUnit] = []
        matched = 0
        for unit in key_units:
            if unit.serial_number and serials_at_topi[unit.serial_number] > 0:
                serials_at_topi[unit.serial_number] -= 1
                matched += 1
            else:
                remaining.append(unit)
        unexplained = max(0, len(assets) - pushed_before[key] - matched)
        kept: list[ShipmentUnit] = []
        for unit in remaining:
            if not unit.serial_number and unexplained > 0:
                unexplained -= 1
                continue
            kept.append(unit)
        result.extend(kept)
    return result


def serial_required(topi_order: WireOrder, source: str, reference: str) -> bool:
    """Whether topi will refuse this product's units without a serial (a rent option)."""
    for line in topi_order.order_lines:
        if any(r.key == (source, reference) for r in line.seller_product_references):
            return line.rent_option
    return False


def shipment_body(
    order_id: str, units: Iterable[ShipmentUnit], shipment: ShipmentView
) -> ShipmentBody:
    """The `POST /v1/shipment` request for `units` of `shipment`."""
    body: ShipmentBody = {
        "order_id": order_id,
        "serial_numbers": [unit.entry() for unit in units],
    }
    if shipment.tracking_url:
        body["tracking_url"] = shipment.tracking_url
    metadata: dict[str, str] = {}
    if shipment.tracking_numbers:
        metadata["tracking_number"] = ",".join(shipment.tracking_numbers)[:400]
    if shipment.carrier:
        metadata["carrier"] = shipment.carrier[:400]
    if metadata:
        body["metadata"] = metadata
    return body
