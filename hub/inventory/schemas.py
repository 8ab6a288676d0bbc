"""Stock as the admin API shows it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StockPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"example": {"sku": "ABC-1", "on_hand": 5, "reserved": 2, "available": 3}}
    )

    sku: str
    on_hand: int
    reserved: int
    available: int


class StockIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"on_hand": 5}})

    on_hand: int = Field(ge=0, le=10_000_000)


class StockRow(StockIn):
    sku: str = Field(min_length=1, max_length=128)


class StockImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[StockRow] = Field(min_length=1, max_length=10_000)


class MovementPublic(BaseModel):
    on_hand_delta: int
    reserved_delta: int
    reason: str
    order_id: str | None
    note: str | None
