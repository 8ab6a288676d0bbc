"""What a channel says about an order, applied to the hub's order. Webhooks and reconciliation
both come through here, so a missed webhook found later takes exactly the same path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from connectors.base import ChannelEvent, ChannelOrder, ChannelOrderStatus, EventKind, Retriable
from hub.orders import repository as repo
from hub.orders import service
from hub.orders.models import Order
from hub.runtime import Runtime
from state_machines.order import TERMINAL, OrderState


@dataclass
class Outcome:
    """What applying one event or one channel order did."""

    order: Order | None = None
    created: bool = False
    changes: list[dict[str, Any]] = field(default_factory=list)
    ignored: str | None = None


def take_order(
    session: Session, runtime: Runtime, incoming: ChannelOrder, source: str, connection: str
) -> Outcome:
    """Make the hub's order match the channel's (the order came from the channel connection
    `connection`): create what is missing, cancel what the channel cancelled. Idempotent: the
    second call with the same order changes nothing."""
    order, created = service.receive(session, incoming, source, connection)
    outcome = Outcome(order=order, created=created)
    if created and incoming.status is ChannelOrderStatus.CANCELLED:
        service.cancel(
            session,
            order,
            source,
            {
                "channel_status": incoming.channel_status,
                "refund": incoming.attributes.get("refund_summary"),
            },
        )
        outcome.changes.append({"kind": "cancelled_at_channel", "order_id": order.id})
        return outcome
    if created:
        outcome.changes.append({"kind": "created", "order_id": order.id})
        service.advance(session, runtime, order, source)
        return outcome
    service.update_channel_status(session, order, incoming.channel_status)
    if incoming.status is ChannelOrderStatus.CANCELLED and order.status not in TERMINAL:
        _cancel_for_channel(session, order, incoming, source, outcome)
    return outcome


REFUNDED_AFTER_SHIPMENT = "refunded after shipment: check the return"
# Changes in which `take_order` already recorded the channel's refund.
_REFUND_RECORDED = frozenset({"cancelled_at_channel", "refunded_after_shipment"})


def _cancel_for_channel(
    session: Session, order: Order, incoming: ChannelOrder, source: str, outcome: Outcome
) -> None:
    refund = incoming.attributes.get("refund_summary")
    shipped = any(line.shipped_quantity for line in repo.lines(session, order.id))
    if shipped:
        # A refund after shipping is money, not fulfilment: recorded, the state stays.
        service.note(session, order, "refunded", source, {"refund_summary": refund})
        service.flag(session, order.id, REFUNDED_AFTER_SHIPMENT, source)
        outcome.changes.append({"kind": "refunded_after_shipment", "order_id": order.id})
        return
    service.cancel(
        session, order, source, {"channel_status": incoming.channel_status, "refund": refund}
    )
    outcome.changes.append({"kind": "cancelled_at_channel", "order_id": order.id})


def order_to_fetch(event: ChannelEvent) -> str | None:
    """The channel order to read in full before `event` can be applied, or None.

    The caller fetches it outside the transaction. ORDER_CHANGED only says that something
    changed; an ORDER_PLACED whose payload lacks prices (topi's webhook carries none, so its
    connector sets `prices_known` False) is read in full so the hub never records a free order.
    """
    if event.kind is EventKind.ORDER_CHANGED:
        return event.channel_order_id
    if (
        event.kind is EventKind.ORDER_PLACED
        and event.order is not None
        and event.order.attributes.get("prices_known") is False
    ):
        return event.order.channel_order_id
    return None


def apply_event(
    session: Session,
    runtime: Runtime,
    connection: str,
    event: ChannelEvent,
    fetched: ChannelOrder | None,
    source: str,
) -> Outcome:
    """Apply one parsed webhook of the channel connection `connection`. `fetched` is the
    channel's current order when the event needed a look-up (`order_to_fetch`); the caller
    fetched it outside the transaction."""
    kind = event.kind
    if kind is EventKind.ORDER_PLACED:
        assert event.order is not None
        return take_order(session, runtime, fetched or event.order, source, connection)
    if kind is EventKind.ORDER_CHANGED:
        assert fetched is not None
        outcome = take_order(session, runtime, fetched, source, connection)
        refund = fetched.attributes.get("refund_summary")
        order = outcome.order
        if (
            order is not None
            and refund
            and not any(change["kind"] in _REFUND_RECORDED for change in outcome.changes)
        ):
            # Money back that does not cancel: a partial refund, or a refund of an order already
            # completed or cancelled. Recorded with its amounts; the state stays.
            full = fetched.status is ChannelOrderStatus.CANCELLED
            service.note(
                session,
                order,
                "refunded" if full else "partially_refunded",
                source,
                {"refund_summary": refund, **dict(event.detail)},
            )
            if full and order.status == OrderState.COMPLETED:
                service.flag(session, order.id, REFUNDED_AFTER_SHIPMENT, source)
        return outcome
    if kind is EventKind.IGNORED:
        return Outcome(ignored=event.note or f"{event.event_type} is not acted on")
    if kind is EventKind.FULFILMENT_UPDATE:
        raise ValueError("a provider's report is fulfilment's to apply, not the order intake's")
    order = _known_order(session, connection, event)
    if order is None and kind is EventKind.ORDER_CANCELLED and event.order is not None:
        created = take_order(session, runtime, event.order, source, connection)
        order = created.order
    if order is None:
        if kind is EventKind.ORDER_NOTICE:
            return Outcome(ignored=f"{event.event_type} for an order the hub does not hold")
        # Out of order: the order itself has not arrived yet. Wait for it.
        wanted = event.channel_order_id or f"of lines {', '.join(event.line_ids)}"
        raise Retriable(f"{connection} order {wanted} not received yet", after=30)
    if kind is EventKind.ORDER_CANCELLED:
        service.cancel(session, order, source, dict(event.detail))
    elif kind is EventKind.LINES_CANCELLED:
        service.cancel_lines(session, order, event.line_ids, source)
    elif kind is EventKind.ORDER_NOTICE:
        service.note(
            session, order, event.event_type, source, {"note": event.note, **dict(event.detail)}
        )
    return Outcome(order=order)


def _known_order(session: Session, connection: str, event: ChannelEvent) -> Order | None:
    ref = event.channel_order_id or (event.order.channel_order_id if event.order else None)
    if ref:
        return repo.by_channel_id(session, connection, ref)
    # ABOUT YOU's item events name their items, not the order.
    return repo.by_channel_line_ids(session, connection, event.line_ids)
