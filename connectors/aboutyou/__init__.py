"""ABOUT YOU Seller Center order delegation (dropshipping): webhooks in, ship/cancel/stock out."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from pydantic import SecretStr

from connectors.connector import Connector, Lent, Role

from .client import AboutYouChannel, AboutYouClient
from .config import AboutYouSettings, ReturnLabelPolicy
from .webhooks import AboutYouWebhooks

if TYPE_CHECKING:
    from connectors.simulation import SimulatorBase


def _build(settings: AboutYouSettings, lent: Lent) -> AboutYouChannel:
    return AboutYouChannel(settings, http=lent.http, limiter=lent.limiter, sleep=lent.sleep)


def _simulator(settings: AboutYouSettings) -> SimulatorBase:
    from connectors.aboutyou.simulator import AboutYouSimulator

    assert settings.api_key is not None and settings.webhook_key is not None
    return AboutYouSimulator(
        settings.api_key.get_secret_value(), settings.webhook_key.get_secret_value()
    )


def _simulated(base_url: str) -> AboutYouSettings:
    return AboutYouSettings(
        base_url=base_url,
        api_key=SecretStr(secrets.token_hex(16)),
        webhook_key=SecretStr(secrets.token_hex(16)),
        return_label_policy=ReturnLabelPolicy.FIXED,
        return_label_number="RETURN-LABEL-SIMULATED",
    )


CONNECTOR = Connector(
    name="aboutyou",
    role=Role.CHANNEL,
    settings=AboutYouSettings,
    build=_build,
    simulator=_simulator,
    simulated=_simulated,
)

__all__ = ["CONNECTOR", "AboutYouChannel", "AboutYouClient", "AboutYouSettings", "AboutYouWebhooks"]
