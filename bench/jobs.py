"""The job engine on Postgres: no-op jobs per second with 1 and 4 worker processes, beside a
floor measured in the same run, and the same figure at a 3k and a 30k due backlog.

The hub side is the real engine: each worker process loops as `Worker` does (`Runner`, sweeping
expired leases a few times per lease), running a handler that does nothing and finishing the job
(with its attempt row, fenced by the lease) in a statement that also claims its next job with the
SKIP LOCKED claim (a claim of its own only when that found none). The floor is raw psycopg on the
same schema and index doing the least a durable queue can: one transaction claims a job (`UPDATE
... WHERE id = (SELECT ... ORDER BY priority, run_at LIMIT 1 FOR UPDATE SKIP LOCKED)`), a second
marks it done; no attempt row, no lease fence, no ORM. Worker processes are forked, each with one
connection; the figure is jobs finished over the wall time from the common start to the last
process's end. Rounds alternate hub and floor, and the ratio is the median of the rounds' ratios.

The backlog cases time the first BACKLOG_SAMPLE jobs drained by one hub worker from a queue of
3,000 and of 30,000 due jobs: a claim that sorted the whole backlog would slow down tenfold.

Environment: HUB_BENCH_POSTGRES_URL (see bench/support.py); without Postgres it is skipped.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event

from bench.support import postgres_database
from hub.jobs.context import JobContext
from hub.jobs.registry import job_handler

NOOP = "bench.noop"
JOBS = 3_000  # per throughput case
ROUNDS = 3
WORKERS = (1, 4)
BACKLOGS = (3_000, 30_000)
BACKLOG_SAMPLE = 3_000
Row = dict[str, object]


@job_handler(NOOP)
def _noop(ctx: JobContext) -> None:
    """Does nothing: what is measured is the engine around it."""


def _fill(url: str, count: int) -> None:
    """Empty the queue, then queue `count` due no-op jobs (setup, not measured)."""
    import sqlalchemy as sa

    from hub.jobs.models import Job

    now = datetime.now(UTC)
    rows = [
        {
            "kind": NOOP,
            "payload": {},
            "idempotency_key": f"bench-{n}",
            "state": "queued",
            "priority": 50,
            "attempts": 0,
            "max_attempts": 0,
            "run_at": now - timedelta(microseconds=count - n),
            "created_at": now,
            "updated_at": now,
        }
        for n in range(count)
    ]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE job_attempts, jobs RESTART IDENTITY"))
        for start in range(0, count, 5_000):
            conn.execute(sa.insert(Job.__table__), rows[start : start + 5_000])  # type: ignore[attr-defined]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE jobs"))
        conn.execute(sa.text("VACUUM ANALYZE job_attempts"))
    engine.dispose()


def _hub_worker(
    url: str, limit: int, ready: Event, go: Event, results: multiprocessing.Queue[tuple[int, float]]
) -> None:
    from connectors.registry import Registry
    from hub.config import HubSettings
    from hub.db import Database
    from hub.jobs.worker import Runner, _SweepClock, worker_name
    from hub.runtime import Runtime

    settings = HubSettings(database_url=url)
    runtime = Runtime(settings=settings, db=Database(url, pool_size=1), connectors=Registry())
    with runtime.db.transaction() as session:  # connect before the clock starts
        session.connection()
    sweeps = _SweepClock(min(settings.job_lease_seconds / 4, 5.0))
    runner = Runner(runtime, worker_name())
    ready.set()
    go.wait()
    ran = 0
    with runtime.db.pinned():  # as `Worker`'s threads do
        while ran < limit and runner.run_next(sweep=sweeps.due()):
            ran += 1
        runner.close()  # as a stopping `Worker` thread does with a job it took and never ran
    finished = time.monotonic()
    runtime.db.dispose()
    results.put((ran, finished))


_CLAIM = """
UPDATE jobs SET state = 'running', lease_owner = %s, lease_expires_at = now() + interval '2 min',
       attempts = attempts + 1, updated_at = now()
WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= now()
            ORDER BY priority, run_at LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, kind, payload
"""
_FINISH = "UPDATE jobs SET state = 'done', finished_at = now(), updated_at = now() WHERE id = %s"


def _floor_worker(
    url: str, limit: int, ready: Event, go: Event, results: multiprocessing.Queue[tuple[int, float]]
) -> None:
    import psycopg
    import sqlalchemy as sa

    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        ready.set()
        go.wait()
        ran = 0
        while ran < limit:
            with conn.transaction():
                row = conn.execute(_CLAIM, ("floor",)).fetchone()
            if row is None:
                break
            with conn.transaction():
                conn.execute(_FINISH, (row[0],))
            ran += 1
        finished = time.monotonic()
    results.put((ran, finished))


def _floor_one_statement_worker(
    url: str, limit: int, ready: Event, go: Event, results: multiprocessing.Queue[tuple[int, float]]
) -> None:
    """The floor's two statements, each its own transaction (autocommit: no BEGIN and COMMIT
    round trips), as the hub sends them on Postgres."""
    import psycopg
    import sqlalchemy as sa

    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        ready.set()
        go.wait()
        ran = 0
        while ran < limit:
            row = conn.execute(_CLAIM, ("floor",)).fetchone()
            if row is None:
                break
            conn.execute(_FINISH, (row[0],))
            ran += 1
        finished = time.monotonic()
    results.put((ran, finished))


def _drain(url: str, side: str, workers: int, limit: int) -> tuple[int, float]:
    """`workers` processes of `side` draining up to `limit` jobs each; (jobs, jobs/s)."""
    target = {
        "hub": _hub_worker,
        "floor": _floor_worker,
        "floor1": _floor_one_statement_worker,
    }[side]
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[tuple[int, float]] = context.Queue()
    go = context.Event()
    readies = [context.Event() for _ in range(workers)]
    processes = [
        context.Process(target=target, args=(url, limit, readies[i], go, results))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    for ready in readies:
        ready.wait(60)
    started = time.monotonic()
    go.set()
    outcomes = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    ran = sum(o[0] for o in outcomes)
    return ran, ran / (max(o[1] for o in outcomes) - started)


def _throughput(url: str, workers: int) -> list[Row]:
    hub: list[float] = []
    floor: list[float] = []
    floor1: list[float] = []
    for _ in range(ROUNDS):
        for side, figures in (("hub", hub), ("floor", floor), ("floor1", floor1)):
            _fill(url, JOBS)
            ran, rate = _drain(url, side, workers, JOBS)
            assert ran == JOBS, f"{side} ran {ran} of {JOBS}"
            figures.append(rate)
    ratios = [h / f for h, f in zip(hub, floor, strict=True)]
    ratio = statistics.median(ratios)
    ratio1 = statistics.median(h / f for h, f in zip(hub, floor1, strict=True))
    rounds = ", ".join(f"{h:.0f}/{f:.0f}" for h, f in zip(hub, floor, strict=True))
    label = f"{workers} worker{'s' if workers > 1 else ''}"
    return [
        {
            "case": f"no-op jobs, hub, {label}",
            "value": round(statistics.median(hub)),
            "unit": "jobs/s",
            "rounds": rounds,
        },
        {
            "case": f"no-op jobs, floor, {label}",
            "value": round(statistics.median(floor)),
            "unit": "jobs/s",
        },
        {
            "case": f"no-op jobs, hub / floor, {label}",
            "value": round(ratio, 2),
            "unit": "ratio",
            "target": ">= 0.8",
            "met": ratio >= 0.8,
        },
        {
            "case": f"no-op jobs, floor in one-statement transactions, {label}",
            "value": round(statistics.median(floor1)),
            "unit": "jobs/s",
            "rounds": ", ".join(f"{f:.0f}" for f in floor1),
        },
        {
            "case": f"no-op jobs, hub / one-statement floor, {label}",
            "value": round(ratio1, 2),
            "unit": "ratio",
        },
    ]


def _backlog(url: str) -> list[Row]:
    rates: dict[int, list[float]] = {size: [] for size in BACKLOGS}
    for _ in range(ROUNDS):
        for size in BACKLOGS:
            _fill(url, size)
            ran, rate = _drain(url, "hub", 1, BACKLOG_SAMPLE)
            assert ran == BACKLOG_SAMPLE
            rates[size].append(rate)
    small, large = (statistics.median(rates[size]) for size in BACKLOGS)
    ratio = large / small
    rows: list[Row] = [
        {
            "case": f"hub, 1 worker, {size:,} due jobs queued",
            "value": round(statistics.median(rates[size])),
            "unit": "jobs/s",
            "rounds": ", ".join(f"{r:.0f}" for r in rates[size]),
        }
        for size in BACKLOGS
    ]
    rows.append(
        {
            "case": f"hub, {BACKLOGS[1]:,} / {BACKLOGS[0]:,} backlog",
            "value": round(ratio, 2),
            "unit": "ratio",
            "target": ">= 0.9",
            "met": ratio >= 0.9,
        }
    )
    return rows


def run() -> list[Row]:
    """The benchmark's rows (see `bench/__main__.py` for the row convention)."""
    with postgres_database("jobs") as url:
        if url is None:
            return [{"case": "postgres: skipped (unreachable)", "value": None}]
        rows: list[Row] = []
        for workers in WORKERS:
            rows.extend(_throughput(url, workers))
        rows.extend(_backlog(url))
        return rows


def main() -> None:
    from bench.__main__ import print_table

    print_table([{"bench": "jobs", **row} for row in run()])


if __name__ == "__main__":
    main()
