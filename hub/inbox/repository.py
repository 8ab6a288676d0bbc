"""All SQL about inbound events."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlmodel import Session, col

from hub.db import insert_ignore_returning
from hub.inbox.models import InboundEvent, InboundStatus
from hub.types import utcnow


def insert(
    session: Session,
    *,
    channel: str,
    external_id: str,
    event_type: str,
    body: bytes,
    status: InboundStatus,
    error: str | None = None,
) -> int | None:
    """Store the raw event unless (channel, external_id) is stored already: the new event's id,
    or None if it was."""
    event_id = insert_ignore_returning(
        session,
        InboundEvent,
        {
            "channel": channel,
            "external_id": external_id,
            "event_type": event_type,
            "body": body,
            "status": status.value,
            "error": error,
            "replays": 0,
            "received_at": utcnow(),
        },
        ["channel", "external_id"],
        "id",
    )
    return None if event_id is None else int(event_id)


def id_by_external_id(session: Session, channel: str, external_id: str) -> int | None:
    return session.scalar(
        select(col(InboundEvent.id)).where(
            col(InboundEvent.channel) == channel, col(InboundEvent.external_id) == external_id
        )
    )


def by_external_id(session: Session, channel: str, external_id: str) -> InboundEvent | None:
    return session.scalars(
        select(InboundEvent).where(
            col(InboundEvent.channel) == channel, col(InboundEvent.external_id) == external_id
        )
    ).first()


def get(session: Session, event_id: int) -> InboundEvent | None:
    return session.get(InboundEvent, event_id, populate_existing=True)


def settle(
    session: Session,
    event_id: int,
    status: InboundStatus,
    *,
    error: str | None = None,
    order_id: str | None = None,
) -> None:
    values: dict[str, object] = {"status": status.value, "error": error, "processed_at": utcnow()}
    if order_id is not None:
        values["order_id"] = order_id
    session.execute(update(InboundEvent).where(col(InboundEvent.id) == event_id).values(**values))


def search(
    session: Session,
    *,
    channel: str | None = None,
    status: str | None = None,
    order_id: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> Sequence[InboundEvent]:
    query = select(InboundEvent)
    if channel:
        query = query.where(col(InboundEvent.channel) == channel)
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
