"""Reconciliation jobs: a run reads one channel's orders over a window and applies them; one
run per enabled channel is scheduled on HUB_RECONCILE_CRON."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import islice

import structlog
from sqlmodel import Session

from connectors.base import ChannelOrder, ConnectorError, Permanent
from connectors.registry import DEFAULT, NotConfigured
from hub.jobs import queue
from hub.jobs.context import JobContext
from hub.jobs.models import Job
from hub.jobs.priorities import Priority
from hub.jobs.registry import job_handler, schedules
from hub.jobs.schedules import Schedule, cron, slot_key
from hub.reconcile import repository as repo
from hub.reconcile import service
from hub.reconcile.models import ReconcileRun
from hub.reconcile.readahead import read_ahead
from hub.reconcile.service import RUN
from hub.runtime import Runtime

log = structlog.get_logger("hub.reconcile")

# Orders applied per transaction: one Depop page. Bigger batches commit less often; smaller
# ones keep a run's progress visible and its locks short.
BATCH = 200


def _batches(listing: Iterator[ChannelOrder]) -> Iterator[list[ChannelOrder]]:
    while batch := list(islice(listing, BATCH)):
        yield batch


def _load(session: Session, run_id: str) -> ReconcileRun:
    run = repo.get(session, run_id)
    if run is None:
        raise Permanent(f"reconciliation run {run_id} does not exist")
    return run


def _run_dead(session: Session, job: Job, error: str) -> None:
    """The run's job gave up: the run failed, with the reason."""
    run = repo.get(session, str(job.payload.get("run_id")))
    if run is not None and run.state != "done":
        service.failed(run, error)
        session.add(run)


@job_handler(RUN, on_dead=_run_dead, priority=Priority.BULK)
def run_reconciliation(ctx: JobContext) -> None:
    """Read every order in the run's window, page by page, and apply each batch in its own
    transaction; the channel is called between transactions, never inside one."""
    runtime = ctx.runtime
    run_id = str(ctx.job.payload["run_id"])
    lease = runtime.settings.job_lease_seconds
    # Every write to the run is fenced by the job's lease (`extend_lease` raises LeaseLost once
    # another worker holds it), so a stale attempt never resets or marks a run in progress.
    with runtime.db.transaction() as session:
        queue.extend_lease(session, ctx.job, lease)
        run = _load(session, run_id)
        if run.state == "done":
            ctx.finish(session)
            return
        service.begin(run)
        session.add(run)
        connection, since, until = run.connection, run.window_from, run.window_to
    try:
        try:
            channel = runtime.connectors.channel(connection)
        except NotConfigured:
            raise Permanent(f"connection {connection} is disabled or not configured") from None
        listing: Iterator[ChannelOrder] = channel.list_orders(since, until)
        # The next page is read while this one is applied; pages still go in one at a time,
        # in order, and a page that cannot be read fails the run after the ones before it.
        with read_ahead(_batches(listing), name=f"reconcile-{run_id}") as batches:
            for batch in batches:
                with runtime.db.transaction() as session:
                    # A long run keeps its lease while it makes progress.
                    queue.extend_lease(session, ctx.job, lease)
                    run = _load(session, run_id)
                    service.apply_batch(session, runtime, run, batch)
    except queue.LeaseLost:
        raise
    except Exception as exc:
        reason = exc.reason if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}"
        with runtime.db.transaction() as session:
            queue.extend_lease(session, ctx.job, lease)
            run = _load(session, run_id)
            service.interrupted(run, reason)
            session.add(run)
        raise
    with runtime.db.transaction() as session:
        run = _load(session, run_id)
        service.finish(run)
        session.add(run)
        ctx.finish(session)
    log.info(
        "hub.reconcile.done",
        run_id=run_id,
        connection=connection,
        seen=run.seen,
        created=run.created,
        updated=run.updated,
        mismatches=len(run.mismatches),
    )


def reconcile_schedule_name(connection: str) -> str:
    """A default connection keeps the schedule name it had when a system had one account."""
    return f"reconcile:{connection.removesuffix('/' + DEFAULT)}"


@schedules
def reconcile_schedules(runtime: Runtime) -> list[Schedule]:
    """One reconciliation per enabled channel connection on HUB_RECONCILE_CRON (UTC): each its
    own job, so a failing connection never delays another."""
    reconcile_on = cron(runtime.settings.reconcile_cron)
    return [
        Schedule(reconcile_schedule_name(key), reconcile_on, _reconcile(runtime, key))
        for key in runtime.connectors.channel_keys()
    ]


def _reconcile(runtime: Runtime, connection: str) -> Callable[[Session, datetime], None]:
    def enqueue(session: Session, slot: datetime) -> None:
        key = slot_key(reconcile_schedule_name(connection), slot)
        service.start_run(session, runtime.settings, connection, window_to=slot, key=key)

    return enqueue
