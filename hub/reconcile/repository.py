"""All SQL about reconciliation runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from hub.reconcile.models import ReconcileRun


def get(session: Session, run_id: str) -> ReconcileRun | None:
    return session.get(ReconcileRun, run_id, populate_existing=True)


def watermark(session: Session, channel: str) -> datetime | None:
    """The end of the newest finished run's window: everything before it was seen."""
    return session.scalars(
        select(col(ReconcileRun.window_to))
        .where(col(ReconcileRun.channel) == channel, col(ReconcileRun.state) == "done")
        .order_by(col(ReconcileRun.window_to).desc())
        .limit(1)
    ).first()
