"""Admin endpoints for orders: find them, read their story (lines, shipments, history, jobs,
inbound events, from every domain), and steer them through the services."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import Session

from hub import audit
from hub.deps import ActorDep, ReaderDep, RuntimeDep, require_admin
from hub.fulfilment import repository as fulfilment_repo
from hub.fulfilment import service as fulfilment
from hub.inbox import repository as inbox_repo
from hub.jobs import queue
from hub.orders import repository as repo
from hub.orders import service
from hub.orders.jobs import REJECT
from hub.orders.models import Order
from hub.orders.schemas import (
    ActionAccepted,
    CancelIn,
    EventSummary,
    FlagPublic,
    HistoryEntry,
    JobSummary,
    ManualShipmentIn,
    OrderDetail,
    OrderLinePublic,
    OrderPage,
    OrderPublic,
    RejectIn,
    ResolveIn,
    SerialsIn,
    ShipmentLinePublic,
    ShipmentPublic,
)
from state_machines.order import OrderState

router = APIRouter(prefix="/admin/orders", tags=["orders"], dependencies=[Depends(require_admin)])

_NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "No such order"}}
_CONFLICT: dict[int | str, dict[str, str]] = {
    409: {"description": "The order's state does not allow this (illegal_transition)"}
}


def present(
    session: Session, orders: Sequence[Order], *, personal: bool = False
) -> list[OrderPublic]:
    """Orders with their lines, shipments and open flags, in four queries whatever their number; the
    buyer's email and address only when `personal` (a token that may change things)."""
    ids = [o.id for o in orders]
    lines = defaultdict(list)
    for line in repo.lines_for(session, ids):
        lines[line.order_id].append(line)
    shipments = defaultdict(list)
    all_shipments = fulfilment_repo.shipments_for(session, ids)
    for s in all_shipments:
        shipments[s.order_id].append(s)
    flags = defaultdict(list)
    for f in repo.flags_for(session, ids):
        flags[f.order_id].append(FlagPublic.model_validate(f, from_attributes=True))
    slines = defaultdict(list)
    for sl in fulfilment_repo.shipment_lines(
        session, [s.id for s in all_shipments if s.id is not None]
    ):
        slines[sl.shipment_id].append(sl)
    return [
        OrderPublic(
            **o.model_dump(
                include={
                    "id",
                    "channel",
                    "connection",
                    "channel_order_id",
                    "status",
                    "channel_status",
                    "currency",
                    "total_amount",
                    "needs_attention",
                    "attention_reason",
                    "fulfilment_provider",
                    "fulfilment_connection",
                    "fulfilment_ref",
                    "fulfilment_status",
                    "placed_at",
                    "created_at",
                    "updated_at",
                }
            ),
            lines=[
                OrderLinePublic(**line.model_dump(exclude={"order_id", "attributes"}))
                for line in lines[o.id]
            ],
            shipments=[
                ShipmentPublic(
                    id=s.id or 0,
                    provider=s.provider,
                    carrier=s.carrier,
                    tracking_numbers=list(s.tracking_numbers),
                    tracking_url=s.tracking_url,
                    shipped_at=s.shipped_at,
                    pushed_to_channel=s.pushed_to_channel_at is not None,
                    lines=[
                        ShipmentLinePublic(
                            sku=sl.sku, quantity=sl.quantity, serial_numbers=sl.serial_numbers
                        )
                        for sl in slines[s.id or 0]
                    ],
                )
                for s in shipments[o.id]
            ],
            flags=flags[o.id],
            buyer_email=o.buyer_email if personal else None,
            shipping_address=o.shipping_address if personal else None,
        )
        for o in orders
    ]


def detail(session: Session, order_id: str, *, personal: bool = False) -> OrderDetail:
    order = service.get(session, order_id)
    public = present(session, [order], personal=personal)[0]
    return OrderDetail(
        **public.model_dump(),
        flag_history=[
            FlagPublic.model_validate(f, from_attributes=True)
            for f in repo.flags(session, order_id)
        ],
        history=[
            HistoryEntry(
                **e.model_dump(
                    include={"trigger", "from_state", "to_state", "source", "at", "detail"}
                )
            )
            for e in repo.history(session, order_id)
        ],
        jobs=[
            JobSummary(**j.model_dump(include={"id", "kind", "state", "attempts", "last_error"}))
            for j in queue.list_jobs(session, order_id=order_id, limit=500)
        ],
        events=[
            EventSummary(
                **e.model_dump(
                    include={"id", "channel", "external_id", "event_type", "status", "received_at"}
                )
            )
            for e in inbox_repo.for_order(session, order_id)
        ],
    )


@router.get("", response_model=OrderPage)
def list_orders(
    session: ReaderDep,
    actor: ActorDep,
    channel: str | None = None,
    connection: str | None = None,
    channel_order_id: str | None = None,
    status: OrderState | None = None,
    needs_attention: bool | None = None,
    sku: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OrderPage:
    """Orders, newest first. Pass `next_cursor` back as `cursor` for the next page.
    `connection` ("depop/shop-b", or a system for its default) keeps one account's orders."""
    rows = repo.search(
        session,
        channel=channel,
        connection=connection,
        channel_order_id=channel_order_id,
        status=status.value if status else None,
        needs_attention=needs_attention,
        sku=sku,
        after_id=cursor,
        limit=limit + 1,
    )
    page = list(rows[:limit])
    return OrderPage(
        data=present(session, page, personal=actor.may_write),
        next_cursor=page[-1].id if len(rows) > limit else None,
    )


@router.get("/{order_id}", response_model=OrderDetail, responses=_NOT_FOUND)
def get_order(order_id: str, session: ReaderDep, actor: ActorDep) -> OrderDetail:
    """One order with its history, its jobs and the inbound events that touched it."""
    return detail(session, order_id, personal=actor.may_write)


DEFAULT_CANCEL_REASON = "cancelled by the seller"


@router.post(
    "/{order_id}/cancel",
    response_model=OrderDetail,
    responses=_NOT_FOUND | _CONFLICT | {422: {"description": "A blank or over-long reason"}},
)
def cancel_order(
    order_id: str, runtime: RuntimeDep, actor: ActorDep, body: CancelIn | None = None
) -> OrderDetail:
    """The seller cancels an open order. It is cancelled here at once; jobs then take it back
    from its provider (its units stay reserved until the provider confirms) and cancel it at
    its channel with the reason: Depop refunds the buyer, ABOUT YOU cancels the open items,
    and a channel with no cancel call (topi) leaves the order flagged with the steps to take."""
    # CONTRACT.md's call has no body: the reason is then the request's X-Audit-Reason, or a
    # plain one, so a client written to the contract still cancels (and the channel is told).
    reason = body.reason if body is not None else (actor.reason or DEFAULT_CANCEL_REASON)
    with runtime.db.transaction() as session:
        order = service.get(session, order_id)
        fulfilment.cancel_by_seller(session, order, reason, actor.source)
        audit.record(session, actor, "order.cancel", order_id, order_id=order_id, reason=reason)
    with runtime.db.reader() as session:
        return detail(session, order_id, personal=True)


@router.post(
    "/{order_id}/reject",
    response_model=ActionAccepted,
    status_code=202,
    responses=_NOT_FOUND | _CONFLICT,
)
def reject_order(
    order_id: str, runtime: RuntimeDep, actor: ActorDep, body: RejectIn | None = None
) -> ActionAccepted:
    """Reject an order not yet confirmed. The channel is told first; the state follows."""
    reason = body.reason if body else RejectIn().reason
    with runtime.db.transaction() as session:
        order = service.get(session, order_id)
        service.request_reject(session, order, reason)
        audit.record(session, actor, "order.reject", order_id, order_id=order_id, reason=reason)
        return ActionAccepted(order_id=order.id, status=order.status, queued=[REJECT.kind])


@router.post(
    "/{order_id}/retry-fulfilment",
    response_model=ActionAccepted,
    status_code=202,
    responses=_NOT_FOUND | _CONFLICT,
)
def retry_fulfilment(order_id: str, runtime: RuntimeDep, actor: ActorDep) -> ActionAccepted:
    """Route a confirmed order again (after its fulfilment failed or was cancelled)."""
    with runtime.db.transaction() as session:
        order = service.get(session, order_id)
        fulfilment.retry_routing(session, order, actor.source)
        audit.record(session, actor, "order.retry_fulfilment", order_id, order_id=order_id)
        return ActionAccepted(
            order_id=order.id, status=order.status, queued=[fulfilment.ROUTE.kind]
        )


@router.post(
    "/{order_id}/shipments",
    response_model=OrderDetail,
    status_code=201,
    responses=_NOT_FOUND | _CONFLICT | {422: {"description": "Lines do not fit the order"}},
)
def add_shipment(
    order_id: str, body: ManualShipmentIn, runtime: RuntimeDep, actor: ActorDep
) -> OrderDetail:
    """Record a shipment made by hand; its tracking goes to the channel like a 3PL's would."""
    with runtime.db.transaction() as session:
        order = service.get(session, order_id)
        fulfilment.record_manual_shipment(
            session,
            order,
            [(line.sku, line.quantity, line.serial_numbers) for line in body.lines],
            body.carrier,
            body.tracking_number,
            body.tracking_url,
            actor.source,
        )
        audit.record(
            session,
            actor,
            "order.manual_shipment",
            order_id,
            order_id=order_id,
            detail={"carrier": body.carrier, "tracking_number": body.tracking_number},
        )
    with runtime.db.reader() as session:
        return detail(session, order_id, personal=True)


@router.post(
    "/{order_id}/shipments/{shipment_id}/serials",
    response_model=OrderDetail,
    responses=_NOT_FOUND
    | {
        409: {"description": "The channel was told about this shipment already"},
        422: {"description": "The serial numbers do not fit the shipment"},
    },
)
def add_serials(
    order_id: str, shipment_id: int, body: SerialsIn, runtime: RuntimeDep, actor: ActorDep
) -> OrderDetail:
    """Give the serial numbers of a shipment's units (a channel that wants them, such as topi
    for rented units, holds the shipment until they are known); the shipment is then reported
    to the channel again, and the flag its hold raised is cleared."""
    with runtime.db.transaction() as session:
        order = service.get(session, order_id)
        serials = {line.sku: line.serial_numbers for line in body.lines}
        fulfilment.add_serials(session, order, shipment_id, serials, actor.source)
        audit.record(
            session,
            actor,
            "order.serials",
            order_id,
            order_id=order_id,
            detail={"shipment": shipment_id, "serial_numbers": serials},
        )
    with runtime.db.reader() as session:
        return detail(session, order_id, personal=True)


@router.post(
    "/{order_id}/resolve",
    response_model=OrderDetail,
    responses=_NOT_FOUND | {409: {"description": "No such open flag (not_flagged)"}},
)
def resolve_flag(
    order_id: str, body: ResolveIn, runtime: RuntimeDep, actor: ActorDep
) -> OrderDetail:
    """Settle one open flag (`flag_id`), or all of them, with a note. An order held by a flag
    (money out of range) goes on once no such flag is left."""
    with runtime.db.transaction() as session:
        order = service.get(session, order_id)
        resolved = service.resolve(session, runtime, order, actor.source, body.note, body.flag_id)
        audit.record(
            session,
            actor,
            "order.resolve_flag",
            order_id,
            order_id=order_id,
            reason=body.note,
            detail={"flags": [{"id": f.id, "code": f.code, "reason": f.message} for f in resolved]},
        )
    with runtime.db.reader() as session:
        return detail(session, order_id, personal=True)
