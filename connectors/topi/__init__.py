"""topi, the B2B rental checkout, as a sales channel of the hub."""

from __future__ import annotations

import base64
import secrets
from typing import TYPE_CHECKING

from pydantic import SecretStr

from connectors.connector import Connector, Lent, Role
from connectors.topi.client import TopiChannel, TopiClient
from connectors.topi.config import TopiSettings
from connectors.topi.webhooks import TopiWebhooks

if TYPE_CHECKING:
    from connectors.simulation import SimulatorBase


def _build(settings: TopiSettings, lent: Lent) -> TopiChannel:
    return TopiChannel(settings, http=lent.http)


def _simulator(settings: TopiSettings) -> SimulatorBase:
    from connectors.topi.simulator import TopiSimulator

    assert settings.client_id and settings.client_secret and settings.webhook_secrets
    return TopiSimulator(
        settings.client_id,
        settings.client_secret.get_secret_value(),
        settings.webhook_secrets[0].get_secret_value(),
    )


def _simulated(base_url: str) -> TopiSettings:
    return TopiSettings(
        base_url=base_url,
        token_url=f"{base_url}/oauth2/token",
        client_id="simulated-client",
        client_secret=SecretStr(secrets.token_hex(16)),
        webhook_secrets=[SecretStr("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())],
    )


CONNECTOR = Connector(
    name="topi",
    role=Role.CHANNEL,
    settings=TopiSettings,
    build=_build,
    simulator=_simulator,
    simulated=_simulated,
)

__all__ = ["CONNECTOR", "TopiChannel", "TopiClient", "TopiSettings", "TopiWebhooks"]
