"""All SQL about reconciliation runs and the scheduler's leader lease."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from hub.db import insert_ignore
from hub.reconcile.models import ReconcileRun, SchedulerLease
from hub.types import utcnow


def get(session: Session, run_id: str) -> ReconcileRun | None:
    return session.get(ReconcileRun, run_id, populate_existing=True)


def recent(
    session: Session, *, channel: str | None = None, before_id: str | None = None, limit: int = 50
) -> Sequence[ReconcileRun]:
    """Runs newest first (ids sort by creation time), after the cursor `before_id`."""
    query = select(ReconcileRun)
    if channel:
        query = query.where(col(ReconcileRun.channel) == channel)
    if before_id:
        query = query.where(col(ReconcileRun.id) < before_id)
    return session.scalars(query.order_by(col(ReconcileRun.id).desc()).limit(limit)).all()


def watermark(session: Session, channel: str) -> datetime | None:
    """The end of the newest finished run's window: everything before it was seen."""
    return session.scalars(
        select(col(ReconcileRun.window_to))
        .where(col(ReconcileRun.channel) == channel, col(ReconcileRun.state) == "done")
        .order_by(col(ReconcileRun.window_to).desc())
        .limit(1)
    ).first()


def try_lead(session: Session, name: str, owner: str, ttl: float) -> bool:
    """Take lease `name` for `owner` if it is free or expired, or renew it if `owner` holds it.

    Racing takers are settled by the row: the insert conflicts, and the conditional update of
    an expired lease re-checks its condition after the first taker's commit, so one wins."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    if insert_ignore(
        session, SchedulerLease, {"name": name, "owner": owner, "expires_at": expires}, ["name"]
    ):
        return True
    result = session.execute(
        update(SchedulerLease)
        .where(
            col(SchedulerLease.name) == name,
            (col(SchedulerLease.owner) == owner) | (col(SchedulerLease.expires_at) < now),
        )
        .values(owner=owner, expires_at=expires)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def give_up(session: Session, name: str, owner: str) -> None:
    """Let the lease lapse now, if `owner` holds it, so another process takes over at once."""
    session.execute(
        update(SchedulerLease)
        .where(col(SchedulerLease.name) == name, col(SchedulerLease.owner) == owner)
        .values(expires_at=utcnow() - timedelta(microseconds=1))
    )


def last_mismatch_counts(session: Session) -> list[tuple[str, int]]:
    """For each channel, how many mismatches its latest finished run found."""
    latest = (
        select(col(ReconcileRun.channel), func.max(col(ReconcileRun.finished_at)).label("at"))
        .where(col(ReconcileRun.state) == "done")
        .group_by(col(ReconcileRun.channel))
        .subquery()
    )
    rows = session.execute(
        select(col(ReconcileRun.channel), col(ReconcileRun.mismatches)).join(
            latest,
            (col(ReconcileRun.channel) == latest.c.channel)
            & (col(ReconcileRun.finished_at) == latest.c.at),
        )
    ).all()
    return [(str(channel), len(found or [])) for channel, found in rows]
