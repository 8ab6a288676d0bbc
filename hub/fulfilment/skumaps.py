"""Providers' SKU maps kept in the database (`connectors.base.SkuMapStore`), so every process
and the next start share the map the last refresh read; each call is its own transaction."""

from __future__ import annotations

from collections.abc import Mapping

from hub.db import Database
from hub.fulfilment import repository as repo


class DatabaseSkuMaps:
    """`SkuMapStore` on the hub's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def load(self, provider: str) -> Mapping[str, str]:
        with self._db.reader() as session:
            return repo.sku_map(session, provider)

    def replace(self, provider: str, mapping: Mapping[str, str]) -> None:
        with self._db.transaction() as session:
            repo.replace_sku_map(session, provider, mapping)
