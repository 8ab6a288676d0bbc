"""Every table, imported in one place so SQLModel.metadata is complete for Alembic and tests."""

from hub.audit import AuditEntry
from hub.connections.models import Connection, ConnectionSkuExclusion, PendingSignIn
from hub.credentials import StoredCredential
from hub.fulfilment.models import ProviderSku, RoutingRule, Shipment, ShipmentLine
from hub.inbox.models import InboundEvent, WebhookDelivery
from hub.inventory.models import StockItem, StockMovement, StockReservation
from hub.jobs.models import Job, JobAttempt, SchedulerLease
from hub.orders.models import (
    Order,
    OrderCount,
    OrderCountChange,
    OrderEvent,
    OrderFlag,
    OrderLine,
)
from hub.ratelimit import RateLimitSlot
from hub.reconcile.models import ProviderFeedCursor, ReconcileRun

__all__ = [
    "AuditEntry",
    "Connection",
    "ConnectionSkuExclusion",
    "InboundEvent",
    "Job",
    "JobAttempt",
    "Order",
    "OrderCount",
    "OrderCountChange",
    "OrderEvent",
    "OrderFlag",
    "OrderLine",
    "PendingSignIn",
    "ProviderFeedCursor",
    "ProviderSku",
    "RateLimitSlot",
    "ReconcileRun",
    "RoutingRule",
    "SchedulerLease",
    "Shipment",
    "ShipmentLine",
    "StockItem",
    "StockMovement",
    "StockReservation",
    "StoredCredential",
    "WebhookDelivery",
]
