"""Every change the console makes, one function each: the service call and its audit row in
one transaction, the acting token's name as the history's source.

They call the services as they are; where an order action gains a richer service (flags
resolved one reason at a time), the function here is the one place to switch over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from hub import audit
from hub.deps import Actor
from hub.fulfilment import service as fulfilment
from hub.inbox import repository as inbox_repo
from hub.inbox import service as inbox
from hub.inventory import service as inventory
from hub.jobs import queue
from hub.jobs.models import JobState
from hub.orders import repository as orders_repo
from hub.orders import service as orders
from hub.reconcile import service as reconcile
from hub.runtime import Runtime


class ActionRefused(Exception):
    """The change could not be made; the message says why, for the operator."""


def cancel_order(runtime: Runtime, actor: Actor, order_id: str, reason: str) -> None:
    """The seller cancels an open order, as `POST /admin/orders/{id}/cancel` does: taken back
    from its provider, then cancelled at its channel with the reason, which the order's
    history and the audit log keep too."""
    with runtime.db.transaction() as session:
        order = orders.get(session, order_id)
        fulfilment.cancel_by_seller(session, order, reason, actor.source)
        audit.record(session, actor, "order.cancel", order_id, order_id=order_id, reason=reason)


def reject_order(runtime: Runtime, actor: Actor, order_id: str, reason: str) -> None:
    """Refuse an order not yet confirmed; the channel is told first."""
    with runtime.db.transaction() as session:
        order = orders.get(session, order_id)
        orders.request_reject(session, order, reason)
        audit.record(session, actor, "order.reject", order_id, order_id=order_id, reason=reason)


def retry_fulfilment(runtime: Runtime, actor: Actor, order_id: str, reason: str) -> None:
    """Route a confirmed order again."""
    with runtime.db.transaction() as session:
        order = orders.get(session, order_id)
        fulfilment.retry_routing(session, order, actor.source)
        audit.record(
            session, actor, "order.retry_fulfilment", order_id, order_id=order_id, reason=reason
        )


@dataclass(frozen=True, slots=True)
class ShipmentLine:
    sku: str
    quantity: int
    serial_numbers: tuple[str, ...] = ()


def manual_shipment(
    runtime: Runtime,
    actor: Actor,
    order_id: str,
    lines: Sequence[ShipmentLine],
    carrier: str,
    tracking_number: str,
    tracking_url: str | None,
) -> None:
    """Record a shipment made by hand; its tracking goes to the channel like a provider's."""
    with runtime.db.transaction() as session:
        order = orders.get(session, order_id)
        fulfilment.record_manual_shipment(
            session,
            order,
            [(line.sku, line.quantity, line.serial_numbers) for line in lines],
            carrier,
            tracking_number,
            tracking_url,
            actor.source,
        )
        audit.record(
            session,
            actor,
            "order.manual_shipment",
            order_id,
            order_id=order_id,
            detail={"carrier": carrier, "tracking_number": tracking_number},
        )


def give_serials(
    runtime: Runtime,
    actor: Actor,
    order_id: str,
    shipment_id: int,
    serials: Mapping[str, Sequence[str]],
) -> None:
    """Serial numbers for a shipment the channel held back; it is reported again."""
    with runtime.db.transaction() as session:
        order = orders.get(session, order_id)
        fulfilment.add_serials(session, order, shipment_id, serials, actor.source)
        audit.record(
            session,
            actor,
            "order.serials",
            order_id,
            order_id=order_id,
            detail={
                "shipment": shipment_id,
                "serial_numbers": {k: list(v) for k, v in serials.items()},
            },
        )


def resolve_flag(
    runtime: Runtime, actor: Actor, order_id: str, note: str, flag_id: int | None = None
) -> None:
    """A person looked at one reason an order is flagged (`flag_id`, else its newest open one)
    and settled it: that flag is resolved, the note kept in the order's history, and the
    order's other reasons stay open."""
    with runtime.db.transaction() as session:
        order = orders.get(session, order_id)
        still_open = orders_repo.flags(session, order_id, open_only=True)
        chosen = [f for f in still_open if flag_id is None or f.id == flag_id][-1:]
        if not chosen:
            raise ActionRefused(
                "this order is not flagged" if not still_open else "that flag is not open"
            )
        [settled] = chosen
        orders.resolve(session, runtime, order, actor.source, note, settled.id)
        audit.record(
            session,
            actor,
            "order.resolve",
            order_id,
            order_id=order_id,
            reason=note,
            detail={"flag": settled.message, "flag_id": settled.id, "code": settled.code},
        )


def retry_job(runtime: Runtime, actor: Actor, job_id: int, reason: str) -> None:
    """Run a finished or dead job again now, with a fresh allowance of attempts."""
    with runtime.db.transaction() as session:
        job = queue.requeue(session, job_id, allowance=runtime.settings.job_max_attempts)
        if job is None:
            raise ActionRefused(f"job {job_id} not found")
        audit.record(
            session,
            actor,
            "job.retry",
            f"job {job_id} ({job.kind})",
            order_id=job.order_id,
            reason=reason,
        )


def retry_dead(runtime: Runtime, actor: Actor, kind: str, reason: str) -> int:
    """Retry every dead job of `kind`; how many."""
    with runtime.db.transaction() as session:
        ids = [
            j.id
            for j in queue.list_jobs(session, state=JobState.DEAD.value, kind=kind, limit=10_000)
            if j.id is not None
        ]
        for job_id in ids:
            queue.requeue(session, job_id, allowance=runtime.settings.job_max_attempts)
        audit.record(
            session, actor, "job.retry_dead", kind, reason=reason, detail={"jobs": len(ids)}
        )
        return len(ids)


def set_stock(runtime: Runtime, actor: Actor, sku: str, on_hand: int, reason: str) -> None:
    """Set a SKU's counted units on hand."""
    with runtime.db.transaction() as session:
        inventory.set_on_hand(session, sku, on_hand, note=reason or actor.source)
        audit.record(session, actor, "stock.set", sku, reason=reason, detail={"on_hand": on_hand})


def import_stock(
    runtime: Runtime, actor: Actor, rows: Sequence[tuple[str, int]], source: str, reason: str
) -> int:
    """Set many SKUs' counts, all or none; how many."""
    with runtime.db.transaction() as session:
        inventory.set_on_hand_many(session, rows, note=f"import {source}"[:200])
        audit.record(
            session,
            actor,
            "stock.import",
            f"{len(rows)} SKUs from {source}"[:200],
            reason=reason,
            detail={"skus": len(rows), "file": source},
        )
    return len(rows)


def replay_event(runtime: Runtime, actor: Actor, event_id: int, reason: str) -> None:
    """Process a stored inbound event again."""
    if not inbox.replay(runtime, event_id):
        raise ActionRefused(f"inbound event {event_id} not found")
    with runtime.db.transaction() as session:
        event = inbox_repo.get(session, event_id)
        audit.record(
            session,
            actor,
            "event.replay",
            f"event {event_id}",
            order_id=event.order_id if event else None,
            reason=reason,
        )


def start_reconcile(
    runtime: Runtime,
    actor: Actor,
    channel: str,
    window_from: datetime | None,
    window_to: datetime | None,
    reason: str,
) -> str:
    """Queue a reconciliation run of `channel`; its id."""
    if not runtime.connectors.has_channel(channel):
        raise ActionRefused(f"channel connection {channel!r} is not configured")
    try:
        with runtime.db.transaction() as session:
            run = reconcile.start_run(
                session,
                runtime.settings,
                channel,
                window_from=window_from,
                window_to=window_to,
            )
            assert run is not None, "a run without a key is always new"
            audit.record(session, actor, "reconcile.start", f"{channel} {run.id}", reason=reason)
            return run.id
    except reconcile.InvalidWindow as exc:
        raise ActionRefused(str(exc)) from None
