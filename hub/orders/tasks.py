"""Jobs that call a sales channel about an order, then apply the state the answer allows.

Each handler reads what it needs, calls the channel outside any transaction, and applies the
follow-up transition in the same transaction that marks the job done.
"""

from __future__ import annotations

from contextlib import suppress

from sqlmodel import Session

from connectors.base import FlowNotSupported
from hub.inventory import service as inventory
from hub.jobs.context import JobContext
from hub.jobs.models import Job
from hub.jobs.registry import job_handler
from hub.orders import service
from hub.orders.flows import flow_for
from state_machines.order import OrderState, Trigger


def _source(ctx: JobContext) -> str:
    return f"job:{ctx.job.id}"


def _order_id(ctx: JobContext) -> str:
    assert ctx.job.order_id is not None, f"job {ctx.job.id} has no order"
    return ctx.job.order_id


@job_handler(service.ACKNOWLEDGE)
def acknowledge(ctx: JobContext) -> None:
    runtime, order_id = ctx.runtime, _order_id(ctx)
    with runtime.db.reader() as session:
        order = service.get(session, order_id)
        if order.status != OrderState.CREATED:
            return
        view = service.view(session, order_id)
    with suppress(FlowNotSupported):  # nothing to tell this channel; the state still moves
        runtime.connectors.channel(order.channel).acknowledge(view)
    with runtime.db.transaction() as session:
        order = service.get(session, order_id)
        if order.status == OrderState.CREATED:
            service.fire(session, order, Trigger.ACKNOWLEDGE, _source(ctx))
            service.advance(
                session,
                order,
                _source(ctx),
                flow_for(order.channel),
                runtime.settings.untracked_skus,
            )
        ctx.finish(session)


def _release_on_dead(session: Session, job: Job, error: str) -> None:
    """An accept that can never succeed: give the units back and ask a person."""
    if job.order_id is None:
        return
    inventory.release(session, job.order_id)
    service.flag(session, job.order_id, f"accept failed: {error}", f"job:{job.id}")


@job_handler(service.ACCEPT, on_dead=_release_on_dead)
def accept(ctx: JobContext) -> None:
    runtime, order_id = ctx.runtime, _order_id(ctx)
    with runtime.db.reader() as session:
        order = service.get(session, order_id)
        if order.status not in (OrderState.CREATED, OrderState.ACKNOWLEDGED):
            return
        view = service.view(session, order_id)
    with suppress(FlowNotSupported):
        runtime.connectors.channel(order.channel).accept(view)
    with runtime.db.transaction() as session:
        order = service.get(session, order_id)
        if order.status in (OrderState.CREATED, OrderState.ACKNOWLEDGED):
            service.fire(session, order, Trigger.CONFIRM, _source(ctx))
        ctx.finish(session)


@job_handler(service.REJECT)
def reject(ctx: JobContext) -> None:
    runtime, order_id = ctx.runtime, _order_id(ctx)
    reason = str(ctx.job.payload.get("reason") or "cannot be fulfilled")
    with runtime.db.reader() as session:
        order = service.get(session, order_id)
        if order.status not in (OrderState.CREATED, OrderState.ACKNOWLEDGED):
            return
        view = service.view(session, order_id)
    try:
        runtime.connectors.channel(order.channel).reject(view, reason)
    except FlowNotSupported:
        with runtime.db.transaction() as session:
            service.flag(session, order_id, f"cannot be fulfilled: {reason}", _source(ctx))
            ctx.finish(session)
        return
    with runtime.db.transaction() as session:
        order = service.get(session, order_id)
        if order.status in (OrderState.CREATED, OrderState.ACKNOWLEDGED):
            service.fire(session, order, Trigger.REJECT, _source(ctx), detail={"reason": reason})
        ctx.finish(session)


@job_handler(service.PUSH_TRACKING)
def push_tracking(ctx: JobContext) -> None:
    runtime, order_id = ctx.runtime, _order_id(ctx)
    shipment_id = int(ctx.job.payload["shipment_id"])
    with runtime.db.reader() as session:
        order = service.get(session, order_id)
        view = service.view(session, order_id)
    pushed = next((s for s in view.shipments if s.shipment_id == str(shipment_id)), None)
    if pushed is None or (pushed.pushed_to_channel and not ctx.job.payload.get("force")):
        return
    try:
        runtime.connectors.channel(order.channel).push_tracking(view, str(shipment_id))
    except FlowNotSupported:
        return
    with runtime.db.transaction() as session:
        service.mark_pushed(session, shipment_id, _source(ctx))
        ctx.finish(session)
