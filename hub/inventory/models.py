"""Stock per SKU, the reservations orders hold against it, and every movement that explains it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.types import UTCDateTime, utcnow


class StockItem(SQLModel, table=True):
    """One SKU's units: counted on hand, and how many of them orders hold."""

    __tablename__ = "stock_items"
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="ck_stock_reserved_nonneg"),
        CheckConstraint("on_hand >= reserved", name="ck_stock_available_nonneg"),
    )

    sku: str = Field(primary_key=True, max_length=128)
    on_hand: int = 0
    reserved: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StockReservation(SQLModel, table=True):
    """Units of one SKU held for one order; its state makes reserve/commit/release idempotent."""

    __tablename__ = "stock_reservations"
    # The unique (order_id, sku) index also serves every look-up by order: no index of its own.
    __table_args__ = (UniqueConstraint("order_id", "sku", name="uq_stock_reservations"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id", max_length=40)
    sku: str = Field(max_length=128)
    quantity: int  # still held
    committed: int = 0  # shipped out of the held units
    released: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StockMovement(SQLModel, table=True):
    """One change to a SKU's numbers, with the reason: the log sums to the current figures."""

    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_sku", "sku", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=128)
    on_hand_delta: int = 0
    reserved_delta: int = 0
    reason: str = Field(max_length=32)  # reserve, release, commit, restock, adjust
    order_id: str | None = Field(default=None, max_length=40)
    note: str | None = None
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
