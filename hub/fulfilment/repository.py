"""All SQL about routing rules, shipments, and orders as fulfilment sees them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from hub.fulfilment.models import RoutingRule, Shipment, ShipmentLine
from hub.orders.models import Order
from state_machines.order import Trigger, sources


def rules(session: Session) -> Sequence[RoutingRule]:
    return session.scalars(
        select(RoutingRule).order_by(col(RoutingRule.priority), col(RoutingRule.id))
    ).all()


def get(session: Session, rule_id: int) -> RoutingRule | None:
    return session.get(RoutingRule, rule_id)


def shipments(session: Session, order_id: str) -> Sequence[Shipment]:
    return session.scalars(
        select(Shipment).where(col(Shipment.order_id) == order_id).order_by(col(Shipment.id))
    ).all()


def shipment_lines(session: Session, shipment_ids: Sequence[int]) -> Sequence[ShipmentLine]:
    if not shipment_ids:
        return []
    return session.scalars(
        select(ShipmentLine)
        .where(col(ShipmentLine.shipment_id).in_(shipment_ids))
        .order_by(col(ShipmentLine.id))
    ).all()


def shipment(
    session: Session, order_id: str, provider: str, provider_shipment_id: str
) -> Shipment | None:
    return session.scalars(
        select(Shipment).where(
            col(Shipment.order_id) == order_id,
            col(Shipment.provider) == provider,
            col(Shipment.provider_shipment_id) == provider_shipment_id,
        )
    ).first()


def shipments_for(session: Session, order_ids: Sequence[str]) -> Sequence[Shipment]:
    if not order_ids:
        return []
    return session.scalars(
        select(Shipment).where(col(Shipment.order_id).in_(order_ids)).order_by(col(Shipment.id))
    ).all()


def routed_without_update(session: Session, older_than: datetime) -> Sequence[Order]:
    """Open orders at a provider whose status was last checked before `older_than`."""
    return session.scalars(
        select(Order).where(
            col(Order.status).in_(sorted(sources(Trigger.SHIP))),
            col(Order.fulfilment_ref).is_not(None),
            func.coalesce(Order.fulfilment_checked_at, Order.updated_at) < older_than,
        )
    ).all()
