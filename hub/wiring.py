"""Building a process: settings -> database, connectors, runtime."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from connectors.aboutyou import AboutYouChannel
from connectors.deliverr import DeliverrProvider
from connectors.depop import DepopChannel
from connectors.registry import Registry
from connectors.topi import TopiChannel
from hub.config import Settings
from hub.credentials import DatabaseTokenStore
from hub.db import Database
from hub.runtime import Runtime


def build_registry(
    settings: Settings, db: Database, http: Mapping[str, httpx.Client] | None = None
) -> Registry:
    """Every connector whose credentials are configured. `http` overrides a connector's HTTP
    client by name (tests and the demo point them at the simulators)."""
    http = http or {}
    registry = Registry()
    if settings.depop.configured:
        registry.add_channel(DepopChannel(settings.depop, http=http.get("depop")))
    if settings.topi.configured:
        registry.add_channel(TopiChannel(settings.topi, http=http.get("topi")))
    if settings.aboutyou.configured:
        registry.add_channel(AboutYouChannel(settings.aboutyou, http=http.get("aboutyou")))
    if settings.deliverr.configured:
        registry.add_provider(
            DeliverrProvider(
                settings.deliverr, http=http.get("deliverr"), token_store=DatabaseTokenStore(db)
            )
        )
    return registry


def build_runtime(
    settings: Settings,
    *,
    db: Database | None = None,
    http: Mapping[str, httpx.Client] | None = None,
) -> Runtime:
    database = db or Database(settings.hub.database_url)
    return Runtime(
        settings=settings.hub,
        db=database,
        connectors=build_registry(settings, database, http),
    )
