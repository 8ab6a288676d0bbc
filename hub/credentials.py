"""Credentials a connector renews itself (a refreshed Deliverr token, a rotated Depop OAuth
pair), kept in the database so every process, and the next start, uses the newest.

Values are sealed at rest (hub/secrets.py): a refresh token in a database dump is unreadable
without HUB_SECRET_KEY. Renewal leases live in the same table, under `<key>:renewal`: a row
holding its owner and expiry. Every method is one short transaction (a row lock on Postgres;
SQLite's single writer); the outbound call that renews a credential happens between them,
never inside one.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import JSON, Column, select
from sqlmodel import Field, Session, SQLModel

from hub.config import HubSettings
from hub.db import Database, insert_ignore
from hub.secrets import SecretBox, box_for
from hub.types import UTCDateTime, utcnow

SEALED = "sealed"  # the one field a sealed value's row holds


class StoredCredential(SQLModel, table=True):
    __tablename__ = "stored_credentials"

    key: str = Field(primary_key=True, max_length=160)
    value: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def _lease_key(key: str) -> str:
    return f"{key}:renewal"


class DatabaseTokenStore:
    """`connectors.base.LeasedTokenStore` on the hub's database; each call is its own
    transaction. Lease expiry is read from the callers' clocks (`clock`, Unix seconds)."""

    def __init__(
        self,
        db: Database,
        box: Callable[[], SecretBox] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        # Asked only when a value is sealed or opened; by default the keys the environment
        # (or an embedded hub's key file) gives for this database.
        self._box = box or functools.cache(lambda: box_for(HubSettings(database_url=db.url)))
        self._clock = clock

    def _open(self, stored: Mapping[str, str]) -> dict[str, str]:
        if SEALED in stored:
            return {k: str(v) for k, v in self._box().open(stored[SEALED]).items()}
        return dict(stored)  # written before values were sealed; sealed at its next save

    def _seal(self, value: Mapping[str, str]) -> dict[str, str]:
        return {SEALED: self._box().seal(value)}

    def load(self, key: str) -> Mapping[str, str] | None:
        with self._db.reader() as session:
            row = session.get(StoredCredential, key)
            return self._open(row.value) if row else None

    def save(self, key: str, value: Mapping[str, str]) -> None:
        sealed = self._seal(value)
        with self._db.transaction() as session:
            row = session.get(StoredCredential, key)
            if row is None:
                session.add(StoredCredential(key=key, value=sealed))
            else:
                row.value = sealed
                row.updated_at = utcnow()
                session.add(row)

    def acquire(self, key: str, owner: str, seconds: float) -> bool:
        now = self._clock()
        lease = {"owner": owner, "until": repr(now + seconds)}
        with self._db.transaction() as session:
            row = session.get(StoredCredential, _lease_key(key), with_for_update=True)
            if row is None:
                # Two first renewals race to create the lease row; the database picks one.
                return insert_ignore(
                    session,
                    StoredCredential,
                    {"key": _lease_key(key), "value": lease, "updated_at": utcnow()},
                    ["key"],
                )
            holder = row.value
            if holder.get("owner") != owner and float(holder.get("until", "0")) > now:
                return False
            row.value = lease
            row.updated_at = utcnow()
            session.add(row)
            return True

    def release(self, key: str, owner: str) -> None:
        with self._db.transaction() as session:
            row = session.get(StoredCredential, _lease_key(key), with_for_update=True)
            if row is not None and row.value.get("owner") == owner:
                session.delete(row)

    def compare_and_set(
        self, key: str, expected: Mapping[str, str] | None, value: Mapping[str, str]
    ) -> bool:
        sealed = self._seal(value)
        with self._db.transaction() as session:
            row = session.get(StoredCredential, key, with_for_update=True)
            if row is None:
                if expected is not None:
                    return False
                return insert_ignore(
                    session,
                    StoredCredential,
                    {"key": key, "value": sealed, "updated_at": utcnow()},
                    ["key"],
                )
            if expected is None or self._open(row.value) != dict(expected):
                return False
            row.value = sealed
            row.updated_at = utcnow()
            session.add(row)
            return True


def sealed(session: Session) -> Sequence[StoredCredential]:
    """Every stored credential whose value is sealed, locked for resealing."""
    rows = session.scalars(select(StoredCredential).with_for_update()).all()
    return [row for row in rows if SEALED in (row.value or {})]
