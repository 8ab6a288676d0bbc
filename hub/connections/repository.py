"""All SQL about connections."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from hub.connections.models import Connection, ConnectionSkuExclusion, PendingSignIn, Source
from hub.db import insert_ignore
from hub.types import utcnow


def ensure_env_connections(session: Session, systems: Iterable[str]) -> None:
    """The `default` connection row of each system, which its environment variables describe
    (created on first start, and again after a test empties the tables)."""
    now = utcnow()
    for system in systems:
        insert_ignore(
            session,
            Connection,
            {
                "key": f"{system}/default",
                "system": system,
                "name": "default",
                "source": Source.ENV.value,
                "enabled": True,
                "settings": {},
                "secrets": None,
                "attention_reason": None,
                "revision": 1,
                "created_at": now,
                "updated_at": now,
            },
            ["key"],
        )


def everything(session: Session, *, for_update: bool = False) -> Sequence[Connection]:
    query = select(Connection).order_by(col(Connection.key))
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).all()


def get(session: Session, key: str, *, for_update: bool = False) -> Connection | None:
    return session.get(Connection, key, with_for_update=for_update, populate_existing=True)


def revisions(session: Session) -> dict[str, int]:
    """Each connection's revision: what a process compares to know what to rebuild."""
    rows = session.execute(select(col(Connection.key), col(Connection.revision)))
    return {str(key): int(revision) for key, revision in rows}


def exclusions(session: Session, connection: str) -> list[str]:
    rows = session.scalars(
        select(col(ConnectionSkuExclusion.sku))
        .where(col(ConnectionSkuExclusion.connection) == connection)
        .order_by(col(ConnectionSkuExclusion.sku))
    )
    return list(rows)


def exclude(session: Session, connection: str, sku: str) -> bool:
    return insert_ignore(
        session,
        ConnectionSkuExclusion,
        {"connection": connection, "sku": sku, "created_at": utcnow()},
        ["connection", "sku"],
    )


def include(session: Session, connection: str, sku: str) -> bool:
    result = session.execute(
        delete(ConnectionSkuExclusion).where(
            col(ConnectionSkuExclusion.connection) == connection,
            col(ConnectionSkuExclusion.sku) == sku,
        )
    )
    return bool(getattr(result, "rowcount", 0))


def forget_sign_ins_before(session: Session, moment: datetime) -> None:
    """Sign-ins that expired before `moment` (kept a while to tell "expired" from "unknown")."""
    session.execute(delete(PendingSignIn).where(col(PendingSignIn.expires_at) < moment))


def pending_sign_in(session: Session, state_digest: str) -> PendingSignIn | None:
    """The pending sign-in of a state, detached (read in one transaction, used after it)."""
    pending = session.get(PendingSignIn, state_digest)
    if pending is not None:
        session.expunge(pending)
    return pending


def spend_sign_in(session: Session, state_digest: str, now: datetime) -> bool:
    """Claim a pending sign-in that is unused and unexpired; False when another callback
    claimed it first or it expired."""
    claimed = session.execute(
        update(PendingSignIn)
        .where(
            col(PendingSignIn.state_digest) == state_digest,
            col(PendingSignIn.used_at).is_(None),
            col(PendingSignIn.expires_at) > now,
        )
        .values(used_at=now)
    )
    return bool(getattr(claimed, "rowcount", 0) == 1)
