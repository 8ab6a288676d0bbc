"""Routing rules: which fulfilment provider ships which orders."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from hub.types import UTCDateTime, utcnow


class RoutingRule(SQLModel, table=True):
    """First matching rule by ascending priority wins; a null matcher matches anything."""

    __tablename__ = "routing_rules"

    id: int | None = Field(default=None, primary_key=True)
    priority: int = Field(default=100, index=True)
    channel: str | None = Field(default=None, max_length=32)
    sku_pattern: str | None = Field(default=None, max_length=128)  # fnmatch, every line must match
    country_code: str | None = Field(default=None, max_length=2)
    provider: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
