"""All SQL about reconciliation runs and providers' event feed cursors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from connectors.registry import resolve
from hub.reconcile.models import ProviderFeedCursor, ReconcileRun
from hub.types import utcnow


def get(session: Session, run_id: str) -> ReconcileRun | None:
    return session.get(ReconcileRun, run_id, populate_existing=True)


def recent(
    session: Session,
    *,
    channel: str | None = None,
    connection: str | None = None,
    before_id: str | None = None,
    limit: int = 50,
) -> Sequence[ReconcileRun]:
    """Runs newest first (ids sort by creation time), after the cursor `before_id`."""
    query = select(ReconcileRun)
    if channel:
        query = query.where(col(ReconcileRun.channel) == channel)
    if connection:
        query = query.where(col(ReconcileRun.connection) == resolve(connection))
    if before_id:
        query = query.where(col(ReconcileRun.id) < before_id)
    return session.scalars(query.order_by(col(ReconcileRun.id).desc()).limit(limit)).all()


def watermark(session: Session, connection: str) -> datetime | None:
    """The end of the connection's newest finished run's window: everything before it was
    seen. Each connection has its own: one shop's runs say nothing of another's orders."""
    return session.scalars(
        select(col(ReconcileRun.window_to))
        .where(col(ReconcileRun.connection) == connection, col(ReconcileRun.state) == "done")
        .order_by(col(ReconcileRun.window_to).desc())
        .limit(1)
    ).first()


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


def feed_cursor(session: Session, provider: str) -> str | None:
    """Where reading `provider`'s event feed goes on from (None: its start)."""
    row = session.get(ProviderFeedCursor, provider)
    return row.cursor if row is not None else None


def save_feed_cursor(session: Session, provider: str, cursor: str) -> None:
    row = session.get(ProviderFeedCursor, provider)
    if row is None:
        session.add(ProviderFeedCursor(provider=provider, cursor=cursor))
        return
    row.cursor, row.read_at = cursor, utcnow()
    session.add(row)
