"""Operations: liveness, readiness, Prometheus metrics, and the state machine itself."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from hub.admin.auth import require_admin
from hub.admin.diagram import state_machine_svg
from hub.deps import RuntimeDep
from hub.errors import ApiError
from hub.jobs import queue
from hub.orders import repository as orders_repo
from hub.runtime import Runtime
from state_machines.order import describe

router = APIRouter(tags=["operations"])

ORDERS = Gauge("hub_orders", "Orders by channel and state", ["channel", "state"])
JOBS = Gauge("hub_jobs", "Jobs by kind and state", ["kind", "state"])
ATTENTION = Gauge("hub_orders_needing_attention", "Orders flagged for a person")


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


def _refresh_gauges(runtime: Runtime) -> None:
    with runtime.db.reader() as session:
        ORDERS.clear()
        for channel, state, n in orders_repo.counts_by_channel_and_status(session):
            ORDERS.labels(channel, state).set(n)
        JOBS.clear()
        for kind, state, n in queue.counts_by_kind_and_state(session):
            JOBS.labels(kind, state).set(n)
        ATTENTION.set(orders_repo.attention_count(session))


@router.get("/metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text format: event counters plus database gauges read at scrape time."""
    await run_in_threadpool(_refresh_gauges, runtime)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/admin/state-machine",
    dependencies=[Depends(require_admin)],
    tags=["orders"],
    responses={200: {"content": {"image/svg+xml": {}}}},
)
def state_machine(format: Literal["json", "svg"] = "json") -> Any:
    """The order state machine as data, or as an SVG diagram drawn from the same Machine."""
    if format == "svg":
        return Response(state_machine_svg(describe()), media_type="image/svg+xml")
    return describe()
