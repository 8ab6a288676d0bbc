"""Reconciliation: orders/s and pages/s through one Depop reconciliation run on Postgres.

The Depop simulator holds 10,000 orders whose webhooks never arrived; the hub lists them in
pages of 200 (Depop's cap) through the real connector and httpx client, and takes each through
the same intake as a webhook. Two runs are timed:

- every order missing: each is created, its stock policy applied and its routing queued;
- every order known: each is looked up and compared, and nothing changes (the daily case).

Only the reconciliation job is timed; the routing jobs it queues are left unrun.

Environment: HUB_BENCH_POSTGRES_URL (default: HUB_TEST_POSTGRES_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/test), an admin URL under which a scratch database
is created and dropped. Without Postgres the benchmark reports that it was skipped.
"""

from __future__ import annotations

import time
from datetime import timedelta

from bench.support import postgres_database

ORDERS = 10_000
PAGE = 200
API_KEY = "bench-depop-api-key"
SECRET = "bench-depop-webhook-secret"
HOST = "https://partnerapi.depop.com"


def _timed_run(url: str, case: str) -> list[dict[str, object]]:
    """One hub over `url` and a Depop simulator holding ORDERS unheard-of orders; two runs."""
    from fastapi.testclient import TestClient
    from pydantic import SecretStr
    from sqlalchemy import update
    from sqlmodel import col

    import hub.tasks  # noqa: F401  (registers the reconciliation job)
    from connectors.depop import DepopSettings
    from connectors.depop.simulator import DepopSimulator
    from hub.config import HubSettings, Settings
    from hub.jobs.models import Job
    from hub.jobs.worker import run_one
    from hub.reconcile import repository as runs
    from hub.reconcile import service
    from hub.types import utcnow
    from hub.wiring import build_runtime

    depop = DepopSimulator(api_key=API_KEY, webhook_secret=SECRET)  # no webhook target: lost
    depop.add_product("BENCH-TEE", quantity=ORDERS)
    for _ in range(ORDERS):
        depop.purchase("BENCH-TEE")
    http = TestClient(depop.app, base_url=HOST)
    settings = Settings(
        HubSettings(database_url=url, admin_tokens=[SecretStr("bench")]),
        depop=DepopSettings(
            base_url=HOST, api_key=SecretStr(API_KEY), webhook_secret=SecretStr(SECRET)
        ),
    )
    runtime = build_runtime(settings, http={"depop": http})
    rows: list[dict[str, object]] = []
    try:
        for label in ("all missing (created)", "all known (nothing changes)"):
            with runtime.db.transaction() as session:
                run = service.start_run(session, runtime.settings, "depop")
                assert run is not None
                run_id = run.id
                # Ahead of the routing jobs the first run queued (left unrun: not measured).
                session.execute(
                    update(Job)
                    .where(col(Job.idempotency_key) == f"reconcile:{run_id}")
                    .values(run_at=utcnow() - timedelta(days=1))
                )
            pages_before = len(depop.calls_to("GET", "/api/v1/orders/"))
            started = time.perf_counter()
            assert run_one(runtime, "bench")
            elapsed = time.perf_counter() - started
            pages = len(depop.calls_to("GET", "/api/v1/orders/")) - pages_before
            with runtime.db.reader() as session:
                done = runs.get(session, run_id)
                assert done is not None
                assert done.state == "done", (done.state, done.error)
                seen, created = done.seen, done.created
            rows.append(
                {
                    "case": f"{case}: {label}",
                    "orders": seen,
                    "created": created,
                    "pages": pages,
                    "seconds": round(elapsed, 2),
                    "value": round(seen / elapsed, 1),
                    "unit": "orders/s",
                    "pages_per_s": round(pages / elapsed, 2),
                }
            )
    finally:
        http.close()
        runtime.db.dispose()
    return rows


def run() -> list[dict[str, object]]:
    """The benchmark's rows (see `bench/__main__.py` for the row convention)."""
    from hub.logging import configure_logging

    # One log line per order would measure the terminal, not the hub.
    configure_logging("json", "warning")
    with postgres_database("reconcile") as url:
        if url is None:
            return [{"case": "postgres: skipped (unreachable)", "value": None}]
        return _timed_run(url, "postgres")


if __name__ == "__main__":
    from bench.__main__ import print_table

    print_table(run())
