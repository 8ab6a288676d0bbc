"""The audit log over the admin API: who changed what, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from hub import audit
from hub.deps import ReaderDep, RowCursor, require_admin

router = APIRouter(prefix="/admin/audit", tags=["audit"], dependencies=[Depends(require_admin)])


class AuditPublic(BaseModel):
    """One change: the acting token's configured name (never the token), what it did, to
    what, and the reason it gave."""

    id: int
    actor: str
    action: str
    target: str
    order_id: str | None
    reason: str | None
    detail: dict[str, Any]
    at: datetime


class AuditPage(BaseModel):
    data: list[AuditPublic]
    next_cursor: int | None


@router.get("", response_model=AuditPage)
def list_audit(
    session: ReaderDep,
    actor: str | None = None,
    action: str | None = None,
    order_id: str | None = None,
    cursor: RowCursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """Changes made through the admin API and the console, newest first."""
    rows = audit.search(
        session, actor=actor, action=action, order_id=order_id, before_id=cursor, limit=limit + 1
    )
    page = rows[:limit]
    return AuditPage(
        data=[AuditPublic.model_validate(r, from_attributes=True) for r in page],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )
