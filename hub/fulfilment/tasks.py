"""Jobs of fulfilment: route an order to its provider, cancel it there, poll its status, push
each shipment's tracking to the channel, and look for routed orders whose provider went quiet.

Each handler reads what it needs, calls out with no transaction open, and applies the result in
the same transaction that marks the job done.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import timedelta

import structlog
from sqlmodel import Session

from connectors.base import (
    Capability,
    FlowNotSupported,
    NeedsInput,
    Pending,
    ProviderOrderNotFound,
    Retriable,
    SkuMapping,
)
from connectors.registry import NotConfigured
from hub.fulfilment import repository as repo
from hub.fulfilment import service as fulfilment
from hub.fulfilment.service import CANCEL, CANCEL_AT_CHANNEL, POLL, PUSH_TRACKING, ROUTE
from hub.jobs import queue
from hub.jobs.context import JobContext
from hub.jobs.models import Job
from hub.jobs.priorities import Priority
from hub.jobs.registry import Periodic, TryAgain, job_handler
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
        orders.flag(session, job.order_id, error, f"job:{job.id}", code=orders.JOB_FAILED)


def _order_id(ctx: JobContext) -> str:
    assert ctx.job.order_id is not None, f"job {ctx.job.id} has no order"
    return ctx.job.order_id


@job_handler(ROUTE.kind, on_dead=_flag_with_reason, priority=Priority.ORDER)
def route(ctx: JobContext) -> None:
    """Send a confirmed order to its provider. A retry after a timeout finds the provider's
    order by our id instead of creating a second one (the connector guarantees it).

    A retry runs for an order cancelled since, too: the earlier attempt may have left an order
    at the provider, which would ship unless the hub learns its reference and cancels it (the
    cancel job waits for this one). That retry only looks the order up: it never creates one
    for an order the hub no longer means to ship."""
    runtime, order_id = ctx.runtime, _order_id(ctx)
    enabled = runtime.connectors.provider_keys()
    with runtime.db.reader() as session:
        # Read with Core, not loaded into the session: nothing here is written back.
        found = orders_repo.snapshot(session, order_id)
        if found is None:
            raise orders.OrderNotFound(order_id)
        order, lines = found
        if order.fulfilment_provider or not (
            order.status == OrderState.CONFIRMED
            or (order.status == OrderState.CANCELLED and ctx.job.attempts > 1)
        ):
            return
        unnamed = fulfilment.lines_without_sku(lines)
        if unnamed and order.status == OrderState.CANCELLED:
            return  # never sent anywhere: nothing to take back
        # A retry asks the provider an earlier attempt may have reached, whatever the rules
        # or the enabled connections say now: choosing again could create a second order at
        # another account (or miss the one the first attempt left).
        provider_name = str(
            ctx.job.payload.get("provider")
            or fulfilment.choose_provider(
                session, order, lines, enabled, runtime.settings.default_provider
            )
        )
        # Only a job's first attempt knows no earlier one reached the provider.
        request = replace(fulfilment.request_for(order, lines), first_try=ctx.job.attempts == 1)
        # Read in the same transaction as everything the call is built from.
        create = order.status == OrderState.CONFIRMED
    if unnamed:
        # No provider can pick a line without a SKU, and shipping the rest would split the
        # parcel: the order waits, flagged (again, after an operator's retry) for a person.
        source = f"job:{ctx.job.id}"
        with runtime.db.transaction() as session:
            order = orders.get(session, order_id)
            detail = {"reason": fulfilment.NO_SKU, "lines": unnamed}
            orders.note(session, order, "not_routed", source, detail)
            orders.flag(session, order_id, fulfilment.NO_SKU, source, code=orders.NO_SKU_CODE)
            ctx.finish(session)
        return
    ref: str | None = None
    if provider_name != fulfilment.MANUAL and request.lines:
        try:
            provider = runtime.connectors.provider(provider_name)
        except NotConfigured:
            raise Retriable(
                f"{provider_name} was chosen for this order and is disabled or not configured"
            ) from None
        try:
            ref = provider.create_order(request) if create else provider.find_order_id(order_id)
        except Exception:
            if "provider" not in ctx.job.payload:
                with runtime.db.transaction() as session:
                    queue.keep_payload(
                        session, ctx.job, {**ctx.job.payload, "provider": provider_name}
                    )
            raise
    with runtime.db.transaction() as session:
        if not create and ref is None:
            # Cancelled, and no earlier attempt left it at the provider: nothing to take back.
            ctx.finish(session)
            return
        status = fulfilment.routed(session, order_id, provider_name, ref, f"job:{ctx.job.id}")
        if status == OrderState.CANCELLED and ref:
            # Cancelled while the provider call was in flight: take it back at once.
            CANCEL.enqueue(session, order_id)
        ctx.finish(session)


def _provider_order(ctx: JobContext) -> tuple[str, str] | None:
    """(provider, its order id) of the job's order; None when no provider holds it."""
    with ctx.runtime.db.reader() as session:
        order = orders.get(session, _order_id(ctx))
        provider, ref = order.fulfilment_connection, order.fulfilment_ref
    if not provider or not ref:
        return None
    return provider, ref


def _provider_refused_cancel(session: Session, job: Job, error: str) -> None:
    """The provider could not take the order back (it shipped, most often): the order is
    flagged in the provider's words, and its units stay reserved until the provider reports
    the parcel (which commits them) or the cancellation. A poll asks it now rather than
    waiting for a webhook that may have been lost."""
    _flag_with_reason(session, job, error)
    if job.order_id is not None:
        POLL.enqueue(session, job.order_id, None, "after-cancel")


@job_handler(CANCEL.kind, on_dead=_provider_refused_cancel, priority=Priority.ORDER)
def cancel(ctx: JobContext) -> None:
    """The order was cancelled: cancel it at its provider, if one holds it, and give its units
    back once none does. A provider that can no longer cancel raises Permanent, and the dead
    job flags the order with its reason, the units still held."""
    runtime, order_id = ctx.runtime, _order_id(ctx)
    with runtime.db.reader() as session:
        if fulfilment.routing_in_flight(session, order_id):
            # Its provider call may be creating the order right now: wait for its outcome.
            raise TryAgain(f"order {order_id} is being routed")
    routed = _provider_order(ctx)
    if routed is not None:
        # An order the provider does not hold can never ship: as good as given up.
        with contextlib.suppress(ProviderOrderNotFound):
            runtime.connectors.provider(routed[0]).cancel_order(routed[1])
    provider, ref = routed or (None, None)
    reason = ctx.job.payload.get("channel_reason")
    with runtime.db.transaction() as session:
        order = orders.get(session, order_id)
        fulfilment.provider_gave_up(
            session,
            order,
            provider,
            ref,
            f"job:{ctx.job.id}",
            channel_reason=None if reason is None else str(reason),
        )
        ctx.finish(session)


def _channel_refused_cancel(session: Session, job: Job, error: str) -> None:
    """The channel refused the seller's cancellation: the order is flagged with its answer."""
    if job.order_id is None:
        return
    order = orders.get(session, job.order_id)
    orders.flag(
        session, order.id, f"{order.channel} refused the cancellation: {error}", f"job:{job.id}"
    )


@job_handler(CANCEL_AT_CHANNEL.kind, on_dead=_channel_refused_cancel, priority=Priority.ORDER)
def cancel_at_channel(ctx: JobContext) -> None:
    """Tell the channel the seller cancelled the order (Depop refunds the buyer, ABOUT YOU
    cancels the open items). A channel with no such call names the steps a person must take,
    and the order is flagged with them."""
    runtime, order_id = ctx.runtime, _order_id(ctx)
    payload = dict(ctx.job.payload)
    reason = str(payload.get("reason") or "")
    resume = payload.get("resume")
    with runtime.db.reader() as session:
        order = orders.get(session, order_id)
        if order.status != OrderState.CANCELLED:
            return
        view = fulfilment.view(session, order_id)
    source = f"job:{ctx.job.id}"
    try:
        runtime.connectors.channel(order.connection).cancel(
            view, reason, resume=dict(resume) if isinstance(resume, dict) else None
        )
    except Pending as pending:
        # The channel works on it: the next attempt asks for the outcome, never sends it again.
        with runtime.db.transaction() as session:
            queue.keep_payload(session, ctx.job, {**payload, "resume": pending.resume})
        raise
    except FlowNotSupported as unsupported:
        with runtime.db.transaction() as session:
            orders.flag(
                session, order_id, f"cancel with {order.channel}: {unsupported.reason}", source
            )
            ctx.finish(session)
        return
    with runtime.db.transaction() as session:
        order = orders.get(session, order_id)
        orders.note(session, order, "cancelled_at_channel", source, {"reason": reason})
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


@job_handler(PUSH_TRACKING.kind, priority=Priority.ORDER)
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
        runtime.connectors.channel(order.connection).push_tracking(view, str(shipment_id))
    except FlowNotSupported:
        return
    except NeedsInput as held:
        # Not a failure to retry: nothing changes until a person answers (POST .../serials),
        # which queues the push again.
        with runtime.db.transaction() as session:
            fulfilment.hold_tracking(session, order_id, shipment_id, str(held))
            ctx.finish(session)
        return
    with runtime.db.transaction() as session:
        fulfilment.mark_pushed(session, shipment_id, f"job:{ctx.job.id}")
        ctx.finish(session)


@job_handler(
    POLL_QUIET,
    priority=Priority.BULK,
    periodic=Periodic(
        POLL_QUIET_FULFILMENT, lambda settings: interval(settings.maintenance_interval_seconds)
    ),
)
def poll_quiet_fulfilment(ctx: JobContext) -> None:
    """Queue a status poll for every routed order its provider has not spoken of lately."""
    runtime = ctx.runtime
    quiet = utcnow() - timedelta(minutes=runtime.settings.fulfilment_poll_after_minutes)
    slot = ctx.job.idempotency_key
    providers = set(runtime.connectors.provider_keys())
    with runtime.db.transaction() as session:
        for order in repo.routed_without_update(session, quiet):
            # Manual fulfilment has nobody to ask; a provider switched off cannot be asked.
            if order.fulfilment_connection not in providers:
                continue
            POLL.enqueue(session, order.id, None, slot)
        ctx.finish(session)


@job_handler(
    REFRESH_SKU_MAPS,
    priority=Priority.BULK,
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
