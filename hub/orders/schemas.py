"""The order as the admin API shows it (CONTRACT.md): money as decimal strings, times in UTC."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)

DecimalStr = Annotated[Decimal, PlainSerializer(lambda d: str(d), return_type=str)]


class OrderLinePublic(BaseModel):
    id: int
    channel_line_id: str
    sku: str | None
    quantity: int
    shipped_quantity: int
    cancelled_quantity: int
    unit_price: DecimalStr


class ShipmentLinePublic(BaseModel):
    sku: str | None
    quantity: int
    serial_numbers: list[str] = []


class ShipmentPublic(BaseModel):
    id: int
    provider: str
    carrier: str | None
    tracking_numbers: list[str]
    tracking_url: str | None
    shipped_at: datetime | None
    lines: list[ShipmentLinePublic]
    pushed_to_channel: bool


class FlagPublic(BaseModel):
    """One reason to look at an order: what, raised by whom, and how it was settled."""

    id: int
    code: str
    message: str
    source: str
    created_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    note: str | None = None


class OrderPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "ord_01JD3ZK5Q8V9X2M4N6P8R0T2W4",
                "channel": "depop",
                "connection": "depop/default",
                "channel_order_id": "123456",
                "status": "confirmed",
                "channel_status": "SHIPPING_PENDING",
                "currency": "GBP",
                "total_amount": "50.99",
                "needs_attention": False,
                "attention_reason": None,
                "created_at": "2026-11-23T10:00:00Z",
                "updated_at": "2026-11-23T10:00:01Z",
                "lines": [
                    {
                        "id": 1,
                        "channel_line_id": "2385551",
                        "sku": "ABC-12345-S-BL",
                        "quantity": 1,
                        "shipped_quantity": 0,
                        "cancelled_quantity": 0,
                        "unit_price": "25.99",
                    }
                ],
                "shipments": [],
            }
        }
    )

    id: str
    channel: str  # the system: depop, topi, aboutyou
    connection: str  # the account: "depop/default", "depop/shop-b"
    channel_order_id: str
    status: str
    channel_status: str
    currency: str
    total_amount: DecimalStr
    needs_attention: bool
    attention_reason: str | None
    fulfilment_provider: str | None
    fulfilment_connection: str | None = None
    fulfilment_ref: str | None
    fulfilment_status: str | None
    placed_at: datetime
    created_at: datetime
    updated_at: datetime
    lines: list[OrderLinePublic]
    shipments: list[ShipmentPublic]
    # The open reasons to look at the order, oldest first; `needs_attention` is true while
    # there is one, and `attention_reason` is the newest.
    flags: list[FlagPublic] = []
    # Personal data: shown to HUB_ADMIN_TOKENS only; null for a read-only token.
    buyer_email: str | None = None
    shipping_address: dict[str, Any] | None = None


class HistoryEntry(BaseModel):
    trigger: str
    from_state: str | None
    to_state: str | None
    source: str
    at: datetime
    detail: dict[str, Any] = {}


class JobSummary(BaseModel):
    id: int
    kind: str
    state: str
    attempts: int
    last_error: str | None


class EventSummary(BaseModel):
    id: int
    channel: str
    external_id: str
    event_type: str
    status: str
    received_at: datetime


class OrderDetail(OrderPublic):
    # Every flag the order had, open and resolved, oldest first.
    flag_history: list[FlagPublic] = []
    history: list[HistoryEntry]
    jobs: list[JobSummary]
    events: list[EventSummary]


class OrderPage(BaseModel):
    data: list[OrderPublic]
    next_cursor: str | None


SerialNumber = Annotated[
    str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)
]


def _distinct(serials: list[str]) -> list[str]:
    repeated = sorted({s for s in serials if serials.count(s) > 1})
    if repeated:
        raise ValueError(f"serial numbers given twice: {', '.join(repeated)}")
    return serials


class ShipmentLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=128)
    quantity: int = Field(gt=0, le=100_000)
    serial_numbers: list[SerialNumber] = Field(
        default_factory=list,
        max_length=100_000,
        description="One per unit, for units the channel wants a serial number for "
        "(topi rentals); at most `quantity`.",
    )

    @model_validator(mode="after")
    def _serials_fit(self) -> ShipmentLineIn:
        _distinct(self.serial_numbers)
        if len(self.serial_numbers) > self.quantity:
            raise ValueError(
                f"{len(self.serial_numbers)} serial numbers for {self.quantity} unit(s)"
            )
        return self


class UnitSerialsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=128)
    serial_numbers: list[SerialNumber] = Field(min_length=1, max_length=100_000)

    @model_validator(mode="after")
    def _serials_distinct(self) -> UnitSerialsIn:
        _distinct(self.serial_numbers)
        return self


class SerialsIn(BaseModel):
    """Serial numbers for a shipment's units, per SKU, one per unit."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"lines": [{"sku": "LAPTOP-14", "serial_numbers": ["SN-0001"]}]}
        },
    )
    lines: list[UnitSerialsIn] = Field(min_length=1)

    @model_validator(mode="after")
    def _skus_distinct(self) -> SerialsIn:
        skus = [line.sku for line in self.lines]
        if len(set(skus)) != len(skus):
            raise ValueError("each SKU once: put all of a SKU's serial numbers in one line")
        return self


class ManualShipmentIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "lines": [{"sku": "ABC-12345-S-BL", "quantity": 1}],
                "carrier": "Royal Mail",
                "tracking_number": "RM123456789GB",
                "tracking_url": "https://www.royalmail.com/track-your-item#/tracking-results/RM123456789GB",
            }
        },
    )

    lines: list[ShipmentLineIn] = Field(min_length=1)
    carrier: str = Field(min_length=1, max_length=64)
    tracking_number: str = Field(min_length=1, max_length=128)
    tracking_url: str | None = Field(default=None, max_length=2048)


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="rejected by an operator", min_length=1, max_length=500)


class CancelIn(BaseModel):
    """A seller's cancellation: the reason goes to the history, the audit log and the channel
    (Depop shows it to the buyer with the refund)."""

    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ActionAccepted(BaseModel):
    order_id: str
    status: str
    queued: list[str] = []


class ResolveIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"flag_id": 12, "note": "refunded the buyer by hand"}},
    )

    # The open flag to resolve; null resolves every open flag of the order.
    flag_id: int | None = Field(default=None, ge=1, lt=2**31)
    note: str = Field(min_length=1, max_length=500)
