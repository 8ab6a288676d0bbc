"""Deliverr, a 3PL: orders sent by external id, shipments read from webhooks and polls."""

from connectors.deliverr.client import DeliverrProvider
from connectors.deliverr.config import DeliverrSettings
from connectors.deliverr.webhooks import DeliverrWebhooks

__all__ = ["DeliverrProvider", "DeliverrSettings", "DeliverrWebhooks"]
