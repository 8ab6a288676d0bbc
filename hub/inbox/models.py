"""Raw inbound webhooks, kept byte for byte so any of them can be replayed."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.types import UTCDateTime, utcnow

EXTERNAL_ID_LIMIT = 160
EVENT_TYPE_LIMIT = 64


class InboundStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


class InboundEvent(SQLModel, table=True):
    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("connection", "external_id", name="uq_inbound_events_external"),
        Index("ix_inbound_events_status", "channel", "status"),
        Index("ix_inbound_events_received", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    connection: str = Field(max_length=97)
    external_id: str = Field(max_length=EXTERNAL_ID_LIMIT)
    event_type: str = Field(max_length=EVENT_TYPE_LIMIT)
    body: bytes = Field(sa_type=LargeBinary)
    status: str = Field(default=InboundStatus.PENDING, max_length=16)
    error: str | None = None
    order_id: str | None = Field(default=None, index=True, max_length=40)
    replays: int = 0
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeliveryOutcome(StrEnum):
    DUPLICATE = "duplicate"  # authenticated, already stored
    REJECTED = "rejected"  # not authenticated, or for a channel not configured: nothing stored
    FAILED = "failed"  # authenticated and stored, but failed at once: unreadable or unstorable


class WebhookDelivery(SQLModel, table=True):
    """A webhook delivery that stored no new event, or stored one failed at intake: when, from
    where, and why. Other accepted ones are the inbound events themselves. Kept for
    `DELIVERY_RETENTION`; never the body or a header, which may carry a secret."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    connection: str | None = Field(default=None, max_length=97)
    outcome: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=200)
    remote_addr: str | None = Field(default=None, max_length=64)
    event_id: int | None = None  # the stored event a duplicate repeated, or the failed one
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
