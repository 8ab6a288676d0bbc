"""Depop Seller API connector: webhooks, orders, tracking per parcel, refunds, listings."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from pydantic import SecretStr

from connectors.connector import Connector, Lent, Role
from connectors.depop.client import DepopChannel, DepopClient
from connectors.depop.config import DepopSettings
from connectors.depop.webhooks import DepopWebhooks

if TYPE_CHECKING:
    from connectors.simulation import SimulatorBase


def _build(settings: DepopSettings, lent: Lent) -> DepopChannel:
    return DepopChannel(
        settings,
        http=lent.http,
        limiter=lent.limiter,
        token_store=lent.token_store,
        attention=lent.attention,
    )


def _simulator(settings: DepopSettings) -> SimulatorBase:
    from connectors.depop.simulator import DepopSimulator

    assert settings.api_key is not None and settings.webhook_secret is not None
    return DepopSimulator(
        api_key=settings.api_key.get_secret_value(),
        webhook_secret=settings.webhook_secret.get_secret_value(),
    )


def _simulated(base_url: str) -> DepopSettings:
    return DepopSettings(
        base_url=base_url,
        api_key=SecretStr(secrets.token_hex(16)),
        webhook_secret=SecretStr(secrets.token_hex(16)),
    )


CONNECTOR = Connector(
    name="depop",
    role=Role.CHANNEL,
    settings=DepopSettings,
    build=_build,
    simulator=_simulator,
    simulated=_simulated,
)

__all__ = ["CONNECTOR", "DepopChannel", "DepopClient", "DepopSettings", "DepopWebhooks"]
