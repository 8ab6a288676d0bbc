"""Jobs of reconciliation and upkeep: a reconciliation run, the stuck-order sweep, and the
search for routed orders whose provider has gone quiet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from itertools import islice

import structlog
from sqlmodel import Session

from connectors.base import ChannelOrder, ConnectorError, Permanent
from connectors.registry import NotConfigured
from hub import metrics
from hub.fulfilment.tasks import POLL
from hub.jobs import queue
from hub.jobs.context import JobContext
from hub.jobs.models import Job
from hub.jobs.registry import job_handler
from hub.orders import repository as orders_repo
from hub.orders import service as orders
from hub.reconcile import repository as repo
from hub.reconcile import service
from hub.reconcile.models import ReconcileRun
from hub.reconcile.service import RUN
from hub.types import utcnow
from state_machines.order import OrderState

log = structlog.get_logger("hub.reconcile")

STUCK = "maintenance.stuck_orders"
POLL_QUIET = "maintenance.poll_quiet_fulfilment"

# Orders applied per transaction: one Depop page. Bigger batches commit less often; smaller
# ones keep a run's progress visible and its locks short.
BATCH = 200

# What an order stuck in each state is waiting for, for the person who reads the flag.
_WAITING_FOR = {
    OrderState.CREATED: "acknowledgement",
    OrderState.ACKNOWLEDGED: "confirmation",
    OrderState.CONFIRMED: "a shipment",
    OrderState.PARTIALLY_FULFILLED: "the rest of its shipments",
}


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


@job_handler(RUN, on_dead=_run_dead)
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
        channel_name, since, until = run.channel, run.window_from, run.window_to
    try:
        try:
            channel = runtime.connectors.channel(channel_name)
        except NotConfigured:
            raise Permanent(f"channel {channel_name} is not configured") from None
        listing: Iterator[ChannelOrder] = channel.list_orders(since, until)
        while batch := list(islice(listing, BATCH)):
            with runtime.db.transaction() as session:
                # A long run keeps its lease while it makes progress.
                queue.extend_lease(session, ctx.job, lease)
                run = _load(session, run_id)
                service.apply_batch(session, runtime.settings, run, batch)
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
        channel=channel_name,
        seen=run.seen,
        created=run.created,
        updated=run.updated,
        mismatches=len(run.mismatches),
    )


@job_handler(STUCK)
def flag_stuck_orders(ctx: JobContext) -> None:
    """Flag every order that stayed in one state longer than its configured limit."""
    runtime = ctx.runtime
    now = utcnow()
    with runtime.db.transaction() as session:
        for state, hours in runtime.settings.stuck_after_hours.items():
            if state not in _WAITING_FOR:
                # A finished order is not stuck (flagging every one of them helps nobody), and
                # a misspelt state matches no order.
                log.warning("hub.reconcile.stuck_state_ignored", state=state)
                continue
            waiting_for = _WAITING_FOR[OrderState(state)]
            for order in orders_repo.stuck(session, state, now - timedelta(hours=hours)):
                orders.flag(
                    session,
                    order.id,
                    f"stuck: {state} for more than {hours:g} h, waiting for {waiting_for}",
                    f"job:{ctx.job.id}",
                )
                metrics.STUCK_ORDERS.labels(state).inc()
        ctx.finish(session)


@job_handler(POLL_QUIET)
def poll_quiet_fulfilment(ctx: JobContext) -> None:
    """Queue a status poll for every routed order its provider has not spoken of lately."""
    runtime = ctx.runtime
    quiet = utcnow() - timedelta(minutes=runtime.settings.fulfilment_poll_after_minutes)
    slot = ctx.job.idempotency_key
    providers = runtime.connectors.providers
    with runtime.db.transaction() as session:
        for order in orders_repo.routed_without_update(session, quiet):
            # Manual fulfilment has nobody to ask; a provider switched off cannot be asked.
            if order.fulfilment_provider not in providers:
                continue
            queue.enqueue(session, POLL, f"order:{order.id}:poll:{slot}", order_id=order.id)
        ctx.finish(session)
