"""The rules of an order's life. The only writer of order state.

Every change is: compute the next state with the state machine, persist it with a
compare-and-set update, write a history row, and enqueue the jobs it implies, all in the
caller's transaction. Services never commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from connectors.base import (
    ChannelOrder,
    FulfilmentStatus,
    OrderLineView,
    OrderView,
    ProviderOrderStatus,
    ProviderShipment,
    ShipmentLineView,
    ShipmentView,
)
from hub.config import UntrackedSkuPolicy
from hub.ids import new_id
from hub.inventory import service as inventory
from hub.jobs import queue
from hub.orders import repository as repo
from hub.orders.flows import ChannelFlow
from hub.orders.models import Order, OrderEvent, OrderLine, Shipment, ShipmentLine
from hub.types import utcnow
from state_machines.order import OrderState, Trigger, next_state

log = structlog.get_logger("hub.orders")

# Job kinds the order's life enqueues; their handlers live in hub/orders/tasks.py and
# hub/fulfilment/tasks.py.
ACKNOWLEDGE = "order.acknowledge"
ACCEPT = "order.accept"
REJECT = "order.reject"
PUSH_TRACKING = "order.push_tracking"
ROUTE = "fulfilment.route"
CANCEL_FULFILMENT = "fulfilment.cancel"

OPEN_FOR_SHIPPING = (OrderState.CONFIRMED, OrderState.PARTIALLY_FULFILLED)
OVERSOLD = "oversold: restock or refund"


class OrderNotFound(LookupError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} not found")
        self.order_id = order_id


class StaleOrder(Exception):
    """The order changed state under us (compare-and-set missed); the job tries again."""


class ShipmentRejected(ValueError):
    """A shipment that does not fit the order (unknown SKU, more units than are open)."""


def get(session: Session, order_id: str) -> Order:
    order = repo.get(session, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order


# -- receiving --------------------------------------------------------------------------------


def receive(session: Session, incoming: ChannelOrder, source: str) -> tuple[Order, bool]:
    """The hub's order for `incoming`, created if new; True when this call created it.

    Two processes receiving the same order at once (a webhook and a reconciliation run) both
    try the insert; the unique (channel, channel_order_id) lets exactly one win.
    """
    existing = repo.by_channel_id(session, incoming.channel, incoming.channel_order_id)
    if existing is not None:
        return existing, False
    order = Order(
        id=new_id("ord"),
        channel=incoming.channel,
        channel_order_id=incoming.channel_order_id,
        status=OrderState.CREATED.value,
        channel_status=incoming.channel_status,
        currency=incoming.currency,
        total_amount=incoming.total_amount,
        buyer_email=incoming.buyer_email,
        shipping_address=asdict(incoming.shipping_address) if incoming.shipping_address else None,
        attributes=_jsonable(incoming.attributes),
        placed_at=incoming.placed_at,
    )
    try:
        with session.begin_nested():
            session.add(order)
            session.flush()
            for line in incoming.lines:
                session.add(
                    OrderLine(
                        order_id=order.id,
                        channel_line_id=line.channel_line_id,
                        sku=line.sku,
                        quantity=line.quantity,
                        unit_price=line.unit_price,
                        parcel_ref=line.parcel_ref,
                        attributes=_jsonable(line.attributes),
                    )
                )
            session.flush()
    except IntegrityError:
        winner = repo.by_channel_id(session, incoming.channel, incoming.channel_order_id)
        if winner is None:
            raise
        return winner, False
    _history(session, order, "receive", None, OrderState.CREATED, source)
    log.info("hub.orders.received", order_id=order.id, channel=order.channel)
    if any(line.sku is None for line in incoming.lines):
        flag(session, order.id, "line has no SKU", source)
    return order, True


def _jsonable(value: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes as stored: Decimals and datetimes become strings."""

    def convert(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): convert(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [convert(x) for x in v]
        if isinstance(v, datetime):
            return v.isoformat()
        if v is None or isinstance(v, bool | int | float | str):
            return v
        return str(v)

    return convert(dict(value))  # type: ignore[no-any-return]


# -- state changes ----------------------------------------------------------------------------


def fire(
    session: Session,
    order: Order,
    trigger: Trigger,
    source: str,
    *,
    detail: Mapping[str, Any] | None = None,
    all_lines_shipped: bool = False,
) -> OrderState:
    """Apply `trigger` to `order` (IllegalTransition if it may not fire), persist it, record
    it, and enqueue what entering the new state implies."""
    before = order.status
    after = next_state(before, trigger, all_lines_shipped=all_lines_shipped)
    if not repo.compare_and_set_status(session, order, before, after):
        raise StaleOrder(f"order {order.id} is no longer {before}")
    _history(session, order, trigger.value, before, after, source, detail)
    log.info("hub.orders.transition", order_id=order.id, trigger=trigger.value, to=after.value)
    _on_enter(session, order, before, after, source)
    return after


def _on_enter(session: Session, order: Order, before: str, after: OrderState, source: str) -> None:
    if after is OrderState.CONFIRMED:
        queue.enqueue(session, ROUTE, f"order:{order.id}:route", order_id=order.id)
    elif after in (OrderState.CANCELLED, OrderState.REJECTED):
        inventory.release(session, order.id)
        if after is OrderState.CANCELLED and order.fulfilment_ref:
            enqueue_fulfilment_cancel(session, order)


def enqueue_fulfilment_cancel(session: Session, order: Order) -> None:
    queue.enqueue(
        session, CANCEL_FULFILMENT, f"order:{order.id}:cancel-fulfilment", order_id=order.id
    )


def _history(
    session: Session,
    order: Order,
    trigger: str,
    before: str | None,
    after: str | None,
    source: str,
    detail: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        OrderEvent(
            order_id=order.id,
            trigger=trigger,
            from_state=before,
            to_state=after,
            source=source,
            detail=_jsonable(detail or {}),
        )
    )


def note(
    session: Session, order: Order, what: str, source: str, detail: Mapping[str, Any] | None = None
) -> None:
    """Record a fact in the history without changing state (a partial refund, a notice)."""
    _history(session, order, what, order.status, order.status, source, detail)


def flag(session: Session, order_id: str, reason: str, source: str) -> None:
    """Ask a person to look at the order; the reason is what they will read first."""
    order = repo.get(session, order_id)
    if order is None:
        return
    order.needs_attention = True
    order.attention_reason = reason
    order.updated_at = utcnow()
    session.add(order)
    _history(session, order, "flag", order.status, order.status, source, {"reason": reason})
    log.warning("hub.orders.flagged", order_id=order_id, reason=reason)


def clear_flag(session: Session, order: Order, source: str) -> None:
    if not order.needs_attention:
        return
    order.needs_attention = False
    order.attention_reason = None
    session.add(order)
    _history(session, order, "unflag", order.status, order.status, source)


def update_channel_status(session: Session, order: Order, channel_status: str) -> None:
    if order.channel_status != channel_status:
        order.channel_status = channel_status
        order.updated_at = utcnow()
        session.add(order)


# -- the channel flow -------------------------------------------------------------------------


def advance(
    session: Session,
    order: Order,
    source: str,
    flow: ChannelFlow,
    untracked_policy: UntrackedSkuPolicy,
) -> None:
    """Take a new order as far as it can go without calling out.

    A channel that has an acknowledge or accept call gets a job for it, and the state follows
    only once the channel answered; a channel without such calls moves at once. Stock is
    reserved before the order is accepted, so a confirmed order always has its units.
    """
    if order.status == OrderState.CREATED:
        if flow.calls_acknowledge:
            queue.enqueue(session, ACKNOWLEDGE, f"order:{order.id}:acknowledge", order_id=order.id)
            return
        fire(session, order, Trigger.ACKNOWLEDGE, source)
    if order.status != OrderState.ACKNOWLEDGED:
        return
    lines = repo.lines(session, order.id)
    missing_sku = [line.channel_line_id for line in lines if line.sku is None]
    short: Sequence[str] = ()
    # A paid order (Depop) stands even with a line nobody can name: hold the units it does name.
    if not missing_sku or not flow.rejects_unfulfillable:
        result = inventory.reserve(
            session,
            order.id,
            [(line.sku, line.open_quantity) for line in lines if line.sku and line.open_quantity],
            policy=untracked_policy,
            origin_channel=order.channel,
        )
        short = result.short
    if not missing_sku and not short:
        if order.attention_reason == OVERSOLD:
            clear_flag(session, order, source)  # restocked: the order goes on
        if flow.calls_accept:
            queue.enqueue(session, ACCEPT, f"order:{order.id}:accept", order_id=order.id)
        else:
            fire(session, order, Trigger.CONFIRM, source)
        return
    reason = (
        f"line has no SKU: {', '.join(missing_sku)}"
        if missing_sku
        else f"out of stock: {', '.join(short)}"
    )
    if flow.rejects_unfulfillable:
        queue.enqueue(
            session, REJECT, f"order:{order.id}:reject", {"reason": reason}, order_id=order.id
        )
        return
    if missing_sku:
        # The channel took the buyer's money already (Depop): the order stands, a person decides.
        fire(session, order, Trigger.CONFIRM, source, detail={"unfulfillable": reason})
        flag(session, order.id, "line has no SKU", source)
        return
    # Paid, but the units went elsewhere: it stays unconfirmed, so nothing ships, until a
    # restock fills it (inventory.fill_waiting runs advance again) or a refund cancels it.
    if order.attention_reason != OVERSOLD:
        flag(session, order.id, OVERSOLD, source)


def cancel(
    session: Session, order: Order, source: str, detail: Mapping[str, Any] | None = None
) -> bool:
    """The channel or the customer cancelled. After completion it is a return: flagged instead."""
    if order.status == OrderState.CANCELLED:
        return False
    if order.status == OrderState.REJECTED:
        # Nothing was sold or shipped; ABOUT YOU, for one, reports the items our rejection
        # cancelled as cancelled: recorded, nobody needs to act.
        note(session, order, "cancelled_at_channel", source, detail)
        return False
    if order.status == OrderState.COMPLETED:
        flag(
            session,
            order.id,
            f"cancelled at the channel after {order.status}: return needed",
            source,
        )
        return False
    if order.status == OrderState.PARTIALLY_FULFILLED:
        flag(session, order.id, "cancelled after partial shipment: return needed", source)
    fire(session, order, Trigger.CANCEL, source, detail=detail)
    return True


def cancel_lines(
    session: Session, order: Order, channel_line_ids: Sequence[str], source: str
) -> None:
    """The channel cancelled some lines: release their units; the order goes when none is left.

    A provider already holding the order still has those units to ship, and a provider order
    cannot lose a line (Deliverr cancels whole orders only), so while the rest of the order
    stands it is flagged for a person to take the units out there before they ship.
    """
    wanted = set(channel_line_ids)
    lines = repo.lines(session, order.id)
    changed = []
    for line in lines:
        if line.channel_line_id in wanted and line.open_quantity > 0:
            units = line.open_quantity
            line.cancelled_quantity += units
            session.add(line)
            changed.append(line.channel_line_id)
            if line.sku:
                inventory.release_units(session, order.id, line.sku, units)
    if not changed:
        return
    note(session, order, "lines_cancelled", source, {"lines": changed})
    if all(line.open_quantity == 0 and line.shipped_quantity == 0 for line in lines):
        cancel(session, order, source, {"lines": changed})
        return
    if order.fulfilment_ref and order.status in OPEN_FOR_SHIPPING:
        named = ", ".join(
            f"{line.channel_line_id} ({line.sku})"
            for line in lines
            if line.channel_line_id in changed
        )
        flag(
            session,
            order.id,
            f"lines {named} cancelled at the channel after the order went to "
            f"{order.fulfilment_provider} ({order.fulfilment_ref}): take them out there "
            "before they ship",
            source,
        )
    if all(line.open_quantity == 0 for line in lines) and order.status in OPEN_FOR_SHIPPING:
        fire(session, order, Trigger.SHIP, source, all_lines_shipped=True)


# -- fulfilment -------------------------------------------------------------------------------


def routed(session: Session, order: Order, provider: str, ref: str | None, source: str) -> None:
    order.fulfilment_provider = provider
    order.fulfilment_ref = ref
    order.fulfilment_status = "routed"
    order.fulfilment_checked_at = utcnow()
    order.updated_at = utcnow()
    session.add(order)
    note(session, order, "routed", source, {"provider": provider, "reference": ref})


def reset_fulfilment(session: Session, order: Order, source: str) -> None:
    """Forget the failed routing so the order can be routed again; clears its flag."""
    previous = {"provider": order.fulfilment_provider, "reference": order.fulfilment_ref}
    order.fulfilment_provider = None
    order.fulfilment_ref = None
    order.fulfilment_status = None
    order.version += 1
    order.updated_at = utcnow()
    session.add(order)
    note(session, order, "fulfilment_reset", source, previous)
    clear_flag(session, order, source)


def apply_fulfilment(
    session: Session, order: Order, provider: str, status: FulfilmentStatus, source: str
) -> list[Shipment]:
    """Fold a provider's report into the order: new packages become shipments, the order
    moves, and each new shipment's tracking is queued for the channel. Replays add nothing."""
    known = sum(1 for s in repo.shipments(session, order.id) if s.provider == provider)
    # A report lists every package so far; one naming fewer than the hub holds is older news
    # delivered late (CREATED after SHIPPED) and must not set the status back.
    if len(status.shipments) >= known:
        order.fulfilment_status = status.raw_status
    order.fulfilment_checked_at = utcnow()
    session.add(order)
    added = [
        s
        for s in (
            record_shipment(session, order, provider, shipment, source, strict=False)
            for shipment in status.shipments
        )
        if s is not None
    ]
    if status.status is ProviderOrderStatus.CANCELLED and order.status in (
        OrderState.CONFIRMED,
        OrderState.PARTIALLY_FULFILLED,
    ):
        flag(session, order.id, f"{provider} cancelled the fulfilment order", source)
    elif status.status is ProviderOrderStatus.ERROR:
        flag(session, order.id, f"{provider} reports an error on the fulfilment order", source)
    elif status.status is ProviderOrderStatus.UNSUPPORTED:
        flag(session, order.id, f"{provider} reports unknown status {status.raw_status!r}", source)
    return added


def record_shipment(
    session: Session,
    order: Order,
    provider: str,
    shipment: ProviderShipment,
    source: str,
    *,
    strict: bool = True,
) -> Shipment | None:
    """Store one package once; None when it was already known.

    Units the order does not hold open raise `ShipmentRejected` when `strict` (an operator's
    entry can be corrected). A provider's package has left the warehouse whatever the order
    says (a line cancelled after routing): its open units are recorded, the rest is counted
    out of stock and flagged, so the package's other units still reach the channel.
    """
    # Two packages of one order may be reported at once (two workers): each reads the lines'
    # shipped quantities and writes them back, so they must not interleave.
    repo.lock(session, order)
    if repo.shipment(session, order.id, provider, shipment.shipment_id) is not None:
        return None
    if order.status not in OPEN_FOR_SHIPPING:
        flag(session, order.id, f"{provider} shipped an order that is {order.status}", source)
        return None
    lines = list(repo.lines(session, order.id))
    allocation, excess = _allocate(lines, shipment)
    if excess and strict:
        raise ShipmentRejected(
            f"shipment {shipment.shipment_id}: "
            + ", ".join(f"{units} unit(s) of {sku}" for sku, units in excess)
            + " are not open on the order"
        )
    row = Shipment(
        order_id=order.id,
        provider=provider,
        provider_shipment_id=shipment.shipment_id,
        carrier=shipment.carrier,
        tracking_numbers=list(shipment.tracking_numbers),
        tracking_url=shipment.tracking_url,
        shipped_at=shipment.shipped_at or utcnow(),
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    left: list[tuple[str, int]] = list(excess)
    for line, quantity, serials in allocation:
        line.shipped_quantity += quantity
        session.add(line)
        session.add(
            ShipmentLine(
                shipment_id=row.id,
                order_line_id=line.id,  # type: ignore[arg-type]
                sku=line.sku,
                quantity=quantity,
                serial_numbers=list(serials),
            )
        )
        if line.sku:
            left.append((line.sku, quantity))
    # Stock rows are locked in SKU order, as reservations lock them, so the two never deadlock.
    for sku, units in sorted(left):
        inventory.commit(session, order.id, sku, units)
    if excess:
        flag(
            session,
            order.id,
            f"{provider} shipped "
            + ", ".join(f"{units} x {sku}" for sku, units in excess)
            + " that the order no longer holds open: get the units back",
            source,
        )
    if not allocation:
        return row  # nothing of the order is in it: no state to move, no tracking to push
    if order.status in OPEN_FOR_SHIPPING:
        done = all(line.open_quantity == 0 for line in lines)
        fire(
            session,
            order,
            Trigger.SHIP,
            source,
            detail={"shipment": row.id, "tracking_numbers": list(shipment.tracking_numbers)},
            all_lines_shipped=done,
        )
    queue.enqueue(
        session,
        PUSH_TRACKING,
        f"order:{order.id}:push:{row.id}",
        {"shipment_id": row.id},
        order_id=order.id,
    )
    return row


def _allocate(
    lines: list[OrderLine], shipment: ProviderShipment
) -> tuple[list[tuple[OrderLine, int, tuple[str, ...]]], list[tuple[str, int]]]:
    """Match a package's contents to open order lines: the hub line the provider echoed first,
    then any line of the same SKU, oldest first (units of one SKU are interchangeable: a unit
    the provider counts on a cancelled line fills another line's open unit). Returns the
    allocation and the (sku, units) no open line takes."""
    by_id = {str(line.id): line for line in lines}
    open_units = {line.id: line.open_quantity for line in lines}
    out: list[tuple[OrderLine, int, tuple[str, ...]]] = []
    excess: list[tuple[str, int]] = []
    for item in shipment.lines:
        remaining = item.quantity
        echoed = by_id.get(item.line_id) if item.line_id else None
        candidates = ([echoed] if echoed is not None else []) + [
            line for line in lines if line.sku == item.sku and line is not echoed
        ]
        serials = list(item.serial_numbers)
        for line in candidates:
            take = min(remaining, open_units[line.id])
            if take <= 0:
                continue
            open_units[line.id] -= take
            remaining -= take
            out.append((line, take, tuple(serials[:take])))
            serials = serials[take:]
            if remaining == 0:
                break
        if remaining:
            excess.append((item.sku, remaining))
    return out, excess


def mark_pushed(session: Session, shipment_id: int, source: str) -> None:
    row = session.get(Shipment, shipment_id)
    if row is None or row.pushed_to_channel_at is not None:
        return
    row.pushed_to_channel_at = utcnow()
    session.add(row)
    order = get(session, row.order_id)
    note(session, order, "tracking_pushed", source, {"shipment": shipment_id})


# -- views ------------------------------------------------------------------------------------


def view(session: Session, order_id: str) -> OrderView:
    """The order as a connector sees it."""
    order = get(session, order_id)
    lines = repo.lines(session, order.id)
    shipments = repo.shipments(session, order.id)
    by_line = {line.id: line for line in lines}
    slines = repo.shipment_lines(session, [s.id for s in shipments if s.id is not None])
    per_shipment: dict[int, list[ShipmentLineView]] = {}
    for sl in slines:
        line = by_line[sl.order_line_id]
        per_shipment.setdefault(sl.shipment_id, []).append(
            ShipmentLineView(
                channel_line_id=line.channel_line_id,
                sku=sl.sku,
                quantity=sl.quantity,
                serial_numbers=tuple(sl.serial_numbers),
            )
        )
    return OrderView(
        order_id=order.id,
        channel=order.channel,
        channel_order_id=order.channel_order_id,
        currency=order.currency,
        lines=tuple(
            OrderLineView(
                line_id=str(line.id),
                channel_line_id=line.channel_line_id,
                sku=line.sku,
                quantity=line.quantity - line.cancelled_quantity,
                shipped_quantity=line.shipped_quantity,
                unit_price=line.unit_price,
                parcel_ref=line.parcel_ref,
                attributes=dict(line.attributes),
            )
            for line in lines
        ),
        shipments=tuple(
            ShipmentView(
                shipment_id=str(s.id),
                carrier=s.carrier,
                tracking_numbers=tuple(s.tracking_numbers),
                tracking_url=s.tracking_url,
                shipped_at=s.shipped_at,
                lines=tuple(per_shipment.get(s.id or 0, [])),
                pushed_to_channel=s.pushed_to_channel_at is not None,
            )
            for s in shipments
        ),
        attributes=dict(order.attributes),
    )
