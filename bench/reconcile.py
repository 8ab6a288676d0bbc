"""Reconciliation: orders/s through one Depop reconciliation run on Postgres, beside a
set-based floor in raw psycopg on the same schema, in the same run.

The Depop simulator holds 10,000 orders whose webhooks never arrived and is served by uvicorn
in a process of its own; the hub lists them in pages of 200 (Depop's cap) through the real
connector and httpx client over loopback, and takes each through the same intake as a webhook.
Two runs are timed:

- every order missing: each is created, its stock policy applied and its routing queued;
- every order known: each is looked up and compared, and nothing changes (the daily case).

Only the reconciliation job is timed; the routing jobs it queues are left unrun.

The floor reads the same pages through the same connector (so HTTP and parsing weigh the same
on both sides) and applies each page in one transaction with the statements a minimal design
needs: one look-up of the page's ids, then for what is missing one multi-row INSERT each of
orders, lines, history and routing jobs.

Environment: HUB_BENCH_POSTGRES_URL (default: HUB_TEST_POSTGRES_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/test), an admin URL under which scratch databases
are created and dropped. Without Postgres the benchmark reports that it was skipped.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.support import postgres_database

if TYPE_CHECKING:
    from hub.config import Settings

ORDERS = int(os.environ.get("HUB_BENCH_RECONCILE_ORDERS", "10000"))
PAGE = 200
API_KEY = "bench-depop-api-key"
SECRET = "bench-depop-webhook-secret"
ROOT = Path(__file__).resolve().parent.parent
Row = dict[str, object]


def serve_depop(port: int) -> None:
    """The Depop simulator holding ORDERS unheard-of orders (no webhook target: all lost)."""
    import uvicorn

    from connectors.depop.simulator import DepopSimulator

    depop = DepopSimulator(api_key=API_KEY, webhook_secret=SECRET)
    depop.add_product("BENCH-TEE", quantity=ORDERS)
    for _ in range(ORDERS):
        depop.purchase("BENCH-TEE")
    uvicorn.run(depop.app, host="127.0.0.1", port=port, log_config=None, access_log=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def depop_server() -> Iterator[str]:
    """The simulator's base URL while its process runs."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.reconcile", "--serve-depop", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=None if os.environ.get("BENCH_DEBUG") else subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the Depop simulator did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def _settings(url: str, base: str) -> Settings:
    from pydantic import SecretStr

    from connectors.depop import DepopSettings
    from hub.config import HubSettings, Settings

    return Settings(
        HubSettings(database_url=url, admin_tokens=[SecretStr("bench")]),
        depop=DepopSettings(
            base_url=base, api_key=SecretStr(API_KEY), webhook_secret=SecretStr(SECRET)
        ),
    )


def _hub(url: str, base: str) -> list[Row]:
    """Two timed reconciliation runs of the hub against the simulator at `base`."""
    from sqlalchemy import update
    from sqlmodel import col

    import hub.tasks  # noqa: F401  (registers the reconciliation job)
    from hub.jobs.models import Job
    from hub.jobs.worker import run_one
    from hub.reconcile import repository as runs
    from hub.reconcile import service
    from hub.types import utcnow
    from hub.wiring import build_runtime

    runtime = build_runtime(_settings(url, base))
    rows: list[Row] = []
    try:
        for label in ("all missing (created)", "all known (nothing changes)"):
            with runtime.db.transaction() as session:
                run = service.start_run(session, runtime.settings, "depop")
                assert run is not None
                run_id = run.id
                # Ahead of the routing jobs the first run queued (left unrun: not measured):
                # they come first by priority (order path before bulk), then by run_at.
                session.execute(
                    update(Job)
                    .where(col(Job.idempotency_key) == f"reconcile:{run_id}")
                    .values(run_at=utcnow() - timedelta(days=1), priority=0)
                )
            started = time.perf_counter()
            assert run_one(runtime, "bench")
            elapsed = time.perf_counter() - started
            with runtime.db.reader() as session:
                done = runs.get(session, run_id)
                assert done is not None
                assert done.state == "done", (done.state, done.error)
                seen, created = done.seen, done.created
            rows.append(_row(f"hub: {label}", seen, created, elapsed))
    finally:
        runtime.db.dispose()
    return rows


def _floor(url: str, base: str) -> list[Row]:
    """The same two runs, set-based in raw psycopg: the least the database work can cost."""
    import psycopg
    import sqlalchemy as sa
    from psycopg.types.json import Jsonb

    from hub.wiring import build_runtime

    runtime = build_runtime(_settings(url, base))
    channel = runtime.connectors.channel("depop")
    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    rows: list[Row] = []
    until = datetime.now(UTC)
    with psycopg.connect(dsn) as conn:
        for label in ("all missing (created)", "all known (nothing changes)"):
            seen = created = 0
            started = time.perf_counter()
            listing = channel.list_orders(until - timedelta(days=30), until)
            page: list[Any] = []
            for incoming in [*listing, None]:
                if incoming is not None:
                    page.append(incoming)
                if page and (incoming is None or len(page) == PAGE):
                    seen += len(page)
                    created += _floor_page(conn, page, Jsonb)
                    page = []
            rows.append(_row(f"floor: {label}", seen, created, time.perf_counter() - started))
    runtime.db.dispose()
    return rows


def _floor_page(conn: Any, page: list[Any], jsonb: Any) -> int:
    now = datetime.now(UTC)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT channel_order_id FROM orders WHERE connection = 'depop/default'"
            " AND channel_order_id = ANY(%s)",
            ([o.channel_order_id for o in page],),
        )
        known = {r[0] for r in cur.fetchall()}
        missing = [o for o in page if o.channel_order_id not in known]
        if missing:
            ids = {o.channel_order_id: f"ord_{uuid.uuid4().hex[:24]}" for o in missing}
            cur.executemany(
                "INSERT INTO orders (id, channel, connection, channel_order_id, status,"
                " channel_status,"
                " currency, total_amount, buyer_email, shipping_address, attributes, placed_at,"
                " needs_attention, version, created_at, updated_at) VALUES"
                " (%s, 'depop', 'depop/default', %s, 'confirmed', %s, %s, %s, %s, %s, %s, %s,"
                " false, 1, %s, %s)"
                " ON CONFLICT DO NOTHING",
                [
                    (
                        ids[o.channel_order_id],
                        o.channel_order_id,
                        o.channel_status,
                        o.currency,
                        str(o.total_amount),
                        o.buyer_email,
                        jsonb(None),
                        jsonb({}),
                        o.placed_at,
                        now,
                        now,
                    )
                    for o in missing
                ],
            )
            cur.executemany(
                "INSERT INTO order_lines (order_id, channel_line_id, sku, quantity,"
                " shipped_quantity, cancelled_quantity, unit_price, parcel_ref, attributes)"
                " VALUES (%s, %s, %s, %s, 0, 0, %s, %s, %s)",
                [
                    (
                        ids[o.channel_order_id],
                        line.channel_line_id,
                        line.sku,
                        line.quantity,
                        str(line.unit_price),
                        line.parcel_ref,
                        jsonb({}),
                    )
                    for o in missing
                    for line in o.lines
                ],
            )
            cur.executemany(
                "INSERT INTO order_events (order_id, trigger, from_state, to_state, source,"
                " detail, at) VALUES (%s, 'receive', NULL, 'created', 'floor', %s, %s)",
                [(ids[o.channel_order_id], jsonb({}), now) for o in missing],
            )
            cur.executemany(
                "INSERT INTO jobs (kind, payload, idempotency_key, state, attempts,"
                " max_attempts, run_at, order_id, created_at, updated_at) VALUES"
                " ('fulfilment.route', %s, %s, 'queued', 0, 0, %s, %s, %s, %s)",
                [
                    (jsonb({}), f"order:{order_id}:route", now, order_id, now, now)
                    for order_id in ids.values()
                ],
            )
    conn.commit()
    return len(missing)


def _row(case: str, seen: int, created: int, elapsed: float) -> Row:
    return {
        "case": case,
        "orders": seen,
        "created": created,
        "pages": math.ceil(seen / PAGE),
        "seconds": round(elapsed, 2),
        "value": round(seen / elapsed, 1),
        "unit": "orders/s",
    }


def run() -> list[Row]:
    """The benchmark's rows (see `bench/__main__.py` for the row convention)."""
    from hub.logging import configure_logging

    # One log line per order would measure the terminal, not the hub.
    configure_logging("json", "warning")
    rows: list[Row] = []
    with postgres_database("reconcile") as url, postgres_database("reconcile_floor") as floor:
        if url is None or floor is None:
            return [{"case": "postgres: skipped (unreachable)", "value": None}]
        with depop_server() as base:
            hub = _hub(url, base)
        with depop_server() as base:
            bare = _floor(floor, base)
    for (target, ours), theirs in zip(((30.0, hub[0]), (3.0, hub[1])), bare, strict=True):
        seconds = float(ours["seconds"])  # type: ignore[arg-type]
        rows += [
            {**ours, "target": f"< {target:.0f} s", "met": seconds < target},
            theirs,
            {
                "case": f"hub / floor: {str(ours['case']).removeprefix('hub: ')}",
                "value": round(float(ours["value"]) / float(theirs["value"]), 2),  # type: ignore[arg-type]
                "unit": "ratio",
            },
        ]
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve-depop", type=int, metavar="PORT")
    args = parser.parse_args()
    if args.serve_depop:
        serve_depop(args.serve_depop)
    else:
        from bench.__main__ import print_table

        print_table(run())
