"""Deliverr, a 3PL: orders sent by external id, shipments read from webhooks and polls."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from pydantic import SecretStr

from connectors.connector import Connector, Lent, Role
from connectors.deliverr.client import DeliverrProvider
from connectors.deliverr.config import DeliverrSettings
from connectors.deliverr.webhooks import DeliverrWebhooks

if TYPE_CHECKING:
    from connectors.simulation import SimulatorBase


def _build(settings: DeliverrSettings, lent: Lent) -> DeliverrProvider:
    return DeliverrProvider(settings, http=lent.http, token_store=lent.token_store)


def _simulator(settings: DeliverrSettings) -> SimulatorBase:
    from connectors.deliverr.simulator import DeliverrSimulator

    assert settings.access_token is not None and settings.webhook_token is not None
    return DeliverrSimulator(
        settings.access_token.get_secret_value(),
        settings.webhook_token.get_secret_value(),
        webhook_header=settings.webhook_header,
        refresh_token=(
            settings.refresh_token.get_secret_value() if settings.refresh_token else None
        ),
    )


def _simulated(base_url: str) -> DeliverrSettings:
    return DeliverrSettings(
        base_url=base_url,
        access_token=SecretStr(secrets.token_hex(16)),
        webhook_token=SecretStr(secrets.token_hex(16)),
    )


CONNECTOR = Connector(
    name="deliverr",
    role=Role.PROVIDER,
    settings=DeliverrSettings,
    build=_build,
    simulator=_simulator,
    simulated=_simulated,
)

__all__ = ["CONNECTOR", "DeliverrProvider", "DeliverrSettings", "DeliverrWebhooks"]
