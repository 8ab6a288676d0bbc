"""Building a process: settings -> database, connectors, runtime.

Importing this module loads every domain (`hub.tasks`), so a process that builds a runtime has
every job kind, dead-job hook, schedule and entry effect registered before it does any work.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import structlog

import hub.tasks  # noqa: F401  (loads every domain)
from connectors.base import FulfilmentProvider, SalesChannel
from connectors.catalog import CONNECTORS, by_name
from connectors.connector import Connector, Lent, Role
from connectors.ratelimit import LocalRateLimiter, RateLimit, RateLimiter
from connectors.registry import Registry, system_of
from hub.config import Settings
from hub.connections import repository as connections_repo
from hub.connections import service as connections
from hub.connections.models import Connection
from hub.connections.repository import ensure_env_connections
from hub.credentials import DatabaseTokenStore
from hub.db import Database
from hub.fulfilment.skumaps import DatabaseSkuMaps
from hub.jobs import priorities
from hub.ratelimit import DatabaseRateLimiter
from hub.runtime import Runtime
from hub.secrets import box_for

log = structlog.get_logger("hub.wiring")


def build_registry(
    settings: Settings,
    db: Database,
    http: Mapping[str, httpx.Client] | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    limiter: RateLimiter | None = None,
) -> Registry:
    """A connector for every enabled connection whose credentials are configured: each
    system's `default` one from its environment variables, the others from the database.
    `http` overrides a connector's HTTP client by connection key or by system name (the demo
    and the tests point them at simulators), `sleep` how connectors wait between polls and
    `limiter` what keeps them within their systems' rate limits (a simulator answers at once
    and limits nothing). Without one, every connector is lent `shared_limiter(db)`.

    The registry re-reads the connections table now and then (HUB_CONNECTIONS_REFRESH_SECONDS)
    and on a miss, rebuilding only the connectors whose connection changed."""
    with db.transaction() as session:
        ensure_env_connections(session, [c.name for c in CONNECTORS])
    loader = ConnectionLoader(
        settings, db, http or {}, sleep=sleep, limiter=limiter or shared_limiter(db)
    )
    registry = Registry(refresh=loader, refresh_interval=settings.hub.connections_refresh_seconds)
    loader(registry)
    return registry


class ConnectionLoader:
    """Builds the connectors of the enabled connections; kept by the registry to refresh it."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        http: Mapping[str, httpx.Client],
        *,
        sleep: Callable[[float], None],
        limiter: RateLimiter,
    ) -> None:
        self._settings = settings
        self._db = db
        self._http = http
        self._sleep = sleep
        self._limiter = limiter
        self._box = functools.cache(lambda: box_for(settings.hub))
        self._tokens = DatabaseTokenStore(db, self._box)
        self._sku_maps = DatabaseSkuMaps(db)
        self._built: dict[str, tuple[int, SalesChannel | FulfilmentProvider]] = {}
        self._lock = threading.Lock()

    def __call__(self, registry: Registry) -> None:
        with self._lock:
            with self._db.reader() as session:
                rows = list(connections_repo.everything(session))
            catalog = by_name()
            channels: dict[str, SalesChannel] = {}
            providers: dict[str, FulfilmentProvider] = {}
            for row in rows:
                connector = catalog.get(row.system)
                if connector is None or not row.enabled:
                    continue
                built = self._connector(row, connector)
                if built is None:
                    continue
                if connector.role is Role.CHANNEL:
                    assert isinstance(built, SalesChannel), row.key
                    channels[row.key] = built
                else:
                    assert isinstance(built, FulfilmentProvider), row.key
                    providers[row.key] = built
            registry.replace(channels, providers)

    def _connector(
        self, row: Connection, connector: Connector[Any]
    ) -> SalesChannel | FulfilmentProvider | None:
        cached = self._built.get(row.key)
        if cached is not None and cached[0] == row.revision:
            return cached[1]
        try:
            box = self._box() if row.secrets else None
            configured = connections.settings_for(row, self._settings.connectors, box)
            if not configured.configured:
                return None
            built = connector.build(configured, self.lend(row.key))
        except Exception as exc:
            # One connection's broken settings or stored token (a key dropped before
            # rotation) must not stop the others: it stays off, and says why. The error's
            # type only: its text may quote what it could not read.
            log.error("hub.connections.unbuildable", connection=row.key, error=type(exc).__name__)
            return None
        self._built[row.key] = (row.revision, built)
        return built

    def lend(self, key: str) -> Lent:
        """What the connector of connection `key` is lent: its own view of the credential
        store and SKU maps, the HTTP client a test or the demo points at a simulator, the
        limiter under the connection's own keys, and a way to flag the connection when it needs
        a person."""
        return Lent(
            http=self._http.get(key) or self._http.get(system_of(key)),
            token_store=ScopedTokenStore(self._tokens, key),
            limiter=ScopedLimiter(self._limiter, key),
            sleep=self._sleep,
            sku_maps=ScopedSkuMaps(self._sku_maps, key),
            attention=functools.partial(self._flag, key),
        )

    def _flag(self, key: str, reason: str) -> None:
        # Called by a connector mid-call, outside any transaction: its own short one.
        with self._db.transaction() as session:
            connections.flag(session, key, reason)


def _scoped(connection: str, key: str) -> str:
    """A connector's own key for a stored value, made the connection's: a connector names
    its values by its system's name, and two Depop shops must not share a token."""
    return connection if key == system_of(connection) else f"{connection}:{key}"


class ScopedTokenStore:
    """A connection's view of the credential store (`connectors.base.LeasedTokenStore`)."""

    def __init__(self, store: DatabaseTokenStore, connection: str) -> None:
        self._store = store
        self._connection = connection

    def load(self, key: str) -> Mapping[str, str] | None:
        return self._store.load(_scoped(self._connection, key))

    def save(self, key: str, value: Mapping[str, str]) -> None:
        self._store.save(_scoped(self._connection, key), value)

    def acquire(self, key: str, owner: str, seconds: float) -> bool:
        return self._store.acquire(_scoped(self._connection, key), owner, seconds)

    def release(self, key: str, owner: str) -> None:
        self._store.release(_scoped(self._connection, key), owner)

    def compare_and_set(
        self, key: str, expected: Mapping[str, str] | None, value: Mapping[str, str]
    ) -> bool:
        return self._store.compare_and_set(_scoped(self._connection, key), expected, value)


class ScopedLimiter:
    """A connection's view of the rate limiter: channels limit calls per API key (Depop's
    100/s and 20/s for listings are each shop's own), so two shops never spend each other's
    budget, while every process of the hub shares each shop's."""

    def __init__(self, limiter: RateLimiter, connection: str) -> None:
        self._limiter = limiter
        self._connection = connection

    def acquire(self, limit: RateLimit, *, max_wait: float) -> None:
        scoped = dataclasses.replace(limit, key=_scoped(self._connection, limit.key))
        self._limiter.acquire(scoped, max_wait=max_wait)


class ScopedSkuMaps:
    """A provider connection's view of the SKU maps (`connectors.base.SkuMapStore`)."""

    def __init__(self, maps: DatabaseSkuMaps, connection: str) -> None:
        self._maps = maps
        self._connection = connection

    def load(self, provider: str) -> Mapping[str, str]:
        return self._maps.load(_scoped(self._connection, provider))

    def replace(self, provider: str, mapping: Mapping[str, str]) -> None:
        self._maps.replace(_scoped(self._connection, provider), mapping)


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
    registry = build_registry(settings, database, http, sleep=sleep, limiter=limiter)
    assert isinstance(registry.refresh, ConnectionLoader)
    return Runtime(
        settings=settings.hub,
        db=database,
        connectors=registry,
        connector_settings=settings.connectors,
        lend=registry.refresh.lend,
    )
