"""Operations: liveness, readiness, Prometheus metrics, and the state machine itself."""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from hub.admin import metrics
from hub.admin.diagram import state_machine_svg
from hub.deps import RuntimeDep, require_admin
from hub.errors import ApiError
from hub.runtime import Runtime
from state_machines.order import describe

router = APIRouter(tags=["operations"])
# Apart from the rest, so that with HUB_METRICS_PORT set it is served on that port alone.
metrics_router = APIRouter(tags=["operations"])
# A worker's own counters (`hub worker --metrics-port`): no database figures, which the API's
# /metrics serves, so scraping each worker adds no query.
process_metrics_router = APIRouter(tags=["operations"])

metrics_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="metrics_token",
    description="HUB_METRICS_TOKEN, when it is set.",
)


class Transition(BaseModel):
    trigger: str
    source: str
    dest: str
    guard: str | None


class StateMachine(BaseModel):
    """The order state machine, read from the one `transitions` Machine the hub runs."""

    states: list[str]
    initial: str
    terminal: list[str]
    transitions: list[Transition]


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The database is unreachable"}})
def readyz(runtime: RuntimeDep) -> dict[str, str]:
    """The database answers."""
    try:
        with runtime.db.reader() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        raise ApiError(503, "database_unavailable", type(exc).__name__) from None
    return {"status": "ready"}


def require_metrics_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(metrics_bearer)],
) -> None:
    """FastAPI dependency: with HUB_METRICS_TOKEN set, 401 unless the request carries it."""
    runtime: Runtime = request.app.state.runtime
    wanted = runtime.settings.metrics_token
    if wanted is None:
        return
    given = credentials.credentials.strip() if credentials is not None else ""
    if not given:
        raise ApiError(401, "unauthenticated", "a metrics bearer token is required")
    # Constant time: how long a wrong guess takes says nothing about how much of it was right.
    if not hmac.compare_digest(given.encode(), wanted.get_secret_value().encode()):
        raise ApiError(401, "unauthenticated", "the metrics bearer token is not valid")


@metrics_router.get(
    "/metrics",
    dependencies=[Depends(require_metrics_token)],
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"},
        401: {"description": "HUB_METRICS_TOKEN is set and the request does not carry it"},
    },
)
async def metrics_endpoint(runtime: RuntimeDep) -> Response:
    """Prometheus text format: this process's event counters, plus the hub's figures (orders,
    jobs, attention, reconciliation) read from the database now."""
    body = await run_in_threadpool(metrics.render, runtime.db)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@process_metrics_router.get(
    "/metrics",
    dependencies=[Depends(require_metrics_token)],
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"},
        401: {"description": "HUB_METRICS_TOKEN is set and the request does not carry it"},
    },
)
def process_metrics_endpoint() -> Response:
    """Prometheus text format: this process's event counters (jobs run, their times)."""
    return Response(metrics.render_process(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/admin/state-machine",
    dependencies=[Depends(require_admin)],
    tags=["orders"],
    response_model=StateMachine,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
def state_machine(format: Literal["json", "svg"] = "json") -> StateMachine | Response:
    """The order state machine as data, or as an SVG diagram (`?format=svg`) drawn from the
    same Machine."""
    machine = describe()
    if format == "svg":
        return Response(state_machine_svg(machine), media_type="image/svg+xml")
    return StateMachine.model_validate(machine)
