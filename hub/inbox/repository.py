"""All SQL about inbound events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update
from sqlmodel import Session, col

from connectors.registry import resolve, system_of
from hub.db import Prebuilt, insert_ignore_prebuilt
from hub.inbox.models import DeliveryOutcome, InboundEvent, InboundStatus, WebhookDelivery
from hub.types import utcnow

# Deliveries that stored nothing are kept this long: enough for a week's look back, bounded
# however many a misconfigured or hostile sender makes.
DELIVERY_RETENTION = timedelta(days=8)


def insert(
    session: Session,
    *,
    connection: str,
    external_id: str,
    event_type: str,
    body: bytes,
    status: InboundStatus,
    error: str | None = None,
) -> int | None:
    """Store the raw event unless (connection, external_id) is stored already: the new event's
    id, or None if it was."""
    rows = _INSERT.rows(
        session.connection(),
        {
            "channel": system_of(connection),
            "connection": connection,
            "external_id": external_id,
            "event_type": event_type,
            "body": body,
            "status": status.value,
            "error": error,
            "replays": 0,
            "received_at": utcnow(),
        },
    )
    return int(rows[0]["id"]) if rows else None


_INSERT = insert_ignore_prebuilt(
    InboundEvent.__table__,  # type: ignore[attr-defined]
    [
        "channel",
        "connection",
        "external_id",
        "event_type",
        "body",
        "status",
        "error",
        "replays",
        "received_at",
    ],
    ["connection", "external_id"],
    "id",
)


def id_by_external_id(session: Session, connection: str, external_id: str) -> int | None:
    return session.scalar(
        select(col(InboundEvent.id)).where(
            col(InboundEvent.connection) == connection,
            col(InboundEvent.external_id) == external_id,
        )
    )


def by_external_id(session: Session, connection: str, external_id: str) -> InboundEvent | None:
    return session.scalars(
        select(InboundEvent).where(
            col(InboundEvent.connection) == resolve(connection),
            col(InboundEvent.external_id) == external_id,
        )
    ).first()


def get(session: Session, event_id: int) -> InboundEvent | None:
    return session.get(InboundEvent, event_id, populate_existing=True)


def to_process(connection: Connection, event_id: int) -> dict[str, Any] | None:
    """What processing the stored event reads of it (channel, connection, external_id,
    event_type, body, status), by a statement compiled once (`Database.read_one`)."""
    rows = _TO_PROCESS.rows(connection, {"event_id": event_id})
    return rows[0] if rows else None


def settle(
    session: Session,
    event_id: int,
    status: InboundStatus,
    *,
    error: str | None = None,
    order_id: str | None = None,
) -> None:
    """Record how processing ended; `order_id`, when given, names the order it touched (a
    None keeps the one recorded)."""
    _SETTLE.rows(
        session.connection(),
        {
            "event_id": event_id,
            "status": status.value,
            "error": error,
            "processed_at": utcnow(),
            "order_id": order_id,
        },
    )


_EVENTS = InboundEvent.__table__  # type: ignore[attr-defined]
# Each runs once or twice for every webhook processed: compiled once (`Prebuilt`).
_TO_PROCESS = Prebuilt(
    select(
        _EVENTS.c.channel,
        _EVENTS.c.connection,
        _EVENTS.c.external_id,
        _EVENTS.c.event_type,
        _EVENTS.c.body,
        _EVENTS.c.status,
    ).where(_EVENTS.c.id == bindparam("event_id"))
)
_SETTLE = Prebuilt(
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_id"))
    .values(
        {
            **{
                name: bindparam(name, type_=_EVENTS.c[name].type)
                for name in ("status", "error", "processed_at")
            },
            "order_id": func.coalesce(
                bindparam("order_id", type_=_EVENTS.c.order_id.type), _EVENTS.c.order_id
            ),
        }
    )
)


def search(
    session: Session,
    *,
    channel: str | None = None,
    connection: str | None = None,
    status: str | None = None,
    order_id: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> Sequence[InboundEvent]:
    query = select(InboundEvent)
    if channel:
        query = query.where(col(InboundEvent.channel) == channel)
    if connection:
        query = query.where(col(InboundEvent.connection) == resolve(connection))
    if status:
        query = query.where(col(InboundEvent.status) == status)
    if order_id:
        query = query.where(col(InboundEvent.order_id) == order_id)
    if after_id is not None:
        query = query.where(col(InboundEvent.id) < after_id)
    return session.scalars(query.order_by(col(InboundEvent.id).desc()).limit(limit)).all()


def for_order(session: Session, order_id: str) -> Sequence[InboundEvent]:
    return session.scalars(
        select(InboundEvent)
        .where(col(InboundEvent.order_id) == order_id)
        .order_by(col(InboundEvent.id))
    ).all()


def add_delivery(
    session: Session,
    *,
    connection: str,
    outcome: DeliveryOutcome,
    reason: str | None,
    remote_addr: str | None,
    event_id: int | None = None,
) -> None:
    """Record a delivery that stored no new event, and forget those past the retention."""
    now = utcnow()
    session.execute(
        delete(WebhookDelivery).where(col(WebhookDelivery.at) < now - DELIVERY_RETENTION)
    )
    session.add(
        WebhookDelivery(
            channel=system_of(connection)[:32],
            connection=resolve(connection)[:97],
            outcome=outcome.value,
            reason=(reason or "")[:200] or None,
            remote_addr=(remote_addr or "")[:64] or None,
            event_id=event_id,
            at=now,
        )
    )


def deliveries(
    session: Session,
    *,
    outcome: str | None = None,
    channel: str | None = None,
    connection: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Sequence[WebhookDelivery]:
    """Deliveries that stored nothing, newest first."""
    query = select(WebhookDelivery)
    if outcome:
        query = query.where(col(WebhookDelivery.outcome) == outcome)
    if channel:
        query = query.where(col(WebhookDelivery.channel) == channel)
    if connection:
        query = query.where(col(WebhookDelivery.connection) == resolve(connection))
    if before_id is not None:
        query = query.where(col(WebhookDelivery.id) < before_id)
    return session.scalars(query.order_by(col(WebhookDelivery.id).desc()).limit(limit)).all()


def delivery_counts(session: Session, since: datetime) -> dict[tuple[str, str], int]:
    """(channel, outcome) -> webhooks since `since`: accepted (events stored), duplicate and
    rejected."""
    counts: dict[tuple[str, str], int] = {}
    accepted = session.execute(
        select(col(InboundEvent.channel), func.count())
        .where(col(InboundEvent.received_at) >= since)
        .group_by(col(InboundEvent.channel))
    ).all()
    for channel, n in accepted:
        counts[(str(channel), "accepted")] = int(n)
    others = session.execute(
        select(col(WebhookDelivery.channel), col(WebhookDelivery.outcome), func.count())
        .where(col(WebhookDelivery.at) >= since)
        .group_by(col(WebhookDelivery.channel), col(WebhookDelivery.outcome))
    ).all()
    for channel, outcome, n in others:
        counts[(str(channel), str(outcome))] = int(n)
    return counts


def delete_settled_before(session: Session, cutoff: datetime, limit: int) -> int:
    """Delete up to `limit` events settled (processed or ignored) and received before `cutoff`,
    oldest first; the number deleted. Failed and pending events stay for the operator."""
    oldest = (
        select(col(InboundEvent.id))
        .where(
            col(InboundEvent.received_at) < cutoff,
            col(InboundEvent.status).in_([InboundStatus.PROCESSED, InboundStatus.IGNORED]),
        )
        .order_by(col(InboundEvent.received_at))
        .limit(limit)
    )
    ids = list(session.scalars(oldest))
    if ids:
        session.execute(
            delete(InboundEvent)
            .where(col(InboundEvent.id).in_(ids))
            .execution_options(synchronize_session=False)
        )
    return len(ids)
