"""Jobs of fulfilment: route an order to its provider, cancel it there, poll its status, push
each shipment's tracking to the channel, and look for routed orders whose provider went quiet.

Each handler reads what it needs, calls out with no transaction open, and applies the result in
the same transaction that marks the job done.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlmodel import Session

from connectors.base import Capability, FlowNotSupported, SkuMapping
from hub.fulfilment import repository as repo
from hub.fulfilment import service as fulfilment
from hub.fulfilment.service import CANCEL, POLL, PUSH_TRACKING, ROUTE
from hub.jobs.context import JobContext
from hub.jobs.models import Job
from hub.jobs.registry import Periodic, job_handler
from hub.jobs.schedules import interval
from hub.orders import repository as orders_repo
from hub.orders import service as orders
from hub.types import utcnow
from state_machines.order import OrderState

log = structlog.get_logger("hub.fulfilment")

POLL_QUIET = "maintenance.poll_quiet_fulfilment"
POLL_QUIET_FULFILMENT = "poll-quiet-fulfilment"  # the schedule
REFRESH_SKU_MAPS = "fulfilment.refresh_sku_maps"


def _flag_with_reason(session: Session, job: Job, error: str) -> None:
    """A provider's refusal is flagged in its own words (for Deliverr, the seed's explanation
    of the error code), which is what the person fixing the order needs to read."""
    if job.order_id is not None:
        orders.flag(session, job.order_id, error, f"job:{job.id}")


def _order_id(ctx: JobContext) -> str:
    assert ctx.job.order_id is not None, f"job {ctx.job.id} has no order"
    return ctx.job.order_id


@job_handler(ROUTE.kind, on_dead=_flag_with_reason)
def route(ctx: JobContext) -> None:
    """Send a confirmed order to its provider. A retry after a timeout finds the provider's
    order by our id instead of creating a second one (the connector guarantees it)."""
    runtime, order_id = ctx.runtime, _order_id(ctx)
    enabled = list(runtime.connectors.providers)
    with runtime.db.reader() as session:
        order = orders.get(session, order_id)
        if order.status != OrderState.CONFIRMED or order.fulfilment_provider:
            return
        lines = orders_repo.lines(session, order_id)
        unnamed = fulfilment.lines_without_sku(lines)
        provider_name = fulfilment.choose_provider(
            session, order, lines, enabled, runtime.settings.default_provider
        )
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
        fulfilment.routed(session, order, provider_name, ref, f"job:{ctx.job.id}")
        if order.status == OrderState.CANCELLED and ref:
            # Cancelled while the provider call was in flight: take it back at once.
            CANCEL.enqueue(session, order.id)
        ctx.finish(session)


def _provider_order(ctx: JobContext) -> tuple[str, str] | None:
    """(provider, its order id) of the job's order; None when no provider holds it."""
    with ctx.runtime.db.reader() as session:
        order = orders.get(session, _order_id(ctx))
        provider, ref = order.fulfilment_provider, order.fulfilment_ref
    if not provider or not ref or provider == fulfilment.MANUAL:
        return None
    return provider, ref


@job_handler(CANCEL.kind, on_dead=_flag_with_reason)
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


@job_handler(POLL.kind)
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
        fulfilment.apply_fulfilment(session, order, provider, status, f"poll:{ctx.job.id}")
        ctx.finish(session)


@job_handler(PUSH_TRACKING.kind)
def push_tracking(ctx: JobContext) -> None:
    """Tell the order's channel about one shipment, once (a forced push repeats it)."""
    runtime, order_id = ctx.runtime, _order_id(ctx)
    shipment_id = int(ctx.job.payload["shipment_id"])
    with runtime.db.reader() as session:
        order = orders.get(session, order_id)
        view = fulfilment.with_channel_carriers(
            fulfilment.view(session, order_id), runtime.settings.carrier_names
        )
    pushed = next((s for s in view.shipments if s.shipment_id == str(shipment_id)), None)
    if pushed is None or (pushed.pushed_to_channel and not ctx.job.payload.get("force")):
        return
    try:
        runtime.connectors.channel(order.channel).push_tracking(view, str(shipment_id))
    except FlowNotSupported:
        return
    with runtime.db.transaction() as session:
        fulfilment.mark_pushed(session, shipment_id, f"job:{ctx.job.id}")
        ctx.finish(session)


@job_handler(
    POLL_QUIET,
    periodic=Periodic(
        POLL_QUIET_FULFILMENT, lambda settings: interval(settings.maintenance_interval_seconds)
    ),
)
def poll_quiet_fulfilment(ctx: JobContext) -> None:
    """Queue a status poll for every routed order its provider has not spoken of lately."""
    runtime = ctx.runtime
    quiet = utcnow() - timedelta(minutes=runtime.settings.fulfilment_poll_after_minutes)
    slot = ctx.job.idempotency_key
    providers = runtime.connectors.providers
    with runtime.db.transaction() as session:
        for order in repo.routed_without_update(session, quiet):
            # Manual fulfilment has nobody to ask; a provider switched off cannot be asked.
            if order.fulfilment_provider not in providers:
                continue
            POLL.enqueue(session, order.id, None, slot)
        ctx.finish(session)


@job_handler(
    REFRESH_SKU_MAPS,
    periodic=Periodic(
        "refresh-sku-maps", lambda settings: interval(settings.sku_map_refresh_seconds)
    ),
)
def refresh_sku_maps(ctx: JobContext) -> None:
    """Re-read the product list of every provider that names products by its own ids, so a
    product added or renamed there is mapped before an order needs it (a miss re-reads too)."""
    runtime = ctx.runtime
    mapped: dict[str, int] = {}
    for name, provider in sorted(runtime.connectors.providers.items()):
        if Capability.SKU_MAP in provider.capabilities and isinstance(provider, SkuMapping):
            mapped[name] = provider.refresh_sku_map()
    with runtime.db.transaction() as session:
        ctx.finish(session)
    log.info("hub.fulfilment.sku_maps_refreshed", mapped=mapped)
