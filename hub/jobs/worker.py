"""The worker: claims due jobs, runs their handlers, and decides what a failure means.

Only this layer decides whether to try again, and it decides by time, not by count: `Retriable`
and `TryAgain` (and a handler's unexpected crash) back off, capped exponential with full
jitter and never sooner than the failure's own `after`, until HUB_JOB_RETRY_WINDOW_SECONDS have
passed since the job's first attempt; `Permanent`, `FlowNotSupported` and a deterministic
database error (a value too long, an invalid character, a number out of range: the same data
fails the same way every time) bury the job at once and run its kind's `on_dead` hook; a lost
lease voids the attempt so another worker's result stands. It knows no domain: what a dead job
means is registered.
"""

from __future__ import annotations

import contextvars
import functools
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import psycopg
import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import DataError, StatementError

from connectors.base import ConnectorError, FlowNotSupported, Permanent, Retriable
from connectors.http import forget_status, last_status
from hub import metrics
from hub.jobs import queue
from hub.jobs.context import JobContext, NextClaim
from hub.jobs.models import Job
from hub.jobs.priorities import Priority
from hub.jobs.registry import KINDS, TryAgain, on_dead
from hub.jobs.wakeup import CHANNEL, WAKEUP
from hub.runtime import Runtime
from hub.types import utcnow

log = structlog.get_logger("hub.jobs")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def run_one(
    runtime: Runtime, worker: str, *, sweep: bool = True, max_priority: int | None = None
) -> bool:
    """Claim and run one due job; False when there was nothing to do. With `sweep` the jobs
    whose lease expired are put back in the queue first (a busy worker does it now and then);
    with `max_priority` only jobs at least that urgent are taken (`Worker`'s order lane)."""
    job = _claim_one(runtime, worker, sweep=sweep, max_priority=max_priority)
    if job is None:
        return False
    run_claimed(runtime, job)
    return True


def _claim_one(
    runtime: Runtime, worker: str, *, sweep: bool, max_priority: int | None
) -> Job | None:
    settings = runtime.settings
    # A plain connection: the claim is one prebuilt statement, and an ORM session around it
    # cost more CPU than the statement itself. Without a sweep it is the only statement, so on
    # Postgres it is its own transaction (no BEGIN and COMMIT round trips).
    with runtime.db.connect(one_statement=not sweep) as connection:
        jobs = queue.claim(
            connection,
            worker,
            settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
            sweep=sweep,
            max_priority=max_priority,
        )
    return jobs[0] if jobs else None


def run_claimed(runtime: Runtime, job: Job, then: NextClaim | None = None) -> Job | None:
    """Run a job this worker holds, and record how it ended. With `then`, a job that finishes
    alone claims the worker's next job as it finishes (`JobContext.finish_alone`): that job,
    now held by this worker, is returned for it to run; None otherwise."""
    # In a copy of this thread's context: the job's log bindings, and those a handler adds
    # (event_id, channel), are set in the copy and vanish with it, so the next job this
    # thread runs does not log under this one's ids, and there is nothing to unbind (clearing
    # structlog's context walks every variable: as much CPU as the rest of the bookkeeping).
    return contextvars.copy_context().run(_run_claimed, runtime, job, then)


def _run_claimed(runtime: Runtime, job: Job, then: NextClaim | None) -> Job | None:
    kind = KINDS.get(job.kind)
    structlog.contextvars.bind_contextvars(job_id=job.id, job_kind=job.kind, order_id=job.order_id)
    started = time.perf_counter()
    latency, seconds = _timers(job.kind)
    latency.observe(max(0.0, (utcnow() - job.run_at).total_seconds()))
    outcome = "ok"
    forget_status()
    # A next job is claimed only by the finish after the handler returned (`finish_returned`,
    # the last step of the `try` below): nothing that could raise runs after it is claimed, so
    # it is always returned to be run.
    ctx = JobContext(runtime, job, then=then)
    try:
        if kind is None:
            raise Permanent(f"no handler for job kind {job.kind!r}")
        kind.handler(ctx)
        if not ctx.finished:
            ctx.finish_returned()
    except queue.LeaseLost:
        outcome = "lease_lost"
        log.warning("hub.jobs.lease_lost")
    except (Retriable, TryAgain) as exc:
        outcome = _retry_or_bury(runtime, job, _describe(exc), exc.after, _status(exc))
    except (Permanent, FlowNotSupported) as exc:
        outcome = "dead"
        _bury(runtime, job, _describe(exc), _status(exc))
    except Exception as exc:
        if _deterministic(exc):
            # The same data would fail the same way on every attempt: no point waiting a day.
            log.exception("hub.jobs.data_error")
            outcome = "dead"
            _bury(runtime, job, _crash(exc), None)
        else:
            # A bug or an unexpected database error: retried like a transient fault, so a fix
            # deployed meanwhile picks the job up, and buried when the retry window has passed.
            log.exception("hub.jobs.crashed")
            outcome = _retry_or_bury(runtime, job, _crash(exc), None, None)
    finally:
        _runs(job.kind, outcome).inc()
        seconds.observe(time.perf_counter() - started)
    return ctx.next_job


def _hand_back(runtime: Runtime, job: Job) -> None:
    """Give back a job this worker claimed and never started, without spending an attempt."""
    try:
        with runtime.db.connect(one_statement=True) as connection:
            queue.release(connection, job)
    except queue.LeaseLost:
        # Its lease expired meanwhile and a sweep put it back already: nothing left to give.
        log.info("hub.jobs.hand_back_after_sweep", job_id=job.id, kind=job.kind)


# A metric's child for a set of labels, looked up once: `labels()` validates and locks on
# every call. Bounded by the job kinds (and outcomes) in the queue, as the metrics are.
@functools.cache
def _timers(kind: str) -> tuple[Histogram, Histogram]:
    """The latency and duration histograms of `kind`."""
    return metrics.JOB_LATENCY.labels(kind), metrics.JOB_SECONDS.labels(kind)


@functools.cache
def _runs(kind: str, outcome: str) -> Counter:
    return metrics.JOBS_RUN.labels(kind, outcome)


def _deterministic(exc: Exception) -> bool:
    """A database error the same data raises every time: Postgres's data exceptions (value too
    long, invalid text representation or encoding, numeric out of range: SQLAlchemy's
    DataError), or a value the driver cannot bind at all (SQLite's integer overflow)."""
    if isinstance(exc, StatementError) and not isinstance(exc, DataError):
        return isinstance(exc.orig, OverflowError | UnicodeEncodeError)
    return isinstance(exc, DataError | OverflowError)


def _crash(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _describe(exc: Exception) -> str:
    if isinstance(exc, ConnectorError):
        return exc.reason
    return str(exc) or type(exc).__name__


def _status(exc: Exception) -> int | None:
    """What the other side answered to the call that failed: the error's own status, else the
    latest answer this job's calls got (a client maps a 4xx after the transport returned it)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    return last_status() if isinstance(exc, ConnectorError) else None


def _retry_or_bury(
    runtime: Runtime, job: Job, error: str, after: float | None, status: int | None
) -> str:
    """Retry `job` after a backoff while its retry window lasts, else bury it. The last try
    is made at the window's end; a wait asked for (`after`) that outlasts it buries the job."""
    settings = runtime.settings
    limit = job.max_attempts or settings.job_max_attempts
    if limit and job.attempts >= limit:
        _bury(runtime, job, f"gave up after {job.attempts} attempts: {error}", status)
        return "dead"
    now = utcnow()
    first = job.first_attempt_at or job.claimed_at or now
    left = (first + timedelta(seconds=settings.job_retry_window_seconds) - now).total_seconds()
    delay = queue.backoff(job.attempts, settings.job_backoff_base, settings.job_max_backoff_seconds)
    if after is not None and after > left or left <= 0:
        _bury(runtime, job, f"gave up after retrying for {_span(now - first)}: {error}", status)
        return "dead"
    delay = min(max(delay, after or 0.0), left)
    try:
        with runtime.db.connect(one_statement=queue.FINISH_IS_ONE_STATEMENT) as connection:
            queue.retry(connection, job, error, delay=delay, status_code=status)
    except queue.LeaseLost:
        return "lease_lost"
    log.info("hub.jobs.retry", error=error, delay=round(delay, 3), attempt=job.attempts)
    return "retry"


def _span(elapsed: timedelta) -> str:
    seconds = elapsed.total_seconds()
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.1f} s"


def _bury(runtime: Runtime, job: Job, error: str, status: int | None) -> None:
    try:
        with runtime.db.transaction() as session:
            queue.bury(session, job, error, status_code=status)
            hook = on_dead(job.kind)
            if hook is not None:
                hook(session, job, error)
    except queue.LeaseLost:
        return
    log.error("hub.jobs.dead", error=error)


class Runner:
    """One worker thread's jobs, one at a time: claims a job and runs it; a job that finishes
    alone takes the next one in the statement that finishes it (`queue.complete_and_claim`:
    one round trip and one transaction per job instead of two), which runs next without a
    claim of its own. No job is taken that way once `wanted()` is false (the thread is told
    to stop); one taken just before is handed back by `close`, without spending an attempt."""

    def __init__(
        self,
        runtime: Runtime,
        worker: str,
        *,
        max_priority: int | None = None,
        wanted: Callable[[], bool] = lambda: True,
    ) -> None:
        self.runtime = runtime
        self.worker = worker
        self.max_priority = max_priority
        self._then = NextClaim(worker, max_priority, wanted)
        self.held: Job | None = None

    def run_next(self, *, sweep: bool = False) -> bool:
        """Run the job in hand, else one claimed now; False when there was nothing to do. With
        `sweep` the jobs whose lease expired are put back in the queue first (as `run_one`)."""
        if self.held is None:
            job = _claim_one(self.runtime, self.worker, sweep=sweep, max_priority=self.max_priority)
            if job is None:
                return False
        else:
            if sweep:  # before the job leaves `held`: a failed sweep keeps it in hand
                with self.runtime.db.connect() as connection:
                    queue.sweep_expired(connection, self.worker)
            job, self.held = self.held, None
        self.held = run_claimed(self.runtime, job, self._then)
        return True

    def close(self) -> None:
        """Hand back the job in hand, if any: claimed with the last finish, never started."""
        job, self.held = self.held, None
        if job is not None:
            _hand_back(self.runtime, job)


class _SweepClock:
    """Tells the busy threads of one process when to sweep expired leases: a few times per
    lease, so a dead worker's job waits at most a lease and a quarter, and a claim does not pay
    for a sweep every time."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._next = 0.0
        self._lock = threading.Lock()

    def due(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                return False
            self._next = now + self.every
            return True


class Worker:
    """`concurrency` threads claiming and running jobs until `stop()`; with more than one, the
    first takes order-path jobs only (`Priority.ORDER` or more urgent). An idle thread sleeps
    until a job is queued (in this process, or on Postgres in any: LISTEN) or its poll
    interval passes, whichever comes first."""

    def __init__(self, runtime: Runtime, concurrency: int = 1) -> None:
        self.runtime = runtime
        self.concurrency = max(1, concurrency)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Set once a thread found nothing to do, and once LISTEN is in place (Postgres).
        self.idle = threading.Event()
        self.listening = threading.Event()
        self._listener: threading.Thread | None = None
        self._sweeps = _SweepClock(max(0.05, min(runtime.settings.job_lease_seconds / 4, 5.0)))

    def start(self) -> None:
        for i in range(self.concurrency):
            # With several threads the first is the order lane: it takes only order-path jobs,
            # so an order's next step starts at once even while bulk work (a stock import's
            # listing syncs, each waiting on channel APIs) fills every other thread.
            lane = Priority.ORDER if i == 0 and self.concurrency > 1 else None
            thread = threading.Thread(
                target=self._loop, args=(lane,), name=f"hub-worker-{i}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        if self.runtime.db.is_postgres:
            listener = threading.Thread(target=self._listen, name="hub-worker-listen", daemon=True)
            listener.start()
            self._listener = listener
        log.info("hub.worker.started", concurrency=self.concurrency)

    def _loop(self, max_priority: int | None = None) -> None:
        name = worker_name()
        idle = self.runtime.settings.worker_poll_seconds
        runner = Runner(
            self.runtime, name, max_priority=max_priority, wanted=lambda: not self._stop.is_set()
        )
        # The thread's claims and finishes share one kept connection (`Database.pinned`).
        with self.runtime.db.pinned():
            while not self._stop.is_set():
                seen = WAKEUP.generation
                try:
                    busy = runner.run_next(sweep=self._sweeps.due())
                except Exception:
                    log.exception("hub.worker.claim_failed")
                    busy = False
                if not busy and not self._stop.is_set():
                    self.idle.set()
                    WAKEUP.wait(seen, idle)
            try:
                runner.close()
            except Exception:
                # Its lease runs out and a sweep puts it back in the queue.
                log.exception("hub.worker.release_failed")

    def _listen(self) -> None:
        """LISTEN for other processes' enqueues and wake this process's idle threads. A lost
        connection is opened again; meanwhile polling carries on."""
        url = self.runtime.db.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    # Whatever was queued while no one listened is looked for now.
                    WAKEUP.notify()
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=1.0):
                            WAKEUP.notify()
            except Exception:
                self.listening.clear()
                log.exception("hub.worker.listen_failed")
                self._stop.wait(self.runtime.settings.worker_poll_seconds)

    def stop(self, timeout: float | None = 60.0) -> None:
        """Stop taking work; wait for the jobs in hand to finish."""
        self._stop.set()
        WAKEUP.notify()
        for thread in self._threads:
            thread.join(timeout)
        if self._listener is not None:
            # It looks at the stop flag between waits of a second at most.
            self._listener.join(5.0)
        log.info("hub.worker.stopped")

    def drain(self, *, max_rounds: int = 10_000) -> int:
        """Run due jobs in this thread until none is due (tests, demo, one-shot CLI runs)."""
        runner = Runner(self.runtime, worker_name())
        ran = 0
        with self.runtime.db.pinned():
            try:
                # Sweeps before each claim of its own, as `run_one`.
                while ran < max_rounds and runner.run_next(sweep=runner.held is None):
                    ran += 1
            finally:
                runner.close()
        return ran


class Supervisor:
    """`processes` worker processes, each running `target(index)` (a module-level function, so
    a fresh interpreter can import it): one interpreter per core, threads within each for I/O
    waits. A child that dies is started again; SIGTERM or SIGINT stops them all, each finishing
    the jobs in hand (a child that has not stopped after `grace` seconds is killed)."""

    def __init__(
        self, target: Callable[[int], None], processes: int, *, grace: float = 90.0
    ) -> None:
        self.target = target
        self.processes = max(1, processes)
        self.grace = grace
        self._context = multiprocessing.get_context("spawn")
        self._stop = threading.Event()

    def _start(self, index: int) -> BaseProcess:
        child = self._context.Process(
            target=self.target, args=(index,), name=f"hub-worker-{index}", daemon=False
        )
        child.start()
        log.info("hub.worker.process_started", index=index, pid=child.pid)
        return child

    def run(self) -> None:
        """Start the children and keep them running until a signal; then stop them all."""

        def handle(_signum: int, _frame: FrameType | None) -> None:
            self._stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, handle)
        children = [self._start(index) for index in range(self.processes)]
        # A timed wait: the main thread must wake now and then for the handler to run.
        while not self._stop.wait(0.5):
            for index, child in enumerate(children):
                if not child.is_alive() and not self._stop.is_set():
                    log.error(
                        "hub.worker.process_died", index=index, pid=child.pid, code=child.exitcode
                    )
                    children[index] = self._start(index)
        self._stop_all(children)

    def _stop_all(self, children: list[BaseProcess]) -> None:
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: the child finishes its jobs in hand
        deadline = time.monotonic() + self.grace
        for child in children:
            child.join(max(0.0, deadline - time.monotonic()))
            if child.is_alive():
                log.error("hub.worker.process_killed", pid=child.pid)
                child.kill()
                child.join()
        log.info("hub.worker.processes_stopped", processes=len(children))

    def stop(self, *_: Any) -> None:
        self._stop.set()
