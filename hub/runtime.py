"""Everything a request or a job needs, built once per process."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.connector import Lent
from connectors.registry import Registry
from hub.config import HubSettings
from hub.db import Database


@dataclass
class Runtime:
    settings: HubSettings
    db: Database
    connectors: Registry
    # Each system's environment settings: its default connection's, which also hold the hub's
    # own OAuth app a sign-in starts from (`hub.connections.signin`).
    connector_settings: Mapping[str, Any] = field(default_factory=dict)
    # What this process lends the connector of connection `key`: its scoped token store, its
    # HTTP client, the rate limiter, and how it flags the connection. None when built without
    # `hub.wiring` (a bare test runtime).
    lend: Callable[[str], Lent] | None = None
