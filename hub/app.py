"""The FastAPI application: webhooks in, admin API, operations endpoints; and, when embedded,
the worker and the scheduler running beside it in the same process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import hub.tasks  # noqa: F401  (loads every domain)
from hub import console, errors
from hub.admin import openapi
from hub.admin.audit import router as audit_router
from hub.admin.endpoints import metrics_router, process_metrics_router
from hub.admin.endpoints import router as ops_router
from hub.admin.orders import router as orders_router
from hub.connections.endpoints import router as connections_router
from hub.connections.signin_endpoints import admin_router as sign_in_router
from hub.connections.signin_endpoints import callback_router as sign_in_callback_router
from hub.fulfilment.endpoints import router as routing_router
from hub.inbox.endpoints import admin_router as events_router
from hub.inbox.endpoints import deliveries_router
from hub.inbox.endpoints import router as webhook_router
from hub.inventory.endpoints import router as stock_router
from hub.jobs.endpoints import router as jobs_router
from hub.jobs.scheduler import Scheduler
from hub.jobs.worker import Worker
from hub.limits import MAX_BODY, RequestBodyLimit
from hub.reconcile.endpoints import router as reconcile_router
from hub.requestlog import RequestContext
from hub.runtime import Runtime

DESCRIPTION = """
Every order from every channel, received once, fulfilled once, tracked back to the buyer,
never oversold.

* **Webhooks** (`/webhooks/{channel}`) are authenticated by each channel's own scheme.
* **Admin** (`/admin/...`) needs `Authorization: Bearer <token>` (HUB_ADMIN_TOKENS).
* Errors are always `{"error": "<code>", "detail": "<sentence>"}`.
* Every response carries `X-Request-ID` (yours, when you send one).
* A change may say why in `X-Audit-Reason`; the audit log keeps it with the token's name.
* The operator console is at [/console](/console).
"""


def create_app(runtime: Runtime, *, worker: bool = False, scheduler: bool = False) -> FastAPI:
    """The hub's API over `runtime`; `worker`/`scheduler` run those in-process too. `/metrics`
    is part of it unless HUB_METRICS_PORT gives it a port of its own (`create_metrics_app`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running_worker = Worker(runtime, runtime.settings.worker_concurrency) if worker else None
        running_scheduler = Scheduler(runtime) if scheduler else None
        if running_worker:
            running_worker.start()
        if running_scheduler:
            running_scheduler.start()
        try:
            yield
        finally:
            if running_scheduler:
                running_scheduler.stop()
            if running_worker:
                running_worker.stop()

    app = FastAPI(
        title="Order hub",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by the console with vendored assets, so they work without internet.
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    errors.install(app)
    openapi.install(app)
    # Every request body, not only a webhook's, is refused past 1 MiB as it streams in.
    app.add_middleware(RequestBodyLimit, max_bytes=MAX_BODY)
    # Outermost: the request id covers every line logged and every answer, a 413 included.
    app.add_middleware(RequestContext)
    for router in (
        webhook_router,
        ops_router,
        orders_router,
        jobs_router,
        events_router,
        deliveries_router,
        audit_router,
        stock_router,
        routing_router,
        reconcile_router,
        connections_router,
        sign_in_router,
        sign_in_callback_router,
    ):
        app.include_router(router)
    if runtime.settings.metrics_port is None:
        app.include_router(metrics_router)
    console.install(app)
    return app


def create_metrics_app(runtime: Runtime) -> FastAPI:
    """`/metrics` alone, for HUB_METRICS_PORT: scrapers reach it without reaching the API."""
    app = FastAPI(title="Order hub metrics", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = runtime
    errors.install(app)
    app.include_router(metrics_router)
    return app


def create_worker_metrics_app(runtime: Runtime) -> FastAPI:
    """A worker's own counters on `hub worker --metrics-port`, behind HUB_METRICS_TOKEN like
    the hub's `/metrics`."""
    app = FastAPI(title="Order hub worker metrics", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = runtime
    errors.install(app)
    app.include_router(process_metrics_router)
    return app
