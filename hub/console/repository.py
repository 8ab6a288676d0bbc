"""The SQL the console reads with, beyond what each domain's repository offers: the order search
an operator needs (buyer, date range), and the figures the overview draws."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, case, cast, exists, func, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from hub.inventory.models import StockItem
from hub.jobs.models import Job
from hub.orders.models import Order, OrderLine


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """What an operator searches orders by; empty fields match everything."""

    channel: str | None = None
    connection: str | None = None  # a full connection key: "depop/shop-b"
    channel_order_id: str | None = None
    status: str | None = None
    needs_attention: bool | None = None
    sku: str | None = None
    buyer: str | None = None  # part of the buyer's email, name or address
    placed_from: datetime | None = None
    placed_to: datetime | None = None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_orders(
    session: Session, where: OrderFilter, *, after_id: str | None = None, limit: int = 50
) -> Sequence[Order]:
    """Orders matching `where`, newest first, after the keyset cursor `after_id`."""
    query = select(Order)
    if where.channel:
        query = query.where(col(Order.channel) == where.channel)
    if where.connection:
        query = query.where(col(Order.connection) == where.connection)
    if where.channel_order_id:
        query = query.where(col(Order.channel_order_id) == where.channel_order_id)
    if where.status:
        query = query.where(col(Order.status) == where.status)
    if where.needs_attention is not None:
        query = query.where(col(Order.needs_attention) == where.needs_attention)
    if where.sku:
        query = query.where(
            exists().where(col(OrderLine.order_id) == Order.id, col(OrderLine.sku) == where.sku)
        )
    if where.buyer:
        pattern = _like(where.buyer.lower())
        query = query.where(
            or_(
                func.lower(col(Order.buyer_email)).like(pattern, escape="\\"),
                func.lower(cast(col(Order.shipping_address), String)).like(pattern, escape="\\"),
            )
        )
    if where.placed_from:
        query = query.where(col(Order.placed_at) >= where.placed_from)
    if where.placed_to:
        query = query.where(col(Order.placed_at) < where.placed_to)
    if after_id:
        query = query.where(col(Order.id) < after_id)
    return session.scalars(query.order_by(col(Order.id).desc()).limit(limit)).all()


def attention(session: Session, limit: int = 10) -> Sequence[Order]:
    """The newest orders flagged for a person."""
    return session.scalars(
        select(Order)
        .where(col(Order.needs_attention).is_(True))
        .order_by(col(Order.id).desc())
        .limit(limit)
    ).all()


def _hour_bucket(session: Session, column: Any) -> ColumnElement[str]:
    if session.get_bind().dialect.name == "postgresql":
        # In UTC whatever the session's TimeZone: the buckets are UTC hours.
        return func.to_char(
            func.date_trunc("hour", func.timezone("UTC", column)), "YYYY-MM-DD HH24"
        )
    return func.strftime("%Y-%m-%d %H", column)


def orders_per_hour(session: Session, since: datetime) -> dict[str, int]:
    """Orders received per UTC hour since `since`, keyed `YYYY-MM-DD HH`."""
    bucket = _hour_bucket(session, col(Order.created_at))
    rows = session.execute(
        select(bucket, func.count()).where(col(Order.created_at) >= since).group_by(bucket)
    ).all()
    return {str(hour): int(n) for hour, n in rows}


def queue_depth_at(session: Session, moments: Sequence[datetime]) -> list[int]:
    """How many jobs were waiting or running at each of `moments`, read back from when each
    job was created and finished: one statement for every moment."""
    if not moments:
        return []
    first = min(moments)
    columns = [
        func.sum(
            case(
                (
                    (col(Job.created_at) <= moment)
                    & (col(Job.finished_at).is_(None) | (col(Job.finished_at) > moment)),
                    1,
                ),
                else_=0,
            )
        )
        for moment in moments
    ]
    row = session.execute(
        select(*columns).where(
            col(Job.finished_at).is_(None) | (col(Job.finished_at) > first),
        )
    ).one()
    return [int(n or 0) for n in row]


def hourly_moments(now: datetime, hours: int = 24) -> list[datetime]:
    """The last `hours` whole UTC hours up to now, oldest first, and now."""
    top = now.replace(minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=h) for h in range(hours - 1, -1, -1)] + [now]


def stock_for(session: Session, skus: Sequence[str]) -> dict[str, StockItem]:
    """The stock rows of `skus` that exist."""
    if not skus:
        return {}
    found: dict[str, StockItem] = {}
    chunk = 1000
    for start in range(0, len(skus), chunk):
        rows = session.scalars(
            select(StockItem).where(col(StockItem.sku).in_(skus[start : start + chunk]))
        ).all()
        found.update({row.sku: row for row in rows})
    return found


def search_jobs(
    session: Session,
    *,
    state: str | None = None,
    kind: str | None = None,
    connection: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Sequence[Job]:
    """Jobs newest first, before the keyset cursor `before_id`."""
    query = select(Job)
    if state:
        query = query.where(col(Job.state) == state)
    if kind:
        query = query.where(col(Job.kind) == kind)
    if connection:
        query = query.where(col(Job.connection) == connection)
    if before_id is not None:
        query = query.where(col(Job.id) < before_id)
    return session.scalars(query.order_by(col(Job.id).desc()).limit(limit)).all()
