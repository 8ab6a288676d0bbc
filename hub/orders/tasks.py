"""Jobs that call a sales channel about an order, then apply the state the answer allows; the
job that hands freed units to paid orders waiting for them; and the sweep for stuck orders.

Each handler reads what it needs, calls the channel outside any transaction, and applies the
follow-up transition in the same transaction that marks the job done.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlmodel import Session

from connectors.base import FlowNotSupported
from hub import metrics
from hub.inventory import service as inventory
from hub.jobs.context import JobContext
from hub.jobs.models import Job
from hub.jobs.priorities import Priority
from hub.jobs.registry import Periodic, default_on_dead, job_handler, on_done
from hub.jobs.schedules import interval
from hub.orders import repository as repo
from hub.orders import service
from hub.orders.jobs import ACCEPT, ACKNOWLEDGE, REJECT
from hub.types import utcnow
from state_machines.order import OrderState, Trigger, may

log = structlog.get_logger("hub.orders")

STUCK = "maintenance.stuck_orders"
STUCK_ORDERS = "stuck-orders"  # the schedule

# What an order stuck in each state is waiting for, for the person who reads the flag.
_WAITING_FOR = {
    OrderState.CREATED: "acknowledgement",
    OrderState.ACKNOWLEDGED: "confirmation",
    OrderState.CONFIRMED: "a shipment",
    OrderState.PARTIALLY_FULFILLED: "the rest of its shipments",
}


def _source(ctx: JobContext) -> str:
    return f"job:{ctx.job.id}"


def _order_id(ctx: JobContext) -> str:
    assert ctx.job.order_id is not None, f"job {ctx.job.id} has no order"
    return ctx.job.order_id


@default_on_dead
def flag_order_of_dead_job(session: Session, job: Job, error: str) -> None:
    """A job about an order that gave up leaves the order flagged with why."""
    if job.order_id is not None:
        service.flag(
            session,
            job.order_id,
            f"{job.kind} failed: {error}",
            f"job:{job.id}",
            code=service.JOB_FAILED,
        )


@on_done
def resolve_flags_of_job(session: Session, job: Job) -> None:
    """A job that failed before (and flagged its order when it died) succeeded: the failure is
    no longer a reason to look at the order."""
    if job.order_id is None or job.last_error is None:
        return
    order = repo.get(session, job.order_id)
    if order is not None:
        service.clear_flag(
            session, order, f"job:{job.id}", code=service.JOB_FAILED, raised_by=f"job:{job.id}"
        )


@job_handler(ACKNOWLEDGE.kind, priority=Priority.ORDER)
def acknowledge(ctx: JobContext) -> None:
    runtime, order_id = ctx.runtime, _order_id(ctx)
    with runtime.db.reader() as session:
        order = service.get(session, order_id)
        if not may(order.status, Trigger.ACKNOWLEDGE):
            return
        view = service.view(session, order_id)
    runtime.connectors.channel(order.connection).acknowledge(view)
    with runtime.db.transaction() as session:
        order = service.get(session, order_id)
        if may(order.status, Trigger.ACKNOWLEDGE):
            service.fire(session, order, Trigger.ACKNOWLEDGE, _source(ctx))
            service.advance(session, runtime, order, _source(ctx))
        ctx.finish(session)


def _release_on_dead(session: Session, job: Job, error: str) -> None:
    """An accept that can never succeed: give the units back and ask a person."""
    if job.order_id is None:
        return
    inventory.release(session, job.order_id)
    service.flag(
        session,
        job.order_id,
        f"accept failed: {error}",
        f"job:{job.id}",
        code=service.JOB_FAILED,
    )


@job_handler(ACCEPT.kind, on_dead=_release_on_dead, priority=Priority.ORDER)
def accept(ctx: JobContext) -> None:
    runtime, order_id = ctx.runtime, _order_id(ctx)
    with runtime.db.reader() as session:
        order = service.get(session, order_id)
        if not may(order.status, Trigger.CONFIRM):
            return
        view = service.view(session, order_id)
    runtime.connectors.channel(order.connection).accept(view)
    with runtime.db.transaction() as session:
        order = service.get(session, order_id)
        if may(order.status, Trigger.CONFIRM):
            service.fire(session, order, Trigger.CONFIRM, _source(ctx))
        ctx.finish(session)


@job_handler(REJECT.kind, priority=Priority.ORDER)
def reject(ctx: JobContext) -> None:
    runtime, order_id = ctx.runtime, _order_id(ctx)
    reason = str(ctx.job.payload.get("reason") or "cannot be fulfilled")
    with runtime.db.reader() as session:
        order = service.get(session, order_id)
        if not may(order.status, Trigger.REJECT):
            return
        view = service.view(session, order_id)
    try:
        runtime.connectors.channel(order.connection).reject(view, reason)
    except FlowNotSupported:
        with runtime.db.transaction() as session:
            service.flag(session, order_id, f"cannot be fulfilled: {reason}", _source(ctx))
            ctx.finish(session)
        return
    with runtime.db.transaction() as session:
        order = service.get(session, order_id)
        if may(order.status, Trigger.REJECT):
            service.fire(session, order, Trigger.REJECT, _source(ctx), detail={"reason": reason})
        ctx.finish(session)


@job_handler(service.FILL_WAITING, priority=Priority.ORDER)
def fill_waiting(ctx: JobContext) -> None:
    """Offer the free units of a SKU to the paid orders waiting for it, oldest first."""
    runtime = ctx.runtime
    with runtime.db.transaction() as session:
        service.fill_waiting(session, runtime, str(ctx.job.payload["sku"]), _source(ctx))
        ctx.finish(session)


@job_handler(
    STUCK,
    priority=Priority.BULK,
    periodic=Periodic(
        STUCK_ORDERS, lambda settings: interval(settings.maintenance_interval_seconds)
    ),
)
def flag_stuck_orders(ctx: JobContext) -> None:
    """Flag every order that stayed in one state longer than its configured limit."""
    runtime = ctx.runtime
    now = utcnow()
    with runtime.db.transaction() as session:
        for state, hours in runtime.settings.stuck_after_hours.items():
            if state not in _WAITING_FOR:
                # A finished order is not stuck (flagging every one of them helps nobody), and
                # a misspelt state matches no order.
                log.warning("hub.orders.stuck_state_ignored", state=state)
                continue
            waiting_for = _WAITING_FOR[OrderState(state)]
            for order in repo.stuck(session, state, now - timedelta(hours=hours)):
                service.flag(
                    session,
                    order.id,
                    f"stuck: {state} for more than {hours:g} h, waiting for {waiting_for}",
                    _source(ctx),
                    code=service.STUCK,
                )
                metrics.STUCK_ORDERS.labels(state).inc()
        ctx.finish(session)
