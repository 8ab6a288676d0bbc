"""Orders as the hub holds them: one row per channel order, its lines and its history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.types import Money, UTCDateTime, utcnow


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        # One order per channel order id on each connection: two Depop shops may both have
        # an order "1001".
        UniqueConstraint("connection", "channel_order_id", name="uq_orders_connection_order"),
        Index("ix_orders_channel", "channel"),
        Index("ix_orders_status", "status"),
        Index("ix_orders_fulfilment_ref", "fulfilment_provider", "fulfilment_ref"),
        Index("ix_orders_needs_attention", "needs_attention"),
    )

    id: str = Field(primary_key=True, max_length=40)
    channel: str = Field(max_length=32)  # the system: depop, topi, aboutyou
    connection: str = Field(max_length=97)  # the account it came from: "depop/shop-b"
    channel_order_id: str = Field(max_length=128)
    status: str = Field(max_length=32)
    channel_status: str = Field(default="", max_length=64)
    currency: str = Field(max_length=3)
    total_amount: Decimal = Field(sa_type=Money)
    buyer_email: str | None = Field(default=None, max_length=320)
    shipping_address: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    placed_at: datetime = Field(sa_type=UTCDateTime)
    fulfilment_provider: str | None = Field(default=None, max_length=32)
    # The provider account it was routed to ("deliverr/default"); null for manual fulfilment.
    fulfilment_connection: str | None = Field(default=None, max_length=97)
    fulfilment_ref: str | None = Field(default=None, max_length=128)
    fulfilment_status: str | None = Field(default=None, max_length=32)
    fulfilment_checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    needs_attention: bool = False
    attention_reason: str | None = None
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "channel_line_id", name="uq_order_lines_channel_line"),
        Index("ix_order_lines_sku", "sku"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=40)
    channel_line_id: str = Field(max_length=128)
    sku: str | None = Field(default=None, max_length=128)
    quantity: int
    shipped_quantity: int = 0
    cancelled_quantity: int = 0
    unit_price: Decimal = Field(sa_type=Money)
    parcel_ref: str | None = Field(default=None, max_length=128)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))

    @property
    def open_quantity(self) -> int:
        return self.quantity - self.shipped_quantity - self.cancelled_quantity


class OrderEvent(SQLModel, table=True):
    """One row of an order's history: a transition, a flag, or a fact worth recording."""

    __tablename__ = "order_events"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=40)
    trigger: str = Field(max_length=64)
    from_state: str | None = Field(default=None, max_length=32)
    to_state: str | None = Field(default=None, max_length=32)
    source: str = Field(max_length=128)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OrderFlag(SQLModel, table=True):
    """One reason a person should look at an order, with who raised it and, once its cause is
    gone or an operator settled it, who resolved it and why. An order needs attention while it
    has an open flag; `Order.needs_attention` and `attention_reason` summarise the open ones."""

    __tablename__ = "order_flags"
    __table_args__ = (Index("ix_order_flags_order", "order_id", "resolved_at"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id", max_length=40)
    code: str = Field(max_length=48)
    message: str
    source: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: str | None = Field(default=None, max_length=128)
    note: str | None = None
