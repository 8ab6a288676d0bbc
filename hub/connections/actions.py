"""Units of work on connections, shared by the admin API and the console: each opens its own
transaction, records the audit row (the settings named, never their values) and, after the
commit, has this process's registry read the connections again (the others follow within
HUB_CONNECTIONS_REFRESH_SECONDS)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub import audit
from hub.connections import repository as connections_repo
from hub.connections import service as connections
from hub.deps import Actor
from hub.runtime import Runtime
from hub.secrets import box_for


def create(
    runtime: Runtime,
    actor: Actor,
    system: str,
    name: str,
    values: Mapping[str, Any],
    enabled: bool,
) -> str:
    """A new connection; its key."""
    connections.connector_of(system)
    with runtime.db.transaction() as session:
        row = connections.create(
            session,
            box_for(runtime.settings),
            system=system,
            name=name,
            values=values,
            enabled=enabled,
        )
        audit.record(
            session,
            actor,
            "connection.create",
            row.key,
            detail={"settings": sorted(values), "enabled": enabled},
        )
        key = row.key
    runtime.connectors.reload()
    return key


def change(
    runtime: Runtime,
    actor: Actor,
    key: str,
    values: Mapping[str, Any] | None = None,
    enabled: bool | None = None,
) -> None:
    """Change some settings of a connection (null removes one) or switch it on or off."""
    with runtime.db.transaction() as session:
        row = connections.update(
            session,
            box_for(runtime.settings) if values else None,
            key,
            values=values,
            enabled=enabled,
        )
        audit.record(
            session,
            actor,
            "connection.change",
            row.key,
            detail={"settings": sorted(values or {}), "enabled": enabled},
        )
    runtime.connectors.reload()


def exclude_sku(runtime: Runtime, actor: Actor, key: str, sku: str) -> bool:
    """The channel connection `key` stops selling `sku`; False if it already did not."""
    with runtime.db.transaction() as session:
        connections.get(session, key)
        if not connections_repo.exclude(session, key, sku):
            return False
        audit.record(session, actor, "connection.exclude_sku", key, detail={"sku": sku})
        return True


def include_sku(runtime: Runtime, actor: Actor, key: str, sku: str) -> bool:
    """The channel connection `key` sells `sku` again; False if it was not excluded."""
    with runtime.db.transaction() as session:
        connections.get(session, key)
        if not connections_repo.include(session, key, sku):
            return False
        audit.record(session, actor, "connection.include_sku", key, detail={"sku": sku})
        return True
