"""Stock as the admin API shows it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator


class StockPublic(BaseModel):
    """A SKU's numbers: counted on hand, held by orders, and what channels may still sell."""

    model_config = ConfigDict(
        json_schema_extra={"example": {"sku": "ABC-1", "on_hand": 5, "reserved": 2, "available": 3}}
    )

    sku: str
    on_hand: int
    reserved: int
    available: int


class StockIn(BaseModel):
    """A counted number of units on hand."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"on_hand": 5}})

    on_hand: int = Field(ge=0, le=10_000_000)


class StockRow(StockIn):
    sku: str = Field(min_length=1, max_length=128)


class StockImport(BaseModel):
    """Counts for many SKUs, set together or not at all."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"items": [{"sku": "ABC-1", "on_hand": 5}]}},
    )

    items: list[StockRow] = Field(min_length=1, max_length=10_000)

    @field_validator("items")
    @classmethod
    def _one_count_per_sku(cls, items: list[StockRow]) -> list[StockRow]:
        # Two counts for one SKU are ambiguous; which one the operator meant is not guessed.
        seen: set[str] = set()
        for row in items:
            if row.sku in seen:
                raise ValueError(f"SKU {row.sku!r} appears more than once")
            seen.add(row.sku)
        return items


class MovementPublic(BaseModel):
    """One change to a SKU's numbers and why it happened."""

    id: int
    on_hand_delta: int
    reserved_delta: int
    reason: str
    order_id: str | None
    note: str | None
    at: datetime


class StockPage(BaseModel):
    """SKUs in SKU order; pass `next_cursor` back as `cursor` for the next page."""

    data: list[StockPublic]
    next_cursor: str | None
