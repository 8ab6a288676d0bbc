"""Jobs that talk to fulfilment providers: route an order, cancel it, poll its status."""

from __future__ import annotations

from sqlmodel import Session

from hub.fulfilment import service as fulfilment
from hub.jobs.context import JobContext
from hub.jobs.models import Job
from hub.jobs.registry import job_handler
from hub.orders import repository as orders_repo
from hub.orders import service as orders
from state_machines.order import OrderState

POLL = "fulfilment.poll"


def _flag_with_reason(session: Session, job: Job, error: str) -> None:
    """A provider's refusal is flagged in its own words (for Deliverr, the seed's explanation
    of the error code), which is what the person fixing the order needs to read."""
    if job.order_id is not None:
        orders.flag(session, job.order_id, error, f"job:{job.id}")


@job_handler(orders.ROUTE, on_dead=_flag_with_reason)
def route(ctx: JobContext) -> None:
    """Send a confirmed order to its provider. A retry after a timeout finds the provider's
    order by our id instead of creating a second one (the connector guarantees it)."""
    runtime = ctx.runtime
    order_id = ctx.job.order_id
    assert order_id is not None
    enabled = list(runtime.connectors.providers)
    with runtime.db.reader() as session:
        order = orders.get(session, order_id)
        if order.status != OrderState.CONFIRMED or order.fulfilment_provider:
            return
        lines = orders_repo.lines(session, order_id)
        unnamed = fulfilment.lines_without_sku(lines)
        provider_name = fulfilment.choose_provider(session, order, lines, enabled)
        request = fulfilment.request_for(order, lines)
    if unnamed:
        # No provider can pick a line without a SKU, and shipping the rest would split the
        # parcel: the order waits, flagged (again, after an operator's retry) for a person.
        source = f"job:{ctx.job.id}"
        with runtime.db.transaction() as session:
            order = orders.get(session, order_id)
            detail = {"reason": fulfilment.NO_SKU, "lines": unnamed}
            orders.note(session, order, "not_routed", source, detail)
            if order.attention_reason != fulfilment.NO_SKU:
                orders.flag(session, order_id, fulfilment.NO_SKU, source)
            ctx.finish(session)
        return
    ref: str | None = None
    if provider_name != fulfilment.MANUAL and request.lines:
        ref = runtime.connectors.provider(provider_name).create_order(request)
    with runtime.db.transaction() as session:
        order = orders.get(session, order_id)
        orders.routed(session, order, provider_name, ref, f"job:{ctx.job.id}")
        if order.status == OrderState.CANCELLED and ref:
            # Cancelled while the provider call was in flight: take it back at once.
            orders.enqueue_fulfilment_cancel(session, order)
        ctx.finish(session)


def _order_id(ctx: JobContext) -> str:
    assert ctx.job.order_id is not None, f"job {ctx.job.id} has no order"
    return ctx.job.order_id


def _provider_order(ctx: JobContext) -> tuple[str, str] | None:
    """(provider, its order id) of the job's order; None when no provider holds it."""
    with ctx.runtime.db.reader() as session:
        order = orders.get(session, _order_id(ctx))
        provider, ref = order.fulfilment_provider, order.fulfilment_ref
    if not provider or not ref or provider == fulfilment.MANUAL:
        return None
    return provider, ref


@job_handler(orders.CANCEL_FULFILMENT, on_dead=_flag_with_reason)
def cancel(ctx: JobContext) -> None:
    """The order was cancelled after routing: cancel it at the provider. A provider that can no
    longer cancel raises Permanent, and the dead job flags the order with its reason."""
    runtime, order_id = ctx.runtime, _order_id(ctx)
    routed = _provider_order(ctx)
    if routed is None:
        return
    provider, ref = routed
    runtime.connectors.provider(provider).cancel_order(ref)
    with runtime.db.transaction() as session:
        order = orders.get(session, order_id)
        orders.note(
            session,
            order,
            "fulfilment_cancelled",
            f"job:{ctx.job.id}",
            {"provider": provider, "reference": ref},
        )
        ctx.finish(session)


@job_handler(POLL)
def poll(ctx: JobContext) -> None:
    """Ask the provider where an order stands: the same fold as its webhooks."""
    runtime, order_id = ctx.runtime, _order_id(ctx)
    routed = _provider_order(ctx)
    if routed is None:
        return
    provider, ref = routed
    status = runtime.connectors.provider(provider).get_order(ref)
    with runtime.db.transaction() as session:
        order = orders.get(session, order_id)
        orders.apply_fulfilment(session, order, provider, status, f"poll:{ctx.job.id}")
        ctx.finish(session)
