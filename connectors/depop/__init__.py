"""Depop Seller API connector: webhooks, orders, tracking per parcel, refunds, listings."""

from connectors.depop.client import DepopChannel, DepopClient
from connectors.depop.config import DepopSettings
from connectors.depop.webhooks import DepopWebhooks

__all__ = ["DepopChannel", "DepopClient", "DepopSettings", "DepopWebhooks"]
