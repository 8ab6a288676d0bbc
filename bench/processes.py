"""End to end in the production shape: the simulators, one API process under uvicorn (`hub serve
--no-worker --no-scheduler`) and `hub worker --processes 2` as separate processes over one
Postgres database (the drills' `Cluster`), so the figures are the hub's, not a test client's.

- quiet path: Depop purchases one at a time, each waiting for its Deliverr order, with the
  hub's default settings (idle poll, LISTEN/NOTIFY wake-ups): p50 from the webhook stored
  (`inbound_events.received_at`) to the `routed` history row; target p50 < 50 ms.
- burst: BURST purchases posted by CLIENTS threads as fast as they go; orders/s from the first
  webhook stored to the last order routed; target >= 100 orders/s. CPU per order is the CPU
  time the hub's processes (API, worker supervisor and its children), the simulators process
  and the Postgres processes spent over the burst (from /proc; a process that started or ended
  during the burst is not counted), divided by the orders.
- import: a 5,000-SKU stock import through the admin API, with one purchase placed while the
  import runs and one right after it returns; each order's latency less the quiet p50 is the
  delay the import caused (target <= 1 s).

Environment: HUB_BENCH_POSTGRES_URL (see bench/support.py); HUB_BENCH_BURST (default 300);
HUB_BENCH_CLIENTS (default 4).
"""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.support import postgres_database

BURST = int(os.environ.get("HUB_BENCH_BURST", "300"))
QUIET = 30
CLIENTS = int(os.environ.get("HUB_BENCH_CLIENTS", "4"))
WORKER_PROCESSES = 2
WORKER_THREADS = 4
IMPORTED = 5_000
SKUS = [f"BENCH-{n:02d}" for n in range(20)]
PATIENCE = 300.0
Row = dict[str, object]
_TICKS = os.sysconf("SC_CLK_TCK")
_ROUTED_COUNT = sa.text("SELECT count(*) FROM orders WHERE fulfilment_ref IS NOT NULL")


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each of these processes still alive, by pid."""
    found: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return found


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings by the processes alive at both."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found.extend(_tree(int(child)))
    return found


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _routed(url: str, since: datetime) -> list[tuple[datetime, datetime]]:
    """(webhook stored, routed) of each order whose webhook was stored after `since`."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT e.received_at, min(h.at) FROM inbound_events e"
                    " JOIN order_events h ON h.order_id = e.order_id AND h.trigger = 'routed'"
                    " WHERE e.received_at >= :since GROUP BY e.id, e.received_at"
                ),
                {"since": since},
            ).all()
    finally:
        engine.dispose()
    return [(r[0], r[1]) for r in rows]


class _Bench:
    def __init__(self, cluster: Any, url: str) -> None:
        self.cluster = cluster
        self.url = url
        self.http = httpx.Client(timeout=600)
        self.db = sa.create_engine(url, pool_size=1)

    def sim(self, name: str) -> str:
        return str(self.cluster.sim_env[f"DRILL_SIM_{name.upper()}"])

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.cluster.admin_token}"}
        response = self.http.request(
            method, self.cluster.api_url() + path, headers=headers, **kwargs
        )
        response.raise_for_status()
        return response

    def routed_orders(self) -> int:
        """Orders the hub has routed (every order here goes to Deliverr: routed means Deliverr
        answered its create). Counted in the hub's
        database: the simulator's order list grows with every order and serialising it at each
        poll cost the simulators' process (whose CPU is measured) more than the orders did."""
        with self.db.connect() as connection:
            return int(connection.execute(_ROUTED_COUNT).scalar_one())

    def purchase(self, sku: str, client: httpx.Client | None = None) -> None:
        http = client or self.http
        response = http.post(f"{self.sim('depop')}/_sim/purchase", json={"sku": sku})
        response.raise_for_status()

    def wait_for(self, count: int, patience: float = PATIENCE) -> None:
        deadline = time.monotonic() + patience
        while self.routed_orders() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.routed_orders()} of {count} orders routed")
            # The figures come from the database's timestamps, not from this loop: polling
            # more often would only take CPU from the processes being measured.
            time.sleep(0.02)

    def stock_up(self, units: int) -> None:
        for sku in SKUS:
            self.http.post(f"{self.sim('depop')}/_sim/products/{sku}", params={"quantity": units})
            self.admin("PUT", f"/admin/stock/{sku}", json={"on_hand": units})
        time.sleep(2.0)  # the listing syncs the counts set off

    def quiet(self) -> list[float]:
        since = datetime.now(UTC)
        done = self.routed_orders()
        for n in range(QUIET):
            self.purchase(SKUS[n % len(SKUS)])
            self.wait_for(done + n + 1)
        return [(r - s).total_seconds() for s, r in _routed(self.url, since)]

    def burst(self, hub_pids: dict[str, int]) -> Row:
        """`hub_pids`: the root process of each of the hub's processes, by name ("api",
        "worker"); the CPU of each tree is printed beside the total."""
        since = datetime.now(UTC)
        done = self.routed_orders()
        sims = _tree(self.cluster.simulators.popen.pid)
        postgres = _postgres_pids()
        trees = {name: _tree(root) for name, root in hub_pids.items()}
        pids = [pid for tree in trees.values() for pid in tree]
        parts = {name: _cpu_seconds(tree) for name, tree in trees.items()}
        before = (_cpu_seconds(pids), _cpu_seconds(sims), _cpu_seconds(postgres))
        counter = iter(range(BURST))
        lock = threading.Lock()

        def client() -> None:
            with httpx.Client(timeout=60) as http:
                while True:
                    with lock:
                        n = next(counter, None)
                    if n is None:
                        return
                    self.purchase(SKUS[n % len(SKUS)], http)

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.wait_for(done + BURST)
        after = (_cpu_seconds(pids), _cpu_seconds(sims), _cpu_seconds(postgres))
        part_cpu = {name: _spent(parts[name], _cpu_seconds(tree)) for name, tree in trees.items()}
        rows = _routed(self.url, since)
        span = (max(r for _, r in rows) - min(s for s, _ in rows)).total_seconds()
        hub_cpu, sim_cpu, pg_cpu = (_spent(b, a) for b, a in zip(before, after, strict=True))
        rate = len(rows) / span
        return {
            "case": f"burst of {BURST}, {CLIENTS} clients, {WORKER_PROCESSES} worker processes",
            "value": round(rate, 1),
            "unit": "orders/s",
            "p50_ms": round(statistics.median((r - s).total_seconds() for s, r in rows) * 1e3, 1),
            "cpu_ms_per_order": round(hub_cpu * 1e3 / len(rows), 1),
            **{
                f"{name}_cpu_ms_per_order": round(cpu * 1e3 / len(rows), 1)
                for name, cpu in part_cpu.items()
            },
            "sim_cpu_ms_per_order": round(sim_cpu * 1e3 / len(rows), 1),
            "pg_cpu_ms_per_order": round(pg_cpu * 1e3 / len(rows), 1),
            "target": ">= 100",
            "met": rate >= 100,
        }

    def import_delay(self, quiet_p50: float) -> list[Row]:
        items = [{"sku": f"IMPORT-{n:05d}", "on_hand": 3} for n in range(IMPORTED)]
        since = datetime.now(UTC)
        done = self.routed_orders()
        took: list[float] = []

        def run_import() -> None:
            started = time.perf_counter()
            self.admin("PUT", "/admin/stock", json={"items": items})
            took.append(time.perf_counter() - started)

        importer = threading.Thread(target=run_import)
        importer.start()
        time.sleep(0.3)  # the import's transaction is under way
        with httpx.Client(timeout=60) as http:
            self.purchase(SKUS[0], http)
        importer.join()
        self.purchase(SKUS[1])  # right after: its listing syncs are queued now
        self.wait_for(done + 2)
        rows = sorted(_routed(self.url, since))
        latencies = [(r - s).total_seconds() for s, r in rows]
        cases = ["placed while the import runs", "placed right after the import"]
        out: list[Row] = [
            {
                "case": f"{IMPORTED:,}-SKU import: its request",
                "value": round(took[0], 2),
                "unit": "s",
            }
        ]
        for label, latency in zip(cases, latencies, strict=False):
            delay = latency - quiet_p50
            out.append(
                {
                    "case": f"{IMPORTED:,}-SKU import: order {label}, delay beside quiet p50",
                    "value": round(delay * 1e3, 1),
                    "unit": "ms",
                    "p50_ms": round(latency * 1e3, 1),
                    "target": "<= 1000",
                    "met": delay <= 1.0,
                }
            )
        return out


def run() -> list[Row]:
    """The benchmark's rows (see `bench/__main__.py` for the row convention)."""
    from drills.cluster import HUB, Cluster

    with postgres_database("procs") as url, tempfile.TemporaryDirectory() as workdir:
        if url is None:
            return [{"case": "postgres: skipped (unreachable)", "value": None}]
        cluster = Cluster(
            Path(workdir),
            url,
            secrets.token_urlsafe(24),
            apis=1,
            workers=0,
            schedulers=0,
            hub_env={"HUB_LOG_LEVEL": "warning", "HUB_LOG_FORMAT": "json"},
        )
        cluster.start_simulators([])
        bench: _Bench | None = None
        try:
            cluster.start()  # the API process
            worker = cluster._process(
                "workers",
                [
                    HUB,
                    "worker",
                    "--processes",
                    str(WORKER_PROCESSES),
                    "--concurrency",
                    str(WORKER_THREADS),
                ],
                cluster.environment(),
            )
            worker.start()
            cluster.processes.append(worker)
            bench = _Bench(cluster, url)
            bench.stock_up(10 * (BURST + QUIET + 10))
            quiet = bench.quiet()
            quiet_p50 = statistics.median(quiet)
            hub_pids = {
                "api" if p.name.startswith("api") else p.name: p.popen.pid
                for p in cluster.processes
                if p.popen is not None
            }
            rows: list[Row] = [
                {
                    "case": f"quiet path, one order at a time ({QUIET}), default settings",
                    "value": round(quiet_p50 * 1e3, 1),
                    "unit": "ms p50",
                    "p99_ms": round(max(quiet) * 1e3, 1),
                    "target": "< 50",
                    "met": quiet_p50 < 0.05,
                },
                bench.burst(hub_pids),
            ]
            rows.extend(bench.import_delay(quiet_p50))
            return rows
        finally:
            if bench is not None:
                bench.db.dispose()  # the database is dropped next
            cluster.stop()


def main() -> None:
    from bench.__main__ import print_table

    print_table([{"bench": "processes", **row} for row in run()])


if __name__ == "__main__":
    main()
