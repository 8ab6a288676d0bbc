"""A connection: one account on one external system, and the SKUs it does not sell."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.types import UTCDateTime, utcnow

KEY_LIMIT = 97  # "system/name": a system's 32 characters, the slash, a name's 64


class Source(StrEnum):
    ENV = "env"  # the system's `default` connection, described by its environment variables
    DATABASE = "database"  # created through the admin API, the console or an OAuth sign-in


class Connection(SQLModel, table=True):
    """One account on one system. Its settings are kept as given; its secrets only sealed
    (hub/secrets.py), never returned by the API and never logged. An environment connection
    keeps neither here: the variables stay its source, and this row holds whether it is on."""

    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("system", "name", name="uq_connections_system_name"),)

    key: str = Field(primary_key=True, max_length=KEY_LIMIT)
    system: str = Field(max_length=32)
    name: str = Field(max_length=64)
    source: str = Field(default=Source.DATABASE, max_length=16)
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    secrets: str | None = Field(default=None, sa_column=Column(Text))
    # Why the connection cannot work until a person acts (a revoked OAuth grant), or None.
    attention_reason: str | None = None
    revision: int = 1  # moved on by every change, so processes see which connectors to rebuild
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConnectionSkuExclusion(SQLModel, table=True):
    """A SKU one channel connection does not sell: its listing there is never updated, though
    the SKU's stock is shared by every other connection that lists it."""

    __tablename__ = "connection_sku_exclusions"

    connection: str = Field(primary_key=True, max_length=KEY_LIMIT)
    sku: str = Field(primary_key=True, max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PendingSignIn(SQLModel, table=True):
    """A sign-in the hub started (OAuth authorization code with PKCE) and the system's
    redirect has not finished yet: the state as its SHA-256 only (a database reader cannot
    finish someone's flow), the PKCE verifier sealed, who started it, and, when the console
    started it, the digest of the cookie the same browser must bring back."""

    __tablename__ = "connection_sign_ins"

    state_digest: str = Field(primary_key=True, max_length=64)
    system: str = Field(max_length=32)
    name: str = Field(max_length=64)
    verifier: str = Field(sa_column=Column(Text, nullable=False))
    redirect_uri: str = Field(sa_column=Column(Text, nullable=False))
    started_by: str = Field(max_length=200)  # "admin:<token name>" or "console:<token name>"
    binding_digest: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
