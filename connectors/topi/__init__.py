"""topi, the B2B rental checkout, as a sales channel of the hub."""

from connectors.topi.client import TopiChannel, TopiClient
from connectors.topi.config import TopiSettings
from connectors.topi.webhooks import TopiWebhooks

__all__ = ["TopiChannel", "TopiClient", "TopiSettings", "TopiWebhooks"]
