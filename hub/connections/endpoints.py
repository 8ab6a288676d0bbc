"""Admin endpoints for connections: list, create, change, switch off and check them, and the
SKUs a channel connection does not sell."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from connectors.registry import connection_key
from hub import audit
from hub.connections import repository as repo
from hub.connections import service
from hub.connections.models import Connection
from hub.connections.schemas import (
    ConnectionChange,
    ConnectionCheck,
    ConnectionIn,
    ConnectionList,
    ConnectionPublic,
    ExcludedSkus,
)
from hub.deps import ActorDep, ReaderDep, RuntimeDep, require_admin
from hub.runtime import Runtime
from hub.secrets import SecretBox, box_for

router = APIRouter(
    prefix="/admin/connections", tags=["connections"], dependencies=[Depends(require_admin)]
)

System = Annotated[str, Path(max_length=32)]
Name = Annotated[str, Path(max_length=63)]
Sku = Annotated[str, Path(min_length=1, max_length=128)]
_NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "No such connection"}}


def _box(runtime: Runtime, row: Connection | None = None) -> SecretBox | None:
    """The keys, when a sealed value is to be read or written (none are needed otherwise)."""
    if row is not None and not row.secrets:
        return None
    return box_for(runtime.settings)


def _present(runtime: Runtime, row: Connection) -> ConnectionPublic:
    connector = service.connector_of(row.system)
    active = row.key in runtime.connectors.channels or row.key in runtime.connectors.providers
    return ConnectionPublic.model_validate(
        service.public(row, connector.role, _box(runtime, row), active)
    )


@router.get("", response_model=ConnectionList)
def list_connections(
    session: ReaderDep,
    runtime: RuntimeDep,
    system: Annotated[str | None, Query(max_length=32)] = None,
) -> ConnectionList:
    """Every connection, by key: each system's `default` (its environment variables) and those
    created here or by an OAuth sign-in."""
    rows = [r for r in repo.everything(session) if system is None or r.system == system]
    return ConnectionList(data=[_present(runtime, r) for r in rows if _known(r)])


def _known(row: Connection) -> bool:
    try:
        service.connector_of(row.system)
    except service.ConnectionInvalid:
        return False  # a system this version no longer has: its rows stay, unshown
    return True


@router.post(
    "",
    response_model=ConnectionPublic,
    status_code=201,
    responses={409: {"description": "It exists"}, 422: {"description": "Bad settings"}},
)
def create_connection(body: ConnectionIn, runtime: RuntimeDep, actor: ActorDep) -> ConnectionPublic:
    """A new account on a system. Its connector is built at once in this process and within
    HUB_CONNECTIONS_REFRESH_SECONDS in every other; its webhooks go to `webhook_path`."""
    service.connector_of(body.system)
    box = box_for(runtime.settings)
    with runtime.db.transaction() as session:
        row = service.create(
            session,
            box,
            system=body.system,
            name=body.name,
            values=body.settings,
            enabled=body.enabled,
        )
        audit.record(
            session,
            actor,
            "connection.create",
            row.key,
            detail={"settings": sorted(body.settings), "enabled": body.enabled},
        )
    runtime.connectors.reload()
    return _reread(runtime, row.key)


def _reread(runtime: Runtime, key: str) -> ConnectionPublic:
    with runtime.db.reader() as session:
        return _present(runtime, service.get(session, key))


@router.get("/{system}/{name}", response_model=ConnectionPublic, responses=_NOT_FOUND)
def get_connection(system: System, name: Name, runtime: RuntimeDep) -> ConnectionPublic:
    return _reread(runtime, connection_key(system, name))


@router.patch(
    "/{system}/{name}",
    response_model=ConnectionPublic,
    responses=_NOT_FOUND | {422: {"description": "Bad settings"}},
)
def change_connection(
    system: System, name: Name, body: ConnectionChange, runtime: RuntimeDep, actor: ActorDep
) -> ConnectionPublic:
    """Change some settings (null removes one) or switch the connection on or off. A switched
    off connection's webhooks answer 404 and no job calls it; its orders stay."""
    key = connection_key(system, name)
    with runtime.db.transaction() as session:
        row = service.update(
            session,
            box_for(runtime.settings) if body.settings else None,
            key,
            values=body.settings,
            enabled=body.enabled,
        )
        audit.record(
            session,
            actor,
            "connection.change",
            row.key,
            detail={"settings": sorted(body.settings or {}), "enabled": body.enabled},
        )
    runtime.connectors.reload()
    return _reread(runtime, key)


@router.post("/{system}/{name}/check", response_model=ConnectionCheck, responses=_NOT_FOUND)
async def check_connection(system: System, name: Name, runtime: RuntimeDep) -> ConnectionCheck:
    """Make one harmless call with the connection's credentials and say whether it worked: a
    channel lists its orders of the last minute, a provider reads an order that does not
    exist."""
    key = connection_key(system, name)
    with runtime.db.reader() as session:
        service.get(session, key)
    result = await run_in_threadpool(service.check, runtime, key)
    return ConnectionCheck(ok=result.ok, detail=result.detail)


@router.get("/{system}/{name}/excluded-skus", response_model=ExcludedSkus, responses=_NOT_FOUND)
def excluded_skus(system: System, name: Name, session: ReaderDep) -> ExcludedSkus:
    """The SKUs this channel connection does not sell: its listings of them are never
    changed, while every other connection shares their stock."""
    key = connection_key(system, name)
    service.get(session, key)
    return ExcludedSkus(skus=repo.exclusions(session, key))


@router.put(
    "/{system}/{name}/excluded-skus/{sku}", response_model=ExcludedSkus, responses=_NOT_FOUND
)
def exclude_sku(
    system: System, name: Name, sku: Sku, runtime: RuntimeDep, actor: ActorDep
) -> ExcludedSkus:
    key = connection_key(system, name)
    with runtime.db.transaction() as session:
        service.get(session, key)
        if repo.exclude(session, key, sku):
            audit.record(session, actor, "connection.exclude_sku", key, detail={"sku": sku})
        return ExcludedSkus(skus=repo.exclusions(session, key))


@router.delete(
    "/{system}/{name}/excluded-skus/{sku}", response_model=ExcludedSkus, responses=_NOT_FOUND
)
def include_sku(
    system: System, name: Name, sku: Sku, runtime: RuntimeDep, actor: ActorDep
) -> ExcludedSkus:
    key = connection_key(system, name)
    with runtime.db.transaction() as session:
        service.get(session, key)
        if repo.include(session, key, sku):
            audit.record(session, actor, "connection.include_sku", key, detail={"sku": sku})
        return ExcludedSkus(skus=repo.exclusions(session, key))
