"""Admin endpoints for reconciliation: start a run, read what it found."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.registry import DEFAULT, connection_key, name_of, system_of
from hub import audit
from hub.deps import Actor, ActorDep, ReaderDep, RuntimeDep, require_admin
from hub.errors import ApiError
from hub.reconcile import repository as repo
from hub.reconcile import service
from hub.runtime import Runtime

router = APIRouter(
    prefix="/admin/reconcile", tags=["reconciliation"], dependencies=[Depends(require_admin)]
)


class ReconcileIn(BaseModel):
    """The window to read; either end may be left out (from: the last run's end less the
    overlap; to: now)."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "example": {"from": "2026-11-20T00:00:00Z", "to": "2026-11-23T00:00:00Z"}
        },
    )

    window_from: datetime | None = Field(default=None, alias="from")
    window_to: datetime | None = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> ReconcileIn:
        for value in (self.window_from, self.window_to):
            if value is not None and value.tzinfo is None:
                raise ValueError("times need a UTC offset, e.g. 2026-11-23T00:00:00Z")
        if self.window_from and self.window_to and self.window_from >= self.window_to:
            raise ValueError("'from' must be before 'to'")
        return self


class RunQueued(BaseModel):
    run_id: str


class RunPublic(BaseModel):
    """A run: `state` is queued, running, retrying (an attempt failed; the job tries again),
    done or failed. Each mismatch says what the channel showed and what the hub did."""

    id: str
    channel: str
    connection: str
    state: str
    window_from: datetime
    window_to: datetime
    seen: int
    created: int
    updated: int
    mismatches: list[dict[str, Any]]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunPage(BaseModel):
    data: list[RunPublic]
    next_cursor: str | None


_NOT_CONFIGURED: dict[int | str, dict[str, Any]] = {404: {"description": "Channel not configured"}}
_BAD_WINDOW: dict[int | str, dict[str, Any]] = {
    422: {"description": "The window is empty, inverted or not in UTC"}
}


@router.post(
    "/{channel}", response_model=RunQueued, status_code=202, responses=_NOT_CONFIGURED | _BAD_WINDOW
)
def start(
    channel: str, runtime: RuntimeDep, actor: ActorDep, body: ReconcileIn | None = None
) -> RunQueued:
    """Queue a reconciliation of `channel`'s default connection over a window (default: since
    the last run)."""
    return _start(connection_key(channel), runtime, actor, body)


@router.post(
    "/{system}/{connection}",
    response_model=RunQueued,
    status_code=202,
    responses=_NOT_CONFIGURED | _BAD_WINDOW,
)
def start_connection(
    system: str,
    connection: str,
    runtime: RuntimeDep,
    actor: ActorDep,
    body: ReconcileIn | None = None,
) -> RunQueued:
    """Queue a reconciliation of the channel connection `system/connection` over a window
    (default: since that connection's last run)."""
    return _start(connection_key(system, connection), runtime, actor, body)


def _start(key: str, runtime: Runtime, actor: Actor, body: ReconcileIn | None) -> RunQueued:
    channel = key
    if not runtime.connectors.has_channel(key):
        if name_of(key) == DEFAULT:
            raise ApiError(
                404, "channel_not_configured", f"channel {system_of(key)!r} is not configured"
            )
        raise ApiError(
            404, "connection_not_configured", f"connection {key!r} is not an enabled channel"
        )
    body = body or ReconcileIn()
    try:
        with runtime.db.transaction() as session:
            run = service.start_run(
                session,
                runtime.settings,
                channel,
                window_from=body.window_from,
                window_to=body.window_to,
            )
            assert run is not None, "a run without a key is always new"
            audit.record(session, actor, "reconcile.start", f"{channel} {run.id}")
            return RunQueued(run_id=run.id)
    except service.InvalidWindow as exc:
        raise ApiError(422, "invalid_window", str(exc)) from None


@router.get("/runs", response_model=RunPage)
def list_runs(
    session: ReaderDep,
    channel: str | None = None,
    connection: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RunPage:
    """Runs newest first, scheduled and on demand. Pass `next_cursor` back as `cursor`."""
    rows = repo.recent(
        session, channel=channel, connection=connection, before_id=cursor, limit=limit + 1
    )
    page = [RunPublic.model_validate(run, from_attributes=True) for run in rows[:limit]]
    return RunPage(data=page, next_cursor=page[-1].id if len(rows) > limit else None)


@router.get(
    "/runs/{run_id}", response_model=RunPublic, responses={404: {"description": "No such run"}}
)
def get_run(run_id: str, session: ReaderDep) -> RunPublic:
    """One run: its window, its counts, and every mismatch with what was done about it."""
    run = repo.get(session, run_id)
    if run is None:
        raise ApiError(404, "run_not_found", f"reconciliation run {run_id} not found")
    return RunPublic.model_validate(run, from_attributes=True)
