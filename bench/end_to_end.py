"""End to end: Depop orders per second from the webhook to the Deliverr simulator's create, with
p50/p99 latency, for 1 and 4 worker threads on Postgres.

Each case gets a fresh Postgres database and the hub wired to every simulator in-process (the
wiring of `hub demo`): a Depop purchase signs and posts its `v1:order.new` to the hub app, and
`hub.jobs.worker.Worker` threads run everything it sets off (processing the event, reserving
stock, confirming, routing to Deliverr over httpx, listing updates to the other channels).

- burst: ORDERS purchases posted as fast as one client can while the workers run; orders/s is
  ORDERS over the time from the first webhook stored to the last Deliverr order created.
  Latency then includes the wait behind the backlog.
- one at a time: each purchase waits for its Deliverr order before the next is placed, so
  latency is the pipeline's own.

Latency of one order: from its webhook being stored (`inbound_events.received_at`) to the hub
recording the Deliverr order it created (the `routed` history row), both read from the database.

Environment: HUB_BENCH_POSTGRES_URL (default: HUB_TEST_POSTGRES_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/test), an admin URL under which a scratch database
is created and dropped; HUB_BENCH_E2E_ORDERS (default 200) orders per burst.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sized

from bench.support import postgres_database

ORDERS = int(os.environ.get("HUB_BENCH_E2E_ORDERS", "200"))
PACED = 30
SKUS = [f"BENCH-{n:02d}" for n in range(20)]  # spread the orders' stock rows, as real sales do
POLL = 0.01  # worker idle poll; the default 0.5 s would measure the poll, not the hub
TIMEOUT = 300.0


def _latencies(url: str) -> tuple[list[float], float]:
    """Seconds from each order's webhook stored to its Deliverr order recorded, and the span
    from the first webhook to the last Deliverr order."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from hub.db import Database
    from hub.inbox.models import InboundEvent
    from hub.orders.models import OrderEvent

    db = Database(url)
    try:
        with db.reader() as session:
            routed = (
                select(col(OrderEvent.order_id), func.min(col(OrderEvent.at)).label("at"))
                .where(col(OrderEvent.trigger) == "routed")
                .group_by(col(OrderEvent.order_id))
                .subquery()
            )
            rows = session.execute(
                select(col(InboundEvent.received_at), routed.c.at).join(
                    routed, col(InboundEvent.order_id) == routed.c.order_id
                )
            ).all()
    finally:
        db.dispose()
    received = [r[0] for r in rows]
    created = [r[1] for r in rows]
    latencies = [(c - r).total_seconds() for r, c in zip(received, created, strict=True)]
    span = (max(created) - min(received)).total_seconds() if rows else 0.0
    return latencies, span


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _case(url: str, workers: int, orders: int, *, paced: bool) -> dict[str, object]:
    from connectors.deliverr.simulator import DeliverrSimulator
    from connectors.depop.simulator import DepopSimulator
    from hub.jobs.worker import Worker
    from hub.sim import serve_simulated_hub

    hub = serve_simulated_hub(url, worker_poll_seconds=POLL)
    depop = hub.simulator("depop", DepopSimulator)
    deliverr = hub.simulator("deliverr", DeliverrSimulator)
    for sku in SKUS:
        hub.admin("PUT", f"/admin/stock/{sku}", json={"on_hand": 10 * orders})
        depop.add_product(sku, quantity=10 * orders)
    hub.settle()  # the listing updates the stock counts set off
    worker = Worker(hub.runtime, workers)
    worker.start()
    started = time.perf_counter()
    try:
        for n in range(orders):
            depop.purchase(SKUS[n % len(SKUS)])
            if paced:
                _wait_for_creates(deliverr.orders, n + 1)
        _wait_for_creates(deliverr.orders, orders)
        wall = time.perf_counter() - started
    finally:
        worker.stop()
        hub.close()
    latencies, span = _latencies(url)
    assert len(latencies) == orders, f"{len(latencies)} of {orders} orders reached Deliverr"
    return {
        "case": f"{'one at a time' if paced else 'burst'}, {workers} worker(s)",
        "backend": "postgres",
        "orders": orders,
        "value": round(orders / span, 1) if span else None,
        "unit": "orders/s",
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "wall_s": round(wall, 1),
    }


def _wait_for_creates(deliverr_orders: Sized, count: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while len(deliverr_orders) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{len(deliverr_orders)} of {count} Deliverr orders after {TIMEOUT} s"
            )
        time.sleep(0.002)


def run() -> list[dict[str, object]]:
    """The benchmark's rows (see `bench/__main__.py` for the row convention)."""
    from hub.logging import configure_logging

    # One log line per job would measure the terminal, not the hub.
    configure_logging("json", "warning")
    rows: list[dict[str, object]] = []
    for workers, orders, paced in ((1, PACED, True), (1, ORDERS, False), (4, ORDERS, False)):
        with postgres_database("e2e") as url:
            if url is None:
                return [{"case": "postgres: skipped (unreachable)", "value": None}]
            rows.append(_case(url, workers, orders, paced=paced))
    return rows


if __name__ == "__main__":
    from bench.__main__ import print_table

    print_table(run())
