"""Reconciliation runs: what each read of a channel found and did."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from hub.types import UTCDateTime, utcnow


class ReconcileRun(SQLModel, table=True):
    __tablename__ = "reconcile_runs"

    id: str = Field(primary_key=True, max_length=40)
    channel: str = Field(max_length=32)
    connection: str = Field(max_length=97, index=True)
    state: str = Field(default="queued", max_length=16)  # queued, running, retrying, done, failed
    window_from: datetime = Field(sa_type=UTCDateTime)
    window_to: datetime = Field(sa_type=UTCDateTime)
    seen: int = 0
    created: int = 0
    updated: int = 0
    mismatches: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    error: str | None = None
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProviderFeedCursor(SQLModel, table=True):
    """Where reading a provider's event feed (Capability.EVENT_FEED) goes on from."""

    __tablename__ = "provider_feed_cursors"

    provider: str = Field(primary_key=True, max_length=97)  # the provider connection's key
    cursor: str | None = None
    read_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
