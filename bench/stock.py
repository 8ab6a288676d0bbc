"""Stock reservations per second on Postgres: 1 and 8 concurrent clients, all on one hot SKU
and spread over 1,000 SKUs, beside the floor measured in the same run.

Each hub reservation is what an order's confirmation does: one transaction running the
inventory service's `reserve` for one unit (the reservation and movement rows, the conditional
UPDATE, the coalesced listing-sync job). The floor is the bare conditional UPDATE and its
commit in raw psycopg on the same schema, the least a reservation can cost; `ratio` is hub /
floor. A second floor sends the very rows the hub writes, from raw psycopg: the hub's own
reservation statement (`_RESERVE_ONE`, as compiled for Postgres) and, when no listing sync is
waiting for the SKU, the job row and the NOTIFY; hub / that floor is what the hub's Python costs
on top of its writes, and that floor / the bare UPDATE is what the writes cost. Clients are
forked processes, so the database, not one interpreter's lock, is what they contend for; each
has its own connection and runs for a fixed time; `client_cpu_us` is their CPU per reservation
and `machine_cpu_us` the whole machine's (Postgres included). Stock is ample, so every
reservation should succeed; after each case the totals are checked against what the clients
counted (`consistent`).

Environment: HUB_BENCH_POSTGRES_URL (default: HUB_TEST_POSTGRES_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/test), an admin URL under which a scratch database
is created and dropped. Without Postgres the benchmark reports that it was skipped.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from bench.support import postgres_database

CLIENTS = (1, 8)
SECONDS = 3.0
SPREAD = 1_000  # SKUs in the spread case
ORDERS_PER_CASE = 30_000  # ample for SECONDS at any client count on this machine
HOT_STOCK = 10_000_000
Row = dict[str, object]
# One client's (reserved, refused, when it finished, each reservation's seconds, its CPU seconds).
Outcome = tuple[int, int, float, list[float], float]
_TICKS = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far: /proc/stat's user, nice, system, irq
    and softirq (guest time is inside user already; idle, iowait and steal are not ours)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / _TICKS


def _orders(url: str, tag: str, count: int) -> list[str]:
    """`count` received orders to reserve for, inserted in bulk (setup, not measured)."""
    from sqlalchemy import insert

    from hub.db import Database
    from hub.orders.models import Order

    placed = datetime.now(UTC)
    ids = [f"ord_bench_{tag}_{n:06d}" for n in range(count)]
    rows = [
        Order(
            id=order_id,
            channel="bench",
            connection="bench/default",
            channel_order_id=order_id,
            status="acknowledged",
            currency="EUR",
            total_amount=Decimal("10.00"),
            placed_at=placed,
        ).model_dump()
        for order_id in ids
    ]
    db = Database(url)
    try:
        with db.transaction() as session:
            for start in range(0, len(rows), 2_000):
                session.execute(insert(Order), rows[start : start + 2_000])
    finally:
        db.dispose()
    return ids


def _stock(url: str, skus: Sequence[str], on_hand: int) -> None:
    from hub.db import Database
    from hub.inventory import service as inventory

    db = Database(url)
    try:
        with db.transaction() as session:
            inventory.set_on_hand_many(session, [(sku, on_hand) for sku in skus], note="bench")
    finally:
        db.dispose()


def _drive(
    reserve_one: Callable[[str, str], bool],
    order_ids: list[str],
    skus: list[str],
    ready: Event,
    go: Event,
    deadline_after: float,
    results: multiprocessing.Queue[Outcome],
) -> None:
    """The clock and the tally every client shares: `reserve_one(order_id, sku)` for one unit
    per order, round-robin over `skus`, from the start signal until time; it answers whether
    the unit was taken."""
    ready.set()
    go.wait()
    deadline = time.monotonic() + deadline_after
    cpu = time.process_time()
    ok = failed = 0
    latencies: list[float] = []
    for n, order_id in enumerate(order_ids):
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        taken = reserve_one(order_id, skus[n % len(skus)])
        latencies.append(time.perf_counter() - started)
        ok, failed = (ok + 1, failed) if taken else (ok, failed + 1)
    results.put((ok, failed, time.monotonic(), latencies, time.process_time() - cpu))


def _client(url: str, *driven: Any) -> None:
    """One hub client: `inventory.reserve` in its own `db.transaction()`."""
    from hub.config import UntrackedSkuPolicy
    from hub.db import Database
    from hub.inventory import service as inventory

    db = Database(url, pool_size=1)
    with db.transaction() as session:  # connect before the clock starts
        session.connection()

    def reserve_one(order_id: str, sku: str) -> bool:
        with db.transaction() as session:
            reserved = inventory.reserve(
                session, order_id, [(sku, 1)], policy=UntrackedSkuPolicy.REJECT
            )
        return reserved.ok

    try:
        _drive(reserve_one, *driven)
    finally:
        db.dispose()


def _floor_client(url: str, *driven: Any) -> None:
    """One floor client: the conditional UPDATE and COMMIT, raw psycopg, nothing else."""
    conn = _raw_connection(url)

    def reserve_one(_order_id: str, sku: str) -> bool:
        with conn.cursor() as cursor:
            cursor.execute(
                "UPDATE stock_items SET reserved = reserved + 1, updated_at = now()"
                " WHERE sku = %s AND on_hand - reserved >= 1",
                (sku,),
                prepare=True,
            )
            taken = cursor.rowcount == 1
        conn.commit()
        return bool(taken)

    try:
        _drive(reserve_one, *driven)
    finally:
        conn.close()


def _same_writes_client(url: str, *driven: Any) -> None:
    """One floor client sending what the hub sends for a reservation, from raw psycopg: its
    reservation statement, then (no sync waiting) the listing-sync job and the NOTIFY."""
    import json

    from sqlalchemy.dialects import postgresql

    from hub.inventory import tasks  # noqa: F401  (declares the listing sync's priority)
    from hub.inventory.repository import _RESERVE_ONE
    from hub.inventory.service import LISTING_SYNC
    from hub.jobs import priorities
    from hub.jobs.queue import CONFIGURED_MAX_ATTEMPTS
    from hub.jobs.wakeup import CHANNEL

    dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    reserve = str(_RESERVE_ONE.statement.compile(dialect=dialect))
    enqueue = (
        "INSERT INTO jobs (kind, priority, idempotency_key, payload, state, attempts,"
        " max_attempts, run_at, created_at, updated_at)"
        " VALUES (%(kind)s, %(priority)s, %(key)s, %(payload)s, 'queued', 0, %(max_attempts)s,"
        " %(now)s, %(now)s, %(now)s) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
    )
    conn = _raw_connection(url)

    def reserve_one(order_id: str, sku: str) -> bool:
        now = datetime.now(UTC)
        key = f"{LISTING_SYNC}:{sku}"
        with conn.cursor() as cursor:
            cursor.execute(
                reserve,
                {
                    "sync_key": key,
                    "queued": "queued",
                    "order_id": order_id,
                    "sku": sku,
                    "quantity": 1,
                    "now": now,
                },
                prepare=True,
            )
            _, waiting, _, taken = cursor.fetchone()
            if taken and not waiting:
                cursor.execute(
                    enqueue,
                    {
                        "kind": LISTING_SYNC,
                        "priority": priorities.of(LISTING_SYNC),
                        "key": key,
                        "payload": json.dumps({"sku": sku, "skip_channel": None}),
                        "max_attempts": CONFIGURED_MAX_ATTEMPTS,
                        "now": now,
                    },
                    prepare=True,
                )
                if cursor.fetchone() is not None:
                    cursor.execute(f"NOTIFY {CHANNEL}")
        conn.commit()
        return bool(taken)

    try:
        _drive(reserve_one, *driven)
    finally:
        conn.close()


def _raw_connection(url: str) -> Any:
    """A raw psycopg connection to `url` (an SQLAlchemy URL), outside any pool."""
    import psycopg
    import sqlalchemy as sa

    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(dsn)


_CLIENTS = {"hub": _client, "bare": _floor_client, "same": _same_writes_client}
_LABELS = {
    "hub": "hub",
    "bare": "floor (bare UPDATE)",
    "same": "floor (the hub's writes, raw)",
}


def _case(url: str, label: str, skus: list[str], clients: int, kind: str) -> Row:
    """`clients` processes reserving for SECONDS; one row of figures."""
    import sqlalchemy as sa

    tag = f"{label}{clients}{kind}"
    order_ids = _orders(url, tag, ORDERS_PER_CASE)
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[Outcome] = context.Queue()
    go = context.Event()
    readies = [context.Event() for _ in range(clients)]
    share = len(order_ids) // clients
    processes = [
        context.Process(
            target=_CLIENTS[kind],
            args=(
                url,
                order_ids[i * share : (i + 1) * share],
                # Clients start evenly apart: one SKU apart, they would walk the list in
                # lock-step, each queueing on the row its neighbour just took.
                skus[i * len(skus) // clients :] + skus[: i * len(skus) // clients],
                readies[i],
                go,
                SECONDS,
                results,
            ),
        )
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    for ready in readies:
        ready.wait(60)
    busy = _busy_seconds()
    started = time.monotonic()
    go.set()
    outcomes = [results.get(timeout=SECONDS + 120) for _ in processes]
    busy = _busy_seconds() - busy
    for process in processes:
        process.join()
    ok = sum(o[0] for o in outcomes)
    failed = sum(o[1] for o in outcomes)
    elapsed = max(o[2] for o in outcomes) - started
    latencies = sorted(x for o in outcomes for x in o[3])
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        reserved = conn.execute(
            sa.text("SELECT coalesce(sum(reserved), 0) FROM stock_items WHERE sku = ANY(:skus)"),
            {"skus": skus},
        ).scalar_one()
        negative = conn.execute(
            sa.text("SELECT count(*) FROM stock_items WHERE on_hand < reserved OR reserved < 0")
        ).scalar_one()
    engine.dispose()
    return {
        "case": f"{label}, {clients} client{'s' if clients > 1 else ''}: " + _LABELS[kind],
        "value": round(ok / elapsed),
        "unit": "reservations/s",
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2) if latencies else None,
        "reserved": ok,
        "refused": failed,
        "consistent": int(reserved) == ok and negative == 0,
        "client_cpu_us": round(sum(o[4] for o in outcomes) / ok * 1e6) if ok else None,
        "machine_cpu_us": round(busy / ok * 1e6) if ok else None,
    }


def _ratio(a: Row, b: Row) -> float:
    return round(float(a["value"]) / float(b["value"]), 2)  # type: ignore[arg-type]


def run() -> list[Row]:
    """The benchmark's rows (see `bench/__main__.py` for the row convention)."""
    rows: list[Row] = []
    with postgres_database("stock") as url:
        if url is None:
            return [{"case": "postgres: skipped (unreachable)", "value": None}]
        for label, count in (("hot SKU", 1), (f"{SPREAD:,} SKUs", SPREAD)):
            for clients in CLIENTS:
                measured: dict[str, Row] = {}
                for kind in ("hub", "bare", "same"):
                    # Fresh SKUs per case, so earlier cases' reservations do not weigh on it.
                    skus = [f"B-{label[:3]}-{clients}-{kind}-{n:04d}" for n in range(count)]
                    _stock(url, skus, HOT_STOCK if count == 1 else HOT_STOCK // count)
                    measured[kind] = _case(url, label, skus, clients, kind)
                hub, bare, same = measured["hub"], measured["bare"], measured["same"]
                case = f"{label}, {clients} client{'s' * (clients > 1)}"
                ratio = _ratio(hub, bare)
                rows += [
                    hub,
                    bare,
                    same,
                    {
                        "case": f"{case}: hub / floor",
                        "value": ratio,
                        "unit": "ratio",
                        "target": ">= 0.7",
                        "met": ratio >= 0.7,
                    },
                    {
                        "case": f"{case}: hub / the hub's writes, raw",
                        "value": _ratio(hub, same),
                        "unit": "ratio",
                    },
                    {
                        "case": f"{case}: the hub's writes, raw / floor",
                        "value": _ratio(same, bare),
                        "unit": "ratio",
                    },
                ]
    return rows


def main() -> None:
    from bench.__main__ import print_table

    print_table([{"bench": "stock", **row} for row in run()])


if __name__ == "__main__":
    main()
