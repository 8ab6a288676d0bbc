"""Depop Seller API connector: webhooks, orders, tracking per parcel, refunds, listings."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from pydantic import SecretStr

from connectors.connector import Connector, Lent, Role, SignIn
from connectors.depop.client import DepopChannel, DepopClient
from connectors.depop.config import DepopSettings
from connectors.depop.oauth import connect_signed_in, sign_in_unavailable, sign_in_url
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
    from connectors.depop.simulator import SELLER_ID, DepopSimulator

    assert settings.api_key is not None and settings.webhook_secret is not None
    client = None
    if settings.client_id and settings.client_secret is not None:
        client = (settings.client_id, settings.client_secret.get_secret_value())
    return DepopSimulator(
        api_key=settings.api_key.get_secret_value(),
        webhook_secret=settings.webhook_secret.get_secret_value(),
        oauth_client=client,
        # Without a configured callback, any hub URL may receive the seller (demo only).
        redirect_uris=[settings.redirect_uri] if settings.redirect_uri else None,
        seller_id=settings.seller_id or SELLER_ID,
    )


def _simulated(base_url: str) -> DepopSettings:
    from connectors.depop.spec import AUTHORIZE_PATH

    return DepopSettings(
        base_url=base_url,
        api_key=SecretStr(secrets.token_hex(16)),
        webhook_secret=SecretStr(secrets.token_hex(16)),
        # The hub's OAuth app, so a shop can also be connected by signing in to the simulator.
        client_id=f"app-{secrets.token_hex(4)}",
        client_secret=SecretStr(secrets.token_hex(16)),
        authorize_url=base_url.rstrip("/") + AUTHORIZE_PATH,
        # Each simulated shop its own seller, as each real one is.
        seller_id=secrets.randbelow(10**8) + 10**7,
    )


CONNECTOR = Connector(
    name="depop",
    role=Role.CHANNEL,
    settings=DepopSettings,
    build=_build,
    simulator=_simulator,
    simulated=_simulated,
    sign_in=SignIn(
        label="Connect a Depop shop",
        unavailable=sign_in_unavailable,
        redirect_uri=lambda settings: settings.redirect_uri,
        authorization_url=sign_in_url,
        connect=connect_signed_in,
    ),
)

__all__ = ["CONNECTOR", "DepopChannel", "DepopClient", "DepopSettings", "DepopWebhooks"]
