"""The audit log: every change an operator made, by which token (its configured name, never the
token itself), to what, and why.

Rows are written in the transaction of the change they record, so an audited change without
its row, or a row for a change that rolled back, cannot exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, select
from sqlmodel import Field, Session, SQLModel, col

from hub.deps import Actor
from hub.types import UTCDateTime, utcnow

_MAX_REASON = 500


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_order", "order_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64)  # e.g. order.cancel, job.retry, stock.set
    target: str = Field(max_length=200)  # what was changed: an order id, a job id, a SKU
    order_id: str | None = Field(default=None, max_length=40)
    reason: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def record(
    session: Session,
    actor: Actor,
    action: str,
    target: str,
    *,
    order_id: str | None = None,
    reason: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Record that `actor` did `action` to `target`; the reason is the one given here, else the
    one the request carried."""
    why = (reason or actor.reason or "").strip()[:_MAX_REASON] or None
    session.add(
        AuditEntry(
            actor=actor.name,
            action=action,
            target=target[:200],
            order_id=order_id,
            reason=why,
            detail=dict(detail or {}),
        )
    )


def search(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    order_id: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Sequence[AuditEntry]:
    """Entries newest first, before the cursor `before_id`."""
    query = select(AuditEntry)
    if actor:
        query = query.where(col(AuditEntry.actor) == actor)
    if action:
        query = query.where(col(AuditEntry.action) == action)
    if order_id:
        query = query.where(col(AuditEntry.order_id) == order_id)
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    return session.scalars(query.order_by(col(AuditEntry.id).desc()).limit(limit)).all()
