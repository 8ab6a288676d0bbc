"""Flexport (the Logistics API, Deliverr's successor): orders sent by external id with
Flexport's own SKUs, shipments read per package from webhooks, polls and the events feed."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from pydantic import SecretStr

from connectors.connector import Connector, Lent, Role
from connectors.flexport.client import FlexportProvider
from connectors.flexport.config import FlexportSettings, WebhookAuth
from connectors.flexport.webhooks import FlexportWebhooks

if TYPE_CHECKING:
    from connectors.simulation import SimulatorBase

# What a simulated account sells, so `hub demo` and `hub simulate` orders map to products.
SIMULATED_PRODUCTS = ("SIM-TEE-01", "SKU-A", "SKU-B", "SKU-C", "SKU-D")


def _build(settings: FlexportSettings, lent: Lent) -> FlexportProvider:
    return FlexportProvider(settings, http=lent.http, sku_maps=lent.sku_maps)


def _simulator(settings: FlexportSettings) -> SimulatorBase:
    from connectors.flexport.simulator import FlexportSimulator

    assert settings.access_token is not None
    basic = None
    if settings.webhook_auth is WebhookAuth.BASIC_AUTH:
        assert settings.webhook_username and settings.webhook_password
        basic = (settings.webhook_username, settings.webhook_password.get_secret_value())
    return FlexportSimulator(
        settings.access_token.get_secret_value(),
        webhook_token=(
            settings.webhook_token.get_secret_value() if settings.webhook_token else None
        ),
        webhook_token_header=settings.webhook_token_header,
        webhook_basic=basic,
        products=SIMULATED_PRODUCTS,
    )


def _commands() -> object:
    from connectors.flexport.commands import flexport

    return flexport


def _simulated(base_url: str) -> FlexportSettings:
    return FlexportSettings(
        base_url=base_url,
        access_token=SecretStr(secrets.token_hex(16)),
        webhook_token=SecretStr(secrets.token_hex(16)),
    )


CONNECTOR = Connector(
    name="flexport",
    role=Role.PROVIDER,
    settings=FlexportSettings,
    build=_build,
    simulator=_simulator,
    simulated=_simulated,
    commands=_commands,
)

__all__ = ["CONNECTOR", "FlexportProvider", "FlexportSettings", "FlexportWebhooks"]
