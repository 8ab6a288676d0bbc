"""All SQL about leader leases: one row per lease name; whoever holds an unexpired lease leads."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col

from hub.db import insert_ignore
from hub.jobs.models import SchedulerLease
from hub.types import utcnow


def try_lead(
    session: Session, name: str, owner: str, ttl: float, *, now: datetime | None = None
) -> bool:
    """Take lease `name` for `owner` if it is free or expired, or renew it if `owner` holds it
    (`now` as the taker's clock reads it).

    Racing takers are settled by the row: the insert conflicts, and the conditional update of
    an expired lease re-checks its condition after the first taker's commit, so one wins."""
    now = now or utcnow()
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


def holder(session: Session, name: str) -> tuple[str, datetime] | None:
    """(owner, expires_at) of lease `name` as it stands, or None when nobody ever held it."""
    row = session.get(SchedulerLease, name, populate_existing=True)
    return None if row is None else (row.owner, row.expires_at)


def give_up(session: Session, name: str, owner: str, *, now: datetime | None = None) -> None:
    """Let the lease lapse now, if `owner` holds it, so another process takes over at once.

    A lease that has lapsed already is left alone: setting it to "now" would lengthen it, and
    a taker that read its clock a moment earlier would find it still held."""
    now = now or utcnow()
    session.execute(
        update(SchedulerLease)
        .where(
            col(SchedulerLease.name) == name,
            col(SchedulerLease.owner) == owner,
            col(SchedulerLease.expires_at) >= now,
        )
        .values(expires_at=now - timedelta(microseconds=1))
    )
