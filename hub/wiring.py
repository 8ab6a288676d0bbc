"""Building a process: settings -> database, connectors, runtime.

Importing this module loads every domain (`hub.tasks`), so a process that builds a runtime has
every job kind, dead-job hook, schedule and entry effect registered before it does any work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import httpx

import hub.tasks  # noqa: F401  (loads every domain)
from connectors.base import FulfilmentProvider, SalesChannel
from connectors.catalog import CONNECTORS
from connectors.connector import Lent, Role
from connectors.ratelimit import LocalRateLimiter, RateLimiter
from connectors.registry import Registry
from hub.config import Settings
from hub.credentials import DatabaseTokenStore
from hub.db import Database
from hub.fulfilment.skumaps import DatabaseSkuMaps
from hub.jobs import priorities
from hub.ratelimit import DatabaseRateLimiter
from hub.runtime import Runtime


def build_registry(
    settings: Settings,
    db: Database,
    http: Mapping[str, httpx.Client] | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    limiter: RateLimiter | None = None,
) -> Registry:
    """Every catalogued connector whose credentials are configured. `http` overrides a
    connector's HTTP client by name (the demo and the tests point them at simulators), `sleep`
    how connectors wait between polls and `limiter` what keeps them within their systems' rate
    limits (a simulator answers at once and limits nothing). Without one, every connector is
    lent `shared_limiter(db)`."""
    http = http or {}
    limiter = limiter if limiter is not None else shared_limiter(db)
    store = DatabaseTokenStore(db)
    sku_maps = DatabaseSkuMaps(db)
    registry = Registry()
    for connector in CONNECTORS:
        configured = settings.connectors[connector.name]
        if not configured.configured:
            continue
        lent = Lent(
            http=http.get(connector.name),
            token_store=store,
            limiter=limiter,
            sleep=sleep,
            sku_maps=sku_maps,
        )
        built = connector.build(configured, lent)
        if connector.role is Role.CHANNEL:
            assert isinstance(built, SalesChannel), connector.name
            registry.add_channel(built)
        else:
            assert isinstance(built, FulfilmentProvider), connector.name
            registry.add_provider(built)
    return registry


def shared_limiter(db: Database) -> RateLimiter:
    """The limiter every connector of this process shares. On Postgres any number of worker
    processes may call a channel at once, so the limits are kept in the database they share;
    SQLite serves one process, whose threads one local limiter keeps in step."""
    return DatabaseRateLimiter(db) if db.is_postgres else LocalRateLimiter()


def build_runtime(
    settings: Settings,
    *,
    db: Database | None = None,
    http: Mapping[str, httpx.Client] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    limiter: RateLimiter | None = None,
) -> Runtime:
    database = db or Database(settings.hub.database_url)
    priorities.configure(settings.hub.job_priorities)
    return Runtime(
        settings=settings.hub,
        db=database,
        connectors=build_registry(settings, database, http, sleep=sleep, limiter=limiter),
    )
