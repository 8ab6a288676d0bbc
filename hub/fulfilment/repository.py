"""All SQL about routing rules, shipments, and orders as fulfilment sees them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from hub.db import Prebuilt, from_row
from hub.fulfilment.models import ProviderSku, RoutingRule, Shipment, ShipmentLine
from hub.orders.models import Order
from hub.types import utcnow
from state_machines.order import Trigger, sources


def rules(session: Session) -> Sequence[RoutingRule]:
    """The routing rules by priority, by a statement compiled once (every route reads them;
    none is written back through this list: it is attached to no session)."""
    return [from_row(RoutingRule, row) for row in _RULES.rows(session.connection(), {})]


_RULES_TABLE = RoutingRule.__table__  # type: ignore[attr-defined]
_RULES = Prebuilt(select(_RULES_TABLE).order_by(_RULES_TABLE.c.priority, _RULES_TABLE.c.id))


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


def sku_map(session: Session, provider: str) -> dict[str, str]:
    """The seller's SKU -> `provider`'s product id, as last stored."""
    rows = session.execute(
        select(col(ProviderSku.sku), col(ProviderSku.provider_sku)).where(
            col(ProviderSku.provider) == provider
        )
    ).all()
    return {sku: provider_sku for sku, provider_sku in rows}


def replace_sku_map(session: Session, provider: str, mapping: Mapping[str, str]) -> None:
    """Make `mapping` the whole stored map of `provider`: rows it lacks go, the rest are set."""
    now = utcnow()
    stored = sku_map(session, provider)
    gone = [sku for sku in stored if sku not in mapping]
    if gone:
        session.execute(
            delete(ProviderSku).where(
                col(ProviderSku.provider) == provider, col(ProviderSku.sku).in_(gone)
            )
        )
    for sku, provider_sku in mapping.items():
        row = session.get(ProviderSku, (provider, sku))
        if row is None:
            session.add(ProviderSku(provider=provider, sku=sku, provider_sku=provider_sku))
        else:
            row.provider_sku, row.refreshed_at = provider_sku, now
            session.add(row)
