"""The console's Connections pages: every account on every system, a form per connector built
from its settings class, and the changes an operator makes to one connection. Each change goes
through `hub.connections.service` (via `actions`), exactly as the admin API's does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, get_args, get_origin

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from connectors.catalog import CONNECTORS
from connectors.connector import Connector
from connectors.registry import connection_key
from hub.connections import actions as connection_actions
from hub.connections import repository as connections_repo
from hub.connections import service as connections
from hub.connections import signin
from hub.connections.models import Connection, Source
from hub.console.endpoints import attempt, back, render
from hub.console.session import ConsoleSession, SessionDep, WriterDep
from hub.deps import ReaderDep, RuntimeDep
from hub.errors import DomainError
from hub.runtime import Runtime

router = APIRouter(prefix="/console/connections", include_in_schema=False)

# A setting's form field is named with this prefix, so no setting can collide with the form's
# own fields (csrf, name, system).
PREFIX = "s_"
CLEAR = "clear_"  # a ticked box of this name removes the secret it names


@dataclass(frozen=True, slots=True)
class SettingField:
    """One setting of a connector, as its form shows it."""

    name: str
    secret: bool
    kind: str  # text, json (a mapping), list (comma-separated), choice
    default: str  # the default as text, shown as a hint ("" when there is none)
    choices: tuple[str, ...] = ()


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, list | tuple):
        return ", ".join(_as_text(v) for v in value)
    return str(value)


def _kind(annotation: Any) -> tuple[str, tuple[str, ...]]:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, Enum):
            return "choice", tuple(str(member.value) for member in candidate)
    origin = get_origin(annotation)
    if origin is dict or annotation is dict:
        return "json", ()
    if origin is list:
        return "list", ()
    return "text", ()


def setting_fields(connector: Connector[Any]) -> list[SettingField]:
    """The connector's settings in the order its settings class declares them; the secrets
    are those `hub.connections.service.secret_fields` names."""
    secret = connections.secret_fields(connector)
    fields = []
    settings_class = connector.settings
    assert isinstance(settings_class, type) and issubclass(settings_class, BaseModel)
    for name, info in settings_class.model_fields.items():
        default = info.get_default(call_default_factory=True)
        kind, choices = _kind(info.annotation)
        fields.append(
            SettingField(
                name=name,
                secret=name in secret,
                kind=kind,
                default="" if name in secret else _as_text(default),
                choices=choices,
            )
        )
    return fields


def _parse(field: SettingField, text: str) -> Any:
    """A setting's value from its form field's text (never echoed: it may be a secret)."""
    if field.kind == "json":
        try:
            value = json.loads(text)
        except ValueError:
            raise connections.ConnectionInvalid(
                f'{field.name} is not JSON; write an object like {{"dhl": "DHL"}}'
            ) from None
        if not isinstance(value, dict):
            raise connections.ConnectionInvalid(f"{field.name} must be a JSON object")
        return value
    if field.kind == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _given(form: FormData, fields: list[SettingField]) -> dict[str, str]:
    """The settings' texts as typed, stripped; blank ones left out."""
    given = {}
    for field in fields:
        raw = form.get(PREFIX + field.name)
        text = raw.strip() if isinstance(raw, str) else ""
        if text:
            given[field.name] = text
    return given


def _connector(system: str) -> Connector[Any] | None:
    return next((c for c in CONNECTORS if c.name == system), None)


def _present(runtime: Runtime, row: Connection) -> dict[str, Any]:
    """A connection as the admin API shows it (secrets named, never shown)."""
    return connections.public(runtime, row)


def _listing(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.db.reader() as session:
        rows = list(connections_repo.everything(session))
    return [_present(runtime, row) for row in rows if _connector(row.system) is not None]


@router.get("", response_class=HTMLResponse)
def connections_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    connected: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    listing = _listing(runtime)
    return render(
        request,
        session,
        "connections.html",
        section="connections",
        connections=listing,
        systems=[(c.name, c.role.value) for c in CONNECTORS],
        sign_ins=signin.systems(runtime),
        # The sign-in's callback sends the browser here naming what it connected; only a real
        # key is shown.
        connected=connected if connected in {c["key"] for c in listing} else None,
    )


def _new_page(
    request: Request,
    session: ConsoleSession,
    system: str,
    *,
    name: str = "",
    typed: dict[str, str] | None = None,
    enabled: bool = True,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    connector = _connector(system)
    if connector is None:
        return render(
            request,
            session,
            "missing.html",
            section="connections",
            what=f"a system named {system}",
            status_code=404,
        )
    fields = setting_fields(connector)
    # A secret typed before an error is never sent back: the operator types it again.
    kept = {k: v for k, v in (typed or {}).items() if k not in {f.name for f in fields if f.secret}}
    return render(
        request,
        session,
        "connection_new.html",
        section="connections",
        system=system,
        role=connector.role.value,
        fields=fields,
        name=name,
        values=kept,
        enabled=enabled,
        error=error,
        prefix=PREFIX,
        status_code=status_code,
    )


@router.get("/new", response_class=HTMLResponse)
def new_connection_page(
    request: Request, session: SessionDep, system: str | None = None
) -> HTMLResponse:
    # Without a system named, the catalogue's first.
    return _new_page(request, session, (system or CONNECTORS[0].name)[:32])


@router.post("", response_model=None)
async def create_connection(
    request: Request, runtime: RuntimeDep, session: SessionDep, actor: WriterDep
) -> Response:
    form = await request.form()  # read once already for the CSRF token: kept by the request
    system = str(form.get("system") or "")[:32]
    # Not cut short: a name too long is refused by the service, never silently shortened.
    name = str(form.get("name") or "").strip()
    enabled = form.get("enabled") == "on"
    connector = _connector(system)
    if connector is None:
        return _new_page(request, session, system, status_code=404)
    fields = setting_fields(connector)
    typed = _given(form, fields)
    try:
        values = {f.name: _parse(f, typed[f.name]) for f in fields if f.name in typed}
        key = await run_in_threadpool(
            connection_actions.create, runtime, actor, system, name, values, enabled
        )
    except DomainError as exc:
        return _new_page(
            request,
            session,
            system,
            name=name,
            typed=typed,
            enabled=enabled,
            error=f"Not created: {exc}",
            status_code=exc.status,
        )
    return back(request, f"/console/connections/{key}", f"Connection {key} created.")


def _row(runtime: Runtime, key: str) -> Connection | None:
    with runtime.db.reader() as session:
        return connections_repo.get(session, key)


@router.get("/{system}/{name}", response_class=HTMLResponse)
def connection_page(
    system: str,
    name: str,
    request: Request,
    session: SessionDep,
    reader: ReaderDep,
    runtime: RuntimeDep,
) -> HTMLResponse:
    key = connection_key(system, name)
    row = connections_repo.get(reader, key)
    connector = _connector(system)
    if row is None or connector is None:
        return render(
            request,
            session,
            "missing.html",
            section="connections",
            what=f"connection {key}",
            status_code=404,
        )
    shown = _present(runtime, row)
    return render(
        request,
        session,
        "connection.html",
        section="connections",
        c=shown,
        fields=setting_fields(connector),
        values={k: _as_text(v) for k, v in shown["settings"].items()},
        editable=row.source != Source.ENV,
        excluded=connections_repo.exclusions(reader, key),
        prefix=PREFIX,
    )


@router.post("/{system}/{name}/settings", response_model=None)
async def change_settings(
    system: str, name: str, request: Request, runtime: RuntimeDep, actor: WriterDep
) -> Response:
    """Settings as typed: a blank secret keeps the one stored unless its "remove" box is
    ticked, a cleared setting goes back to its default, and only what differs from the stored
    settings is sent."""
    form = await request.form()
    key = connection_key(system, name)
    to = f"/console/connections/{key}"
    connector = _connector(system)
    row = await run_in_threadpool(_row, runtime, key)
    if connector is None or row is None:
        return back(request, "/console/connections", f"Not done: no connection {key}")
    fields = setting_fields(connector)
    typed = _given(form, fields)
    stored = {k: _as_text(v) for k, v in (row.settings or {}).items()}
    try:
        values: dict[str, Any] = {}
        for field in fields:
            text = typed.get(field.name)
            if field.secret:
                if text:
                    values[field.name] = _parse(field, text)
                elif form.get(CLEAR + field.name) == "on":
                    values[field.name] = None
            elif PREFIX + field.name not in form:
                continue  # not on the form posted: left as it is
            elif text is None:
                if field.name in stored:
                    values[field.name] = None
            elif text != stored.get(field.name, field.default):
                values[field.name] = _parse(field, text)
        if not values:
            return back(request, to, "Nothing changed.")
        await run_in_threadpool(connection_actions.change, runtime, actor, key, values)
    except DomainError as exc:
        return back(request, to, f"Not changed: {exc}")
    return back(request, to, f"Settings changed: {', '.join(sorted(values))}.")


@router.post("/{system}/{name}/enabled")
def switch(
    system: str,
    name: str,
    request: Request,
    runtime: RuntimeDep,
    actor: WriterDep,
    enabled: Annotated[str, Form(pattern="^(on|off)$")],
) -> RedirectResponse:
    key = connection_key(system, name)
    on = enabled == "on"
    return attempt(
        request,
        f"/console/connections/{key}",
        lambda: connection_actions.change(runtime, actor, key, enabled=on),
        f"{key} {'enabled' if on else 'disabled'}.",
    )


@router.post("/{system}/{name}/check")
def check(
    system: str, name: str, request: Request, runtime: RuntimeDep, actor: WriterDep
) -> RedirectResponse:
    """One harmless call with the connection's credentials (`service.check`); its answer
    shown once on the connection's page."""
    key = connection_key(system, name)
    to = f"/console/connections/{key}"
    if _row(runtime, key) is None:
        return back(request, "/console/connections", f"Not done: no connection {key}")
    result = connections.check(runtime, key)
    verdict = "Check passed" if result.ok else "Check failed"
    return back(request, to, f"{verdict}: {result.detail}.")


Sku = Annotated[str, Form(min_length=1, max_length=128)]


@router.post("/{system}/{name}/excluded-skus")
def exclude(
    system: str, name: str, request: Request, runtime: RuntimeDep, actor: WriterDep, sku: Sku
) -> RedirectResponse:
    key = connection_key(system, name)
    sku = sku.strip()
    done: list[bool] = []
    response = attempt(
        request,
        f"/console/connections/{key}",
        lambda: done.append(connection_actions.exclude_sku(runtime, actor, key, sku)),
        "",
    )
    if done:
        message = f"{key} no longer sells {sku}." if done[0] else f"{key} already skips {sku}."
        return back(request, f"/console/connections/{key}", message)
    return response


@router.post("/{system}/{name}/excluded-skus/remove")
def include(
    system: str, name: str, request: Request, runtime: RuntimeDep, actor: WriterDep, sku: Sku
) -> RedirectResponse:
    key = connection_key(system, name)
    done: list[bool] = []
    response = attempt(
        request,
        f"/console/connections/{key}",
        lambda: done.append(connection_actions.include_sku(runtime, actor, key, sku)),
        "",
    )
    if done:
        message = f"{key} sells {sku} again." if done[0] else f"{key} did not skip {sku}."
        return back(request, f"/console/connections/{key}", message)
    return response
