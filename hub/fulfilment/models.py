"""Routing rules (which provider ships which orders), shipments (what left, with its
tracking, and whether the channel was told), and the SKU maps of providers that name products
by their own ids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.types import UTCDateTime, utcnow


class RoutingRule(SQLModel, table=True):
    """First matching rule by ascending priority wins; a null matcher matches anything."""

    __tablename__ = "routing_rules"

    id: int | None = Field(default=None, primary_key=True)
    priority: int = Field(default=100, index=True)
    channel: str | None = Field(default=None, max_length=32)
    # Only orders from this channel connection ("depop/shop-b"), when set.
    connection: str | None = Field(default=None, max_length=97)
    sku_pattern: str | None = Field(default=None, max_length=128)  # fnmatch, every line must match
    country_code: str | None = Field(default=None, max_length=2)
    # A provider connection's key ("deliverr/eu"), a bare provider name for its default
    # connection, or `manual`.
    provider: str = Field(max_length=97)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Shipment(SQLModel, table=True):
    __tablename__ = "shipments"
    __table_args__ = (
        UniqueConstraint("order_id", "provider", "provider_shipment_id", name="uq_shipments"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=40)
    provider: str = Field(max_length=32)
    provider_shipment_id: str = Field(max_length=128)
    carrier: str | None = Field(default=None, max_length=64)
    tracking_numbers: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    tracking_url: str | None = None
    shipped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    pushed_to_channel_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ShipmentLine(SQLModel, table=True):
    __tablename__ = "shipment_lines"

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: int = Field(foreign_key="shipments.id", index=True)
    order_line_id: int = Field(foreign_key="order_lines.id")
    sku: str | None = Field(default=None, max_length=128)
    quantity: int
    serial_numbers: list[str] = Field(default_factory=list, sa_column=Column(JSON))


class ProviderSku(SQLModel, table=True):
    """The seller's SKU as one provider names it (Capability.SKU_MAP), as last read from it."""

    __tablename__ = "provider_skus"

    provider: str = Field(primary_key=True, max_length=97)  # the provider connection's key
    sku: str = Field(primary_key=True, max_length=128)
    provider_sku: str = Field(max_length=128)
    refreshed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
