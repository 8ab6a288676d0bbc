"""Job kinds that exist only in tests: they record every run so "exactly once" can be counted."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import text

from connectors.base import Permanent, Retriable
from hub.jobs.context import JobContext
from hub.jobs.priorities import Priority
from hub.jobs.registry import job_handler

COUNT = "test.count"
BULK = "test.bulk"
FLAKY = "test.flaky"
CRASH = "test.crash"
DATA_ERROR = "test.data_error"
GATED = "test.gated"
URGENT = "test.urgent"
FINISH_THEN_CRASH = "test.finish_then_crash"
# Held shut by a test; a gated job waits for it (at most a minute), occupying its thread.
GATE = threading.Event()

_lock = threading.Lock()
_runs: Counter[int] = Counter()


def runs() -> Counter[int]:
    """How many times each job id's handler ran, in this process."""
    with _lock:
        return Counter(_runs)


def reset() -> None:
    with _lock:
        _runs.clear()


def _record(ctx: JobContext) -> int:
    assert ctx.job.id is not None
    with _lock:
        _runs[ctx.job.id] += 1
        return _runs[ctx.job.id]


@job_handler(COUNT)
def count(ctx: JobContext) -> None:
    """Counts the run, then finishes in its own transaction as real handlers do."""
    _record(ctx)
    with ctx.runtime.db.transaction() as session:
        ctx.finish(session)


@job_handler(BULK, priority=Priority.BULK)
def bulk(ctx: JobContext) -> None:
    """Bulk work, queued behind everything more urgent."""
    _record(ctx)


@job_handler(FLAKY)
def flaky(ctx: JobContext) -> None:
    """Fails as `payload["fail"]` says for the first `payload["times"]` runs, then succeeds."""
    run = _record(ctx)
    if run <= int(ctx.job.payload.get("times", 0)):
        reason = f"failure {run}"
        if ctx.job.payload.get("fail") == "permanent":
            raise Permanent(reason)
        raise Retriable(reason, after=ctx.job.payload.get("after"))


@job_handler(CRASH)
def crash(ctx: JobContext) -> None:
    """A handler with a bug."""
    _record(ctx)
    raise ZeroDivisionError("division by zero in a handler")


@job_handler(DATA_ERROR)
def data_error(ctx: JobContext) -> None:
    """Stores a number no integer column holds: the same error on every attempt."""
    _record(ctx)
    with ctx.runtime.db.transaction() as session:
        session.execute(text("SELECT CAST(:n AS INTEGER)"), {"n": 2**70})


@job_handler(GATED, priority=Priority.BULK)
def gated(ctx: JobContext) -> None:
    """Bulk work that takes as long as the test keeps `GATE` shut."""
    _record(ctx)
    GATE.wait(60)


@job_handler(URGENT, priority=Priority.ORDER)
def urgent(ctx: JobContext) -> None:
    """An order-path step."""
    _record(ctx)


@job_handler(FINISH_THEN_CRASH)
def finish_then_crash(ctx: JobContext) -> None:
    """A handler with a bug after its job is finished."""
    _record(ctx)
    ctx.finish_alone()
    raise ZeroDivisionError("division by zero after finishing")
