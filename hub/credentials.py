"""Credentials a connector renews itself (a refreshed Deliverr token), kept in the database so
every process, and the next start, uses the newest."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from hub.db import Database
from hub.types import UTCDateTime, utcnow


class StoredCredential(SQLModel, table=True):
    __tablename__ = "stored_credentials"

    key: str = Field(primary_key=True, max_length=64)
    value: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DatabaseTokenStore:
    """`connectors.base.TokenStore` on the hub's database; each save is its own transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

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
