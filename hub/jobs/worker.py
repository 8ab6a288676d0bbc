"""The worker: claims due jobs, runs their handlers, and decides what a failure means.

Only this layer decides whether to try again: `Retriable` and `TryAgain` back off (capped
exponential, full jitter) until the job's attempts run out, `Permanent` and `FlowNotSupported`
bury the job at once and run its kind's `on_dead` hook, and a lost lease voids the attempt so
another worker's result stands. It knows no domain: what a dead job means is registered.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import structlog

from connectors.base import ConnectorError, FlowNotSupported, Permanent, Retriable
from connectors.http import forget_status, last_status
from hub import metrics
from hub.jobs import queue
from hub.jobs.context import JobContext
from hub.jobs.models import Job
from hub.jobs.registry import KINDS, TryAgain, on_dead
from hub.runtime import Runtime
from hub.types import utcnow

log = structlog.get_logger("hub.jobs")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def run_one(runtime: Runtime, worker: str) -> bool:
    """Claim and run one due job; False when there was nothing to do."""
    settings = runtime.settings
    with runtime.db.transaction() as session:
        jobs = queue.claim(
            session, worker, settings.job_lease_seconds, max_attempts=settings.job_max_attempts
        )
    if not jobs:
        return False
    run_claimed(runtime, jobs[0])
    return True


def run_claimed(runtime: Runtime, job: Job) -> None:
    """Run a job this worker holds, and record how it ended."""
    kind = KINDS.get(job.kind)
    # Handlers bind more (event_id, channel); all of it is dropped when the job ends, so the
    # next job this thread runs does not log under this one's ids.
    outer = structlog.contextvars.get_contextvars()
    structlog.contextvars.bind_contextvars(job_id=job.id, job_kind=job.kind, order_id=job.order_id)
    started = time.perf_counter()
    metrics.JOB_LATENCY.labels(job.kind).observe(max(0.0, (utcnow() - job.run_at).total_seconds()))
    outcome = "ok"
    forget_status()
    try:
        if kind is None:
            raise Permanent(f"no handler for job kind {job.kind!r}")
        ctx = JobContext(runtime, job)
        kind.handler(ctx)
        if not ctx.finished:
            with runtime.db.transaction() as session:
                queue.complete(session, job)
    except queue.LeaseLost:
        outcome = "lease_lost"
        log.warning("hub.jobs.lease_lost")
    except (Retriable, TryAgain) as exc:
        outcome = _retry_or_bury(runtime, job, _describe(exc), exc.after, _status(exc))
    except (Permanent, FlowNotSupported) as exc:
        outcome = "dead"
        _bury(runtime, job, _describe(exc), _status(exc))
    except Exception as exc:
        # A bug or an unexpected database error: retried like a transient fault, so a fix
        # deployed meanwhile picks the job up, and buried when the attempts run out.
        log.exception("hub.jobs.crashed")
        outcome = _retry_or_bury(runtime, job, f"{type(exc).__name__}: {exc}", None, None)
    finally:
        metrics.JOBS_RUN.labels(job.kind, outcome).inc()
        metrics.JOB_SECONDS.labels(job.kind).observe(time.perf_counter() - started)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**outer)


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
    settings = runtime.settings
    if job.attempts >= (job.max_attempts or settings.job_max_attempts):
        _bury(runtime, job, f"gave up after {job.attempts} attempts: {error}", status)
        return "dead"
    delay = queue.backoff(job.attempts, settings.job_backoff_base, settings.job_backoff_cap)
    if after is not None:
        delay = max(delay, after)
    try:
        with runtime.db.transaction() as session:
            queue.retry(session, job, error, delay=delay, status_code=status)
    except queue.LeaseLost:
        return "lease_lost"
    log.info("hub.jobs.retry", error=error, delay=round(delay, 3), attempt=job.attempts)
    return "retry"


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


class Worker:
    """`concurrency` threads claiming and running jobs until `stop()`."""

    def __init__(self, runtime: Runtime, concurrency: int = 1) -> None:
        self.runtime = runtime
        self.concurrency = max(1, concurrency)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.concurrency):
            thread = threading.Thread(target=self._loop, name=f"hub-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("hub.worker.started", concurrency=self.concurrency)

    def _loop(self) -> None:
        name = worker_name()
        idle = self.runtime.settings.worker_poll_seconds
        while not self._stop.is_set():
            try:
                busy = run_one(self.runtime, name)
            except Exception:
                log.exception("hub.worker.claim_failed")
                busy = False
            if not busy:
                self._stop.wait(idle)

    def stop(self, timeout: float | None = 60.0) -> None:
        """Stop taking work; wait for the jobs in hand to finish."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        log.info("hub.worker.stopped")

    def drain(self, *, max_rounds: int = 10_000) -> int:
        """Run due jobs in this thread until none is due (tests, demo, one-shot CLI runs)."""
        name = worker_name()
        ran = 0
        while ran < max_rounds and run_one(self.runtime, name):
            ran += 1
        return ran
