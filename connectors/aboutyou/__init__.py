"""ABOUT YOU Seller Center order delegation (dropshipping): webhooks in, ship/cancel/stock out."""

from .client import AboutYouChannel, AboutYouClient
from .config import AboutYouSettings
from .webhooks import AboutYouWebhooks

__all__ = ["AboutYouChannel", "AboutYouClient", "AboutYouSettings", "AboutYouWebhooks"]
