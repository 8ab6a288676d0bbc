"""A fault drill: the hub's production shape on Postgres, driven by buyers and a warehouse
through the simulators, while faults are injected, then settled and audited.

Load: buyers purchase on Depop (its signed webhooks spread across the API processes, retried
by the channel when they get no 2xx), some webhooks sent again as racing duplicates; Deliverr
ships whatever reaches it, whole. Faults: the simulators answer 500s, 429s with Retry-After,
hang, and drop connections after the call took effect; worker and API processes (and
schedulers) are SIGKILLed and started again; every backend of the drill's database is
terminated periodically. Then the faults stop, the system settles, the hub's processes stop
gracefully and the ledger (`drills.ledger`) is taken.
"""

from __future__ import annotations

import random
import secrets
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from drills.cluster import Cluster
from drills.ledger import Ledger, Observed, audit


@dataclass
class DrillConfig:
    """What a drill does; the defaults are the short drill of the test suite."""

    postgres_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    orders: int = 300
    concurrency: int = 16
    duration: float = 60.0  # seconds of load at most; placing stops then, whatever is left
    kill_interval: float = 12.0  # seconds between SIGKILLs of a hub process (0: none)
    # Kills made even when the load ends sooner (a quiet machine places 300 orders in seconds),
    # so a drill always restarts processes mid-work.
    min_kills: int = 2
    terminate_interval: float = 5.0  # seconds between terminations of every backend (0: none)
    # Likewise rounds of terminations: the load can end before the first interval does.
    min_terminations: int = 1
    error_rate: float = 0.03
    throttle_rate: float = 0.02
    hang_rate: float = 0.005
    hang_seconds: float = 12.0
    reset_rate: float = 0.02
    duplicate_rate: float = 0.2  # share of purchases followed by racing copies of a webhook
    copies: int = 3
    skus: int = 8
    stock_ratio: float = 0.9  # units counted per order placed: some SKUs sell out
    settle_timeout: float = 240.0
    worker_concurrency: int = 4
    lease_seconds: float = 25.0
    # Each run re-reads every order in its window and its intake races the webhooks' intake;
    # with thousands of orders, a run a minute is most of the hub's work.
    reconcile_cron: str = "* * * * *"
    seed: int | None = None
    workdir: Path | None = None  # logs; a temporary directory when None


@dataclass
class DrillReport:
    config: DrillConfig
    ledger: Ledger
    injected: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    settled: bool = False
    exit_statuses: dict[str, int | None] = field(default_factory=dict)
    workdir: str = ""

    @property
    def passed(self) -> bool:
        return self.settled and all(self.ledger.held(c) for c in self.ledger.problems)

    def render(self) -> str:
        lines = [f"fault drill ({self.workdir})", "", "injected:"]
        lines += [f"  {k}: {v}" for k, v in self.injected.items()]
        lines += ["", "timings (s):"]
        lines += [f"  {k}: {v:.1f}" for k, v in self.timings.items()]
        lines += ["", f"settled: {'yes' if self.settled else 'NO (timed out)'}", "", "figures:"]
        lines += [f"  {k}: {v}" for k, v in self.ledger.figures.items()]
        lines += ["", "claims:"]
        for claim, problems in self.ledger.problems.items():
            lines.append(f"  {'held ' if not problems else 'BROKE'} {claim}")
            lines += [f"        {p}" for p in problems[:10]]
            if len(problems) > 10:
                lines.append(f"        ... {len(problems) - 10} more")
        return "\n".join(lines)


@contextmanager
def drill_database(admin_url: str) -> Iterator[str]:
    """A database of the drill's own, dropped at the end."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"hub_drill_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Drill:
    def __init__(
        self,
        config: DrillConfig,
        cluster: Cluster,
        database_url: str,
        progress: Callable[[str], None],
    ) -> None:
        self.config = config
        self.progress = progress
        self.cluster = cluster
        self.rng = random.Random(config.seed)
        self.engine = sa.create_engine(database_url, pool_pre_ping=True)
        self.http = httpx.Client(timeout=120)
        self.stop_faults = threading.Event()
        self.stop_load = threading.Event()
        self.placed: list[str] = []
        self.refused = 0
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.skus = [f"DRILL-{i:03d}" for i in range(config.skus)]
        per_sku = max(1, round(config.orders * config.stock_ratio / config.skus))
        self.stock = {sku: per_sku for sku in self.skus}

    # -- the simulators ---------------------------------------------------------------------

    def sim(self, name: str) -> str:
        return self.cluster.sim_env[f"DRILL_SIM_{name.upper()}"]

    def sims(self) -> list[str]:
        prefix = "DRILL_SIM_"
        return [k.removeprefix(prefix).lower() for k in self.cluster.sim_env if prefix in k]

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.cluster.admin_token}"}
        return self.http.request(method, self.cluster.api_url() + path, headers=headers, **kwargs)

    # -- load -------------------------------------------------------------------------------

    def stock_up(self) -> None:
        """List every SKU on Depop, then count its stock at the hub, which syncs the listing."""
        for sku, units in self.stock.items():
            self.http.post(f"{self.sim('depop')}/_sim/products/{sku}", params={"quantity": units})
            response = self.admin("PUT", f"/admin/stock/{sku}", json={"on_hand": units})
            response.raise_for_status()

    def buy(self, _index: int) -> None:
        if self.stop_load.is_set():
            return
        sku = self.rng.choice(self.skus)
        response = self.http.post(f"{self.sim('depop')}/_sim/purchase", json={"sku": sku})
        with self.lock:
            if response.status_code == 200:
                self.placed.append(response.json()["purchase_id"])
            else:
                self.refused += 1
        if self.rng.random() < self.config.duplicate_rate:
            self.replay("depop")

    def replay(self, name: str) -> None:
        answer = self.http.post(
            f"{self.sim(name)}/_sim/webhooks/replay", params={"copies": self.config.copies}
        ).json()
        with self.lock:
            self.counts["racing duplicate deliveries"] += len(answer["statuses"])

    def warehouse_round(self) -> int:
        """Deliver Deliverr's pending webhooks, then ship every order that reached it; how many
        orders are still waiting to ship."""
        base = self.sim("deliverr")
        self.http.post(f"{base}/_sim/flush-webhooks")
        waiting = 0
        for order in self.http.get(f"{base}/_sim/orders").json():
            if order["status"] not in ("CREATED", "PROCESSING"):
                continue
            shipped = self.http.post(f"{base}/_sim/orders/{order['orderId']}/ship", json={})
            waiting += shipped.status_code != 200
            with self.lock:
                self.counts["parcels shipped"] += shipped.status_code == 200
            if self.rng.random() < self.config.duplicate_rate:
                self.replay("deliverr")
        return waiting

    def warehouse(self) -> None:
        while not self.stop_load.wait(0.5):
            self.warehouse_round()

    # -- faults -----------------------------------------------------------------------------

    def killer(self) -> None:
        interval = self.config.kill_interval
        targets = [p for p in self.cluster.processes if not p.name.startswith("scheduler")]
        schedulers = [p for p in self.cluster.processes if p.name.startswith("scheduler")]
        round_ = 0
        while interval:
            if self.stop_faults.is_set():
                if round_ >= self.config.min_kills:
                    break
                time.sleep(interval)
            elif self.stop_faults.wait(interval) and round_ >= self.config.min_kills:
                break
            round_ += 1
            # Every fourth kill takes a scheduler, most likely the leader's peer or itself.
            victim = self.rng.choice(schedulers if round_ % 4 == 0 else targets)
            victim.kill()
            with self.lock:
                self.counts[f"SIGKILL {victim.name.rsplit('-', 1)[0]}"] += 1
            victim.start()

    def terminator(self) -> None:
        interval = self.config.terminate_interval
        database = self.engine.url.database
        admin = sa.create_engine(
            self.engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        rounds = 0
        while interval:
            if self.stop_faults.wait(interval) and rounds >= self.config.min_terminations:
                break
            rounds += 1
            with admin.connect() as conn:
                ended = conn.execute(
                    sa.text(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                        "FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                ).scalar_one()
            with self.lock:
                self.counts["Postgres backends terminated"] += int(ended)
                self.counts["termination rounds"] += 1
        admin.dispose()

    def set_chaos(self, **rates: float) -> dict[str, int]:
        """Set every simulator's fault rates; the faults each injected so far, summed."""
        injected: Counter[str] = Counter()
        for name in self.sims():
            current = self.http.get(f"{self.sim(name)}/_sim/chaos").json()
            injected.update(current["injected"])
            self.http.put(f"{self.sim(name)}/_sim/chaos", json=current["chaos"] | rates)
        return dict(injected)

    # -- settling ---------------------------------------------------------------------------

    def outstanding(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            # Not reconciliation runs: the drill's schedule starts one a minute, so some run
            # is nearly always under way; they are audited with every other job at the end.
            jobs = conn.execute(
                sa.text(
                    "SELECT count(*) FROM jobs WHERE kind <> 'reconcile.run' AND "
                    "(state = 'running' OR "
                    "(state = 'queued' AND run_at < now() + interval '30 seconds'))"
                )
            ).scalar_one()
            pending = conn.execute(
                sa.text("SELECT count(*) FROM inbound_events WHERE status = 'pending'")
            ).scalar_one()
            unpushed = conn.execute(
                sa.text("SELECT count(*) FROM shipments WHERE pushed_to_channel_at IS NULL")
            ).scalar_one()
        waiting = self.warehouse_round()
        return {"jobs": jobs, "events": pending, "unpushed": unpushed, "to ship": waiting}

    def settle(self) -> bool:
        """Until nothing is left to do three checks running; False on the settle timeout."""
        started = time.monotonic()
        quiet = 0
        told = 0.0
        while (waited := time.monotonic() - started) < self.config.settle_timeout:
            self.cluster.revive()
            try:
                left = self.outstanding()
            except sa.exc.OperationalError:
                left = {"database": 1}
            quiet = quiet + 1 if not any(left.values()) else 0
            if quiet >= 3:
                return True
            if waited - told >= 15:
                told = waited
                self.progress(f"drill: settling for {waited:.0f} s; left: {left}")
            time.sleep(1.0)
        return False

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> DrillReport:
        config = self.config
        timings: dict[str, float] = {}
        started = time.monotonic()
        self.stock_up()
        background = [
            threading.Thread(target=self.warehouse, name="warehouse"),
            threading.Thread(target=self.killer, name="killer"),
            threading.Thread(target=self.terminator, name="terminator"),
        ]
        for thread in background:
            thread.start()
        timer = threading.Timer(config.duration, self.stop_load.set)
        timer.start()
        try:
            with ThreadPoolExecutor(config.concurrency) as pool:
                list(pool.map(self.buy, range(config.orders)))
        finally:
            timer.cancel()
            self.stop_load.set()
            self.stop_faults.set()
            for thread in background:
                thread.join()
        timings["load"] = time.monotonic() - started
        self.progress(f"drill: load done in {timings['load']:.0f} s; settling")
        injected = self.set_chaos(error_rate=0, throttle_rate=0, hang_rate=0, reset_rate=0)
        settle_started = time.monotonic()
        settled = self.settle()
        timings["settle"] = time.monotonic() - settle_started
        statuses = self.cluster.stop_hub()
        observed = self.observe()
        ledger = audit(self.engine, observed)
        ledger.figures["purchases refused by Depop (listing sold out)"] = self.refused
        kills = Counter(
            p.name.rsplit("-", 1)[0] for p in self.cluster.processes for _ in range(p.kills)
        )
        report = DrillReport(
            config,
            ledger,
            injected={**{f"simulator {k}": v for k, v in injected.items()}, **self.counts},
            timings=timings,
            settled=settled,
            exit_statuses=statuses,
        )
        report.injected |= {f"processes killed: {k}": v for k, v in kills.items()}
        return report

    def observe(self) -> Observed:
        return Observed(
            webhooks={
                name: self.http.get(f"{self.sim(name)}/_sim/webhooks").json()
                for name in self.sims()
            },
            deliverr_orders=self.http.get(f"{self.sim('deliverr')}/_sim/orders").json(),
            depop_parcels=self.http.get(f"{self.sim('depop')}/_sim/shipped-parcels").json(),
            depop_calls=[tuple(c) for c in self.http.get(f"{self.sim('depop')}/_sim/calls").json()],
            placed=list(self.placed),
            initial_stock=dict(self.stock),
        )

    def close(self) -> None:
        self.http.close()
        self.engine.dispose()


def run_drill(config: DrillConfig, progress: Callable[[str], None] = print) -> DrillReport:
    """Run one drill from a fresh database to its ledger."""
    with drill_database(config.postgres_url) as url, _workdir(config.workdir) as workdir:
        cluster = Cluster(
            workdir,
            url,
            secrets.token_urlsafe(24),
            worker_concurrency=config.worker_concurrency,
            hub_env={
                "HUB_LOG_LEVEL": "warning",
                "HUB_LOG_FORMAT": "json",
                "HUB_JOB_BACKOFF_BASE": "0.05",
                "HUB_JOB_MAX_BACKOFF_SECONDS": "2",
                "HUB_JOB_LEASE_SECONDS": str(config.lease_seconds),
                "HUB_WORKER_POLL_SECONDS": "0.05",
                "HUB_RECONCILE_CRON": config.reconcile_cron,
            },
        )
        progress(f"drill: logs in {workdir}")
        began = time.monotonic()
        cluster.start_simulators(
            [
                f"--error-rate={config.error_rate}",
                f"--throttle-rate={config.throttle_rate}",
                f"--hang-rate={config.hang_rate}",
                f"--hang-seconds={config.hang_seconds}",
                f"--reset-rate={config.reset_rate}",
            ]
        )
        try:
            cluster.migrate()
            cluster.start()
            up = time.monotonic() - began
            progress(f"drill: cluster up in {up:.0f} s; loading")
            drill = Drill(config, cluster, url, progress)
            try:
                report = drill.run()
            finally:
                drill.close()
            report.timings = {"start-up": up, **report.timings}
        finally:
            cluster.stop()
        report.workdir = str(workdir)
        return report


@contextmanager
def _workdir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="hub-drill-") as made:
        yield Path(made)
