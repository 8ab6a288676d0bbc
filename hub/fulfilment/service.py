"""Which provider ships an order, and how a shipment an operator records joins the same path
as one a 3PL reports."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from sqlmodel import Session

from connectors.base import (
    Address,
    FulfilmentLine,
    FulfilmentRequest,
    ProviderShipment,
    ProviderShipmentLine,
)
from hub.fulfilment import repository as repo
from hub.fulfilment.models import RoutingRule
from hub.ids import new_id
from hub.orders import service as orders
from hub.orders.models import Order, OrderLine, Shipment
from hub.types import utcnow

MANUAL = "manual"
NO_SKU = "line has no SKU"


def lines_without_sku(lines: Sequence[OrderLine]) -> list[str]:
    """The channel ids of open lines no provider can ship, because they name no SKU."""
    return [line.channel_line_id for line in lines if line.sku is None and line.open_quantity > 0]


def choose_provider(
    session: Session, order: Order, lines: Sequence[OrderLine], enabled: Sequence[str]
) -> str:
    """The first rule (by priority) matching the order whose provider is enabled; else the
    default: Deliverr when configured, otherwise manual fulfilment by an operator."""
    country = (order.shipping_address or {}).get("country_code")
    skus = [line.sku or "" for line in lines]
    for rule in repo.rules(session):
        if rule.provider != MANUAL and rule.provider not in enabled:
            continue
        if _matches(rule, order.channel, country, skus):
            return rule.provider
    return "deliverr" if "deliverr" in enabled else MANUAL


def _matches(rule: RoutingRule, channel: str, country: str | None, skus: Sequence[str]) -> bool:
    if rule.channel and rule.channel != channel:
        return False
    if rule.country_code and (country or "").upper() != rule.country_code.upper():
        return False
    if rule.sku_pattern and not all(fnmatch.fnmatchcase(s, rule.sku_pattern) for s in skus):
        return False
    return True


def request_for(order: Order, lines: Sequence[OrderLine]) -> FulfilmentRequest:
    """What the provider is asked to ship: every open unit with a SKU."""
    address = order.shipping_address or {}
    return FulfilmentRequest(
        order_id=order.id,
        channel=order.channel,
        channel_order_id=order.channel_order_id,
        placed_at=order.placed_at,
        shipping_address=Address(**address),
        lines=tuple(
            FulfilmentLine(line_id=str(line.id), sku=line.sku, quantity=line.open_quantity)
            for line in lines
            if line.sku and line.open_quantity > 0
        ),
    )


def record_manual_shipment(
    session: Session,
    order: Order,
    items: Sequence[tuple[str, int]],
    carrier: str,
    tracking_number: str,
    tracking_url: str | None,
    source: str,
) -> Shipment:
    """An operator shipped by hand: the shipment takes the same path a 3PL's report takes."""
    shipment = ProviderShipment(
        shipment_id=new_id("man"),
        carrier=carrier,
        tracking_numbers=(tracking_number,),
        tracking_url=tracking_url,
        shipped_at=utcnow(),
        lines=tuple(ProviderShipmentLine(sku=sku, quantity=qty) for sku, qty in items),
    )
    row = orders.record_shipment(session, order, MANUAL, shipment, source)
    if row is None:
        raise orders.ShipmentRejected(f"order is {order.status}: nothing can ship")
    return row
