"""Everything a request or a job needs, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.registry import Registry
from hub.config import HubSettings
from hub.db import Database


@dataclass
class Runtime:
    settings: HubSettings
    db: Database
    connectors: Registry
