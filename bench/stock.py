"""Stock reservations per second on Postgres: 1 and 8 concurrent clients, all on one hot SKU
and spread over 1,000 SKUs, beside the floor measured in the same run.

Each hub reservation is what an order's confirmation does: one transaction running the
inventory service's `reserve` for one unit (the reservation and movement rows, the conditional
UPDATE, the coalesced listing-sync job). The floor is the bare conditional UPDATE and its
commit in raw psycopg on the same schema, the least a reservation can cost; `ratio` is hub /
floor. Clients are forked processes, so the database, not one
interpreter's lock, is what they contend for; each has its own connection and runs for a fixed
time. Stock is ample, so every reservation should succeed; after each case the totals are
checked against what the clients counted (`consistent`).

Environment: HUB_BENCH_POSTGRES_URL (default: HUB_TEST_POSTGRES_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/test), an admin URL under which a scratch database
is created and dropped. Without Postgres the benchmark reports that it was skipped.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from multiprocessing.synchronize import Event

from bench.support import postgres_database

CLIENTS = (1, 8)
SECONDS = 3.0
SPREAD = 1_000  # SKUs in the spread case
ORDERS_PER_CASE = 8_000  # ample for SECONDS at any client count on a laptop
HOT_STOCK = 10_000_000
Row = dict[str, object]


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


def _client(
    url: str,
    order_ids: list[str],
    skus: list[str],
    ready: Event,
    go: Event,
    deadline_after: float,
    results: multiprocessing.Queue[tuple[int, int, float, list[float]]],
) -> None:
    """One client process: reserve one unit per order, round-robin over `skus`, until time."""
    from hub.config import UntrackedSkuPolicy
    from hub.db import Database
    from hub.inventory import service as inventory

    db = Database(url, pool_size=1)
    with db.transaction() as session:  # connect before the clock starts
        session.connection()
    ready.set()
    go.wait()
    deadline = time.monotonic() + deadline_after
    ok = failed = 0
    latencies: list[float] = []
    for n, order_id in enumerate(order_ids):
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        with db.transaction() as session:
            reserved = inventory.reserve(
                session, order_id, [(skus[n % len(skus)], 1)], policy=UntrackedSkuPolicy.REJECT
            )
        latencies.append(time.perf_counter() - started)
        ok, failed = (ok + 1, failed) if reserved.ok else (ok, failed + 1)
    finished = time.monotonic()
    db.dispose()
    results.put((ok, failed, finished, latencies))


def _floor_client(
    url: str,
    order_ids: list[str],
    skus: list[str],
    ready: Event,
    go: Event,
    deadline_after: float,
    results: multiprocessing.Queue[tuple[int, int, float, list[float]]],
) -> None:
    """One floor client: the conditional UPDATE and COMMIT, raw psycopg, nothing else."""
    import psycopg
    import sqlalchemy as sa

    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg.connect(dsn)
    ready.set()
    go.wait()
    deadline = time.monotonic() + deadline_after
    ok = failed = 0
    latencies: list[float] = []
    for n in range(len(order_ids)):
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        with conn.cursor() as cursor:
            cursor.execute(
                "UPDATE stock_items SET reserved = reserved + 1, updated_at = now()"
                " WHERE sku = %s AND on_hand - reserved >= 1",
                (skus[n % len(skus)],),
                prepare=True,
            )
            taken = cursor.rowcount == 1
        conn.commit()
        latencies.append(time.perf_counter() - started)
        ok, failed = (ok + 1, failed) if taken else (ok, failed + 1)
    finished = time.monotonic()
    conn.close()
    results.put((ok, failed, finished, latencies))


def _case(url: str, label: str, skus: list[str], clients: int, *, floor: bool = False) -> Row:
    """`clients` processes reserving for SECONDS; one row of figures."""
    import sqlalchemy as sa

    tag = f"{label}{clients}{'f' if floor else ''}"
    order_ids = _orders(url, tag, ORDERS_PER_CASE)
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[tuple[int, int, float, list[float]]] = context.Queue()
    go = context.Event()
    readies = [context.Event() for _ in range(clients)]
    share = len(order_ids) // clients
    processes = [
        context.Process(
            target=_floor_client if floor else _client,
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
    started = time.monotonic()
    go.set()
    outcomes = [results.get(timeout=SECONDS + 120) for _ in processes]
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
        "case": f"{label}, {clients} client{'s' if clients > 1 else ''}: "
        + ("floor (bare UPDATE)" if floor else "hub"),
        "value": round(ok / elapsed),
        "unit": "reservations/s",
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2) if latencies else None,
        "reserved": ok,
        "refused": failed,
        "consistent": int(reserved) == ok and negative == 0,
    }


def run() -> list[Row]:
    """The benchmark's rows (see `bench/__main__.py` for the row convention)."""
    rows: list[Row] = []
    with postgres_database("stock") as url:
        if url is None:
            return [{"case": "postgres: skipped (unreachable)", "value": None}]
        for label, count in (("hot SKU", 1), (f"{SPREAD:,} SKUs", SPREAD)):
            for clients in CLIENTS:
                pair = []
                for floor in (False, True):
                    # Fresh SKUs per case, so earlier cases' reservations do not weigh on it.
                    skus = [f"B-{label[:3]}-{clients}-{floor:d}-{n:04d}" for n in range(count)]
                    _stock(url, skus, HOT_STOCK if count == 1 else HOT_STOCK // count)
                    pair.append(_case(url, label, skus, clients, floor=floor))
                hub, bare = pair
                ratio = round(float(hub["value"]) / float(bare["value"]), 2)  # type: ignore[arg-type]
                rows += [
                    hub,
                    bare,
                    {
                        "case": f"{label}, {clients} client{'s' * (clients > 1)}: hub / floor",
                        "value": ratio,
                        "unit": "ratio",
                        "target": ">= 0.7",
                        "met": ratio >= 0.7,
                    },
                ]
    return rows


def main() -> None:
    from bench.__main__ import print_table

    print_table([{"bench": "stock", **row} for row in run()])


if __name__ == "__main__":
    main()
