"""Credentials a connector renews itself (a refreshed Deliverr token, a rotated Depop OAuth
pair), kept in the database so every process, and the next start, uses the newest.

Renewal leases live in the same table, under `<key>:renewal`: a row holding its owner and
expiry. Every method is one short transaction (a row lock on Postgres; SQLite's single
writer); the outbound call that renews a credential happens between them, never inside one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from hub.db import Database, insert_ignore
from hub.types import UTCDateTime, utcnow


class StoredCredential(SQLModel, table=True):
    __tablename__ = "stored_credentials"

    key: str = Field(primary_key=True, max_length=64)
    value: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def _lease_key(key: str) -> str:
    return f"{key}:renewal"


class DatabaseTokenStore:
    """`connectors.base.LeasedTokenStore` on the hub's database; each call is its own
    transaction. Lease expiry is read from the callers' clocks (`clock`, Unix seconds)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def load(self, key: str) -> Mapping[str, str] | None:
        with self._db.reader() as session:
            row = session.get(StoredCredential, key)
            return dict(row.value) if row else None

    def save(self, key: str, value: Mapping[str, str]) -> None:
        with self._db.transaction() as session:
            row = session.get(StoredCredential, key)
            if row is None:
                session.add(StoredCredential(key=key, value=dict(value)))
            else:
                row.value = dict(value)
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
        with self._db.transaction() as session:
            row = session.get(StoredCredential, key, with_for_update=True)
            if row is None:
                if expected is not None:
                    return False
                return insert_ignore(
                    session,
                    StoredCredential,
                    {"key": key, "value": dict(value), "updated_at": utcnow()},
                    ["key"],
                )
            if expected is None or dict(row.value) != dict(expected):
                return False
            row.value = dict(value)
            row.updated_at = utcnow()
            session.add(row)
            return True
