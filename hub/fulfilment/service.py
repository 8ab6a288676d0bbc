"""Fulfilment's rules: which provider ships an order, routing it and taking it back, and every
shipment, whether a 3PL reports it or an operator records it, folded into the order the same
way. State changes go through the orders service; this module owns the shipment rows and the
order's fulfilment fields."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import replace

from sqlmodel import Session

from connectors.base import (
    Address,
    FulfilmentLine,
    FulfilmentRequest,
    FulfilmentStatus,
    OrderView,
    ProviderOrderStatus,
    ProviderShipment,
    ProviderShipmentLine,
    ShipmentLineView,
    ShipmentView,
)
from connectors.registry import resolve, system_of
from hub.errors import DomainError
from hub.fulfilment import repository as repo
from hub.fulfilment.models import RoutingRule, Shipment, ShipmentLine
from hub.ids import new_id
from hub.inventory import service as inventory
from hub.jobs import queue
from hub.jobs.models import Job, JobState
from hub.jobs.registry import TryAgain
from hub.orders import effects
from hub.orders import repository as orders_repo
from hub.orders import service as orders
from hub.orders.jobs import OrderJob
from hub.orders.models import Order, OrderLine
from hub.types import utcnow
from state_machines.order import Effect, IllegalTransition, OrderState, Trigger, may, next_state

MANUAL = "manual"
NO_SKU = "line has no SKU"
NEEDS_INPUT = "needs_input"  # the flag of a shipment the channel holds back for a person's answer
# The flag of a provider that gave up on, or cannot report on, its order: routing the order
# again is what resolves it.
PROVIDER_FAILED = "provider_failed"

ROUTE = OrderJob("fulfilment.route", "route")
CANCEL = OrderJob("fulfilment.cancel", "cancel-fulfilment")
POLL = OrderJob("fulfilment.poll", "poll")
PUSH_TRACKING = OrderJob("order.push_tracking", "push")


class ShipmentRejected(DomainError):
    """A shipment that does not fit the order (unknown SKU, more units than are open)."""

    status = 422
    code = "shipment_rejected"


class ShipmentNotFound(DomainError):
    status = 404
    code = "shipment_not_found"


class ShipmentAlreadyReported(DomainError):
    """The channel was told about the shipment already: what it holds can no longer change."""

    status = 409
    code = "shipment_already_reported"


@effects.on_enter(Effect.ROUTE)
def _route(session: Session, order: Order, source: str) -> None:
    ROUTE.enqueue(session, order.id)


@effects.on_enter_many(Effect.ROUTE)
def _route_many(session: Session, orders: Sequence[Order], source: str) -> None:
    """`_route` for a page of orders confirmed together: their jobs in one statement."""
    ROUTE.enqueue_many(session, orders)


# The seller's cancellation told to the channel, once no provider can ship the order.
CANCEL_AT_CHANNEL = OrderJob("order.cancel_at_channel", "cancel-at-channel")

RETURN_NEEDED = "return needed"


@effects.on_enter(Effect.CANCEL_FULFILMENT)
def _cancel_at_provider(session: Session, order: Order, source: str) -> None:
    """A cancelled order's units stay reserved while a provider may still ship them: the
    cancel job gives them back once the provider confirms (or finds no provider order), and a
    shipment that beats the cancellation commits them. Units no provider holds go back now."""
    if may_be_at_provider(session, order):
        CANCEL.enqueue(session, order.id)
    else:
        inventory.release(session, order.id)


def may_be_at_provider(session: Session, order: Order) -> bool:
    """Whether a provider holds the order, or a routing in progress may yet hand it one."""
    if order.fulfilment_ref:
        return True
    return order.fulfilment_provider is None and bool(_routing_unfinished(session, order.id))


def routing_in_flight(session: Session, order_id: str) -> bool:
    """A route job is running, or will retry a call that may have reached the provider: it
    may have created an order there that the hub does not know of yet."""
    return any(
        job.state == JobState.RUNNING or job.attempts > 0
        for job in _routing_unfinished(session, order_id)
    )


def _routing_unfinished(session: Session, order_id: str) -> list[Job]:
    return [
        job
        for job in queue.list_jobs(session, kind=ROUTE.kind, order_id=order_id)
        if job.state in (JobState.QUEUED, JobState.RUNNING)
    ]


def cancel_by_seller(session: Session, order: Order, reason: str, source: str) -> None:
    """The seller cancels the order: it is cancelled here now, taken back from its provider,
    and then cancelled (refunded, where the channel does that) at its channel, by jobs.

    The channel hears of it only after the provider gave the order up: a parcel already on its
    way must not also be refunded. IllegalTransition when the order's state does not allow it.
    """
    next_state(order.status, Trigger.CANCEL)
    if may_be_at_provider(session, order):
        # Queued first with the reason, so the cancel the transition's effect queues under the
        # same key is this one, and it passes the seller's word on once the provider agreed.
        CANCEL.enqueue(session, order.id, {"channel_reason": reason})
        orders.fire(session, order, Trigger.CANCEL, source, detail={"reason": reason})
        return
    orders.fire(session, order, Trigger.CANCEL, source, detail={"reason": reason})
    CANCEL_AT_CHANNEL.enqueue(session, order.id, {"reason": reason})


def provider_gave_up(
    session: Session,
    order: Order,
    provider: str | None,
    ref: str | None,
    source: str,
    *,
    channel_reason: str | None = None,
) -> None:
    """No provider can ship the cancelled order any more (it cancelled it, or none ever held
    it): the units it held go back, and a seller's cancellation goes on to the channel."""
    orders_repo.lock(session, order)
    if ref:
        orders.note(
            session, order, "fulfilment_cancelled", source, {"provider": provider, "reference": ref}
        )
    inventory.release(session, order.id)
    if channel_reason is not None:
        CANCEL_AT_CHANNEL.enqueue(session, order.id, {"reason": channel_reason})


class NotRoutable(DomainError):
    """Only a confirmed order is routed: later ones are at a provider or done."""

    status = 409
    code = "illegal_transition"

    def __init__(self, state: str) -> None:
        super().__init__(f"only a confirmed order can be routed; this one is {state}")


def retry_routing(session: Session, order: Order, source: str) -> None:
    """Route a confirmed order again (after its fulfilment failed or was cancelled)."""
    if order.status != OrderState.CONFIRMED:
        raise NotRoutable(order.status)
    reset_fulfilment(session, order, source)
    ROUTE.enqueue(session, order.id, None, "retry", order.version)


def lines_without_sku(lines: Sequence[OrderLine]) -> list[str]:
    """The channel ids of open lines no provider can ship, because they name no SKU."""
    return [line.channel_line_id for line in lines if line.sku is None and line.open_quantity > 0]


def choose_provider(
    session: Session,
    order: Order,
    lines: Sequence[OrderLine],
    enabled: Sequence[str],
    default: str | None = None,
) -> str:
    """The provider connection to ship `order` (its key), or manual. `enabled` holds the
    enabled provider connections' keys. The first rule (by priority) matching the order whose
    provider is enabled; else
    `default` (HUB_DEFAULT_PROVIDER) when it is enabled or manual; else the first enabled
    provider; else manual fulfilment by an operator."""
    country = (order.shipping_address or {}).get("country_code")
    skus = [line.sku or "" for line in lines]
    for rule in repo.rules(session):
        provider = rule.provider if rule.provider == MANUAL else resolve(rule.provider)
        if provider != MANUAL and provider not in enabled:
            continue
        if _matches(rule, order, country, skus):
            return provider
    if default is not None and default == MANUAL:
        return default
    if default is not None and resolve(default) in enabled:
        return resolve(default)
    return enabled[0] if enabled else MANUAL


def _matches(rule: RoutingRule, order: Order, country: str | None, skus: Sequence[str]) -> bool:
    if rule.channel and rule.channel != order.channel:
        return False
    if rule.connection and resolve(rule.connection) != order.connection:
        return False
    if rule.country_code and (country or "").upper() != rule.country_code.upper():
        return False
    if rule.sku_pattern and not all(fnmatch.fnmatchcase(s, rule.sku_pattern) for s in skus):
        return False
    return True


def request_for(order: Order, lines: Sequence[OrderLine]) -> FulfilmentRequest:
    """What the provider is asked to ship: every open unit with a SKU."""
    address = order.shipping_address or {}
    return FulfilmentRequest(
        order_id=order.id,
        channel=order.channel,
        channel_order_id=order.channel_order_id,
        placed_at=order.placed_at,
        shipping_address=Address(**address),
        lines=tuple(
            FulfilmentLine(line_id=str(line.id), sku=line.sku, quantity=line.open_quantity)
            for line in lines
            if line.sku and line.open_quantity > 0
        ),
    )


def record_manual_shipment(
    session: Session,
    order: Order,
    items: Sequence[tuple[str, int, Sequence[str]]],
    carrier: str,
    tracking_number: str,
    tracking_url: str | None,
    source: str,
) -> Shipment:
    """An operator shipped by hand: the shipment takes the same path a 3PL's report takes."""
    if not may(order.status, Trigger.SHIP):
        raise IllegalTransition(order.status, Trigger.SHIP)
    shipment = ProviderShipment(
        shipment_id=new_id("man"),
        carrier=carrier,
        tracking_numbers=(tracking_number,),
        tracking_url=tracking_url,
        shipped_at=utcnow(),
        lines=tuple(
            ProviderShipmentLine(sku=sku, quantity=qty, serial_numbers=tuple(serials))
            for sku, qty, serials in items
        ),
    )
    row = record_shipment(session, order, MANUAL, shipment, source)
    if row is None:
        raise ShipmentRejected(f"order is {order.status}: nothing can ship")
    return row


def routed(session: Session, order_id: str, provider: str, ref: str | None, source: str) -> str:
    """The order went to `provider` (a provider connection's key, or manual) as `ref`: its
    fulfilment columns set in one statement, and noted. The order's state as that statement
    found it, under its row lock (it may have been cancelled while the provider was called)."""
    status = orders.record_routing(
        session,
        order_id,
        system_of(provider),
        None if provider == MANUAL else resolve(provider),
        ref,
        source,
        {"provider": provider, "reference": ref},
    )
    if status is None:
        raise orders.OrderNotFound(order_id)
    return status


def reset_fulfilment(session: Session, order: Order, source: str) -> None:
    """Forget the failed routing so the order can be routed again, and resolve the flags that
    failure raised (a route job's death, a provider's refusal or error, a line no provider
    could pick, which the new route raises again if it still holds). Flags of other causes
    (money out of range, a shipment waiting for input, ...) stay: routing again fixes none."""
    previous = {"provider": order.fulfilment_provider, "reference": order.fulfilment_ref}
    order.fulfilment_provider = None
    order.fulfilment_connection = None
    order.fulfilment_ref = None
    order.fulfilment_status = None
    order.version += 1
    order.updated_at = utcnow()
    session.add(order)
    orders.note(session, order, "fulfilment_reset", source, previous)
    if not order.needs_attention:
        return
    route_jobs = {
        f"job:{job.id}" for job in queue.list_jobs(session, kind=ROUTE.kind, order_id=order.id)
    }
    for flag in orders_repo.flags(session, order.id, open_only=True):
        if flag.code in (PROVIDER_FAILED, orders.NO_SKU_CODE) or (
            flag.code == orders.JOB_FAILED and flag.source in route_jobs
        ):
            orders.clear_flag(session, order, source, flag_id=flag.id)


def apply_report(
    session: Session, provider: str, status: FulfilmentStatus, source: str
) -> tuple[Order, list[Shipment]]:
    """A provider's webhook about one of its orders, folded into the hub's order; the order and
    the shipments it added."""
    order = orders_repo.by_fulfilment_ref(session, resolve(provider), status.provider_order_id)
    if order is None:
        # The route job that learns this reference may not have committed yet: retried on
        # the configured backoff (HUB_JOB_BACKOFF_*), then kept as a failed event.
        raise TryAgain(f"{provider} order {status.provider_order_id} is not known yet")
    return order, apply_fulfilment(session, order, provider, status, source)


def apply_fulfilment(
    session: Session, order: Order, provider: str, status: FulfilmentStatus, source: str
) -> list[Shipment]:
    """Fold a provider's report into the order: new packages become shipments, the order
    moves, and each new shipment's tracking is queued for the channel. Replays add nothing.
    `provider` is the provider connection (or its system); shipments name the system."""
    provider = system_of(provider)
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
    if status.status is ProviderOrderStatus.CANCELLED and order.status == OrderState.CANCELLED:
        # The provider's own word that it will ship nothing: what the order held goes back.
        provider_gave_up(session, order, None, None, source)
    elif status.status is ProviderOrderStatus.CANCELLED and may(order.status, Trigger.SHIP):
        reason = f"{provider} cancelled the fulfilment order"
        orders.flag(session, order.id, reason, source, code=PROVIDER_FAILED)
    elif status.status is ProviderOrderStatus.ERROR:
        reason = f"{provider} reports an error on the fulfilment order"
        orders.flag(session, order.id, reason, source, code=PROVIDER_FAILED)
    elif status.status is ProviderOrderStatus.UNSUPPORTED:
        reason = f"{provider} reports unknown status {status.raw_status!r}"
        orders.flag(session, order.id, reason, source, code=PROVIDER_FAILED)
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
    orders_repo.lock(session, order)
    if repo.shipment(session, order.id, provider, shipment.shipment_id) is not None:
        return None
    cancelled = order.status == OrderState.CANCELLED
    if not may(order.status, Trigger.SHIP) and not cancelled:
        orders.flag(
            session, order.id, f"{provider} shipped an order that is {order.status}", source
        )
        return None
    lines = list(orders_repo.lines(session, order.id))
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
        orders.flag(
            session,
            order.id,
            f"{provider} shipped "
            + ", ".join(f"{units} x {sku}" for sku, units in excess)
            + " that the order no longer holds open: get the units back",
            source,
        )
    if cancelled:
        # The parcel left before the cancellation reached the provider: its units are gone
        # from the shelf all the same. No tracking goes to the channel, which cancelled the
        # order (or, for a seller's cancel the provider refused, still waits for a person).
        orders.flag(
            session,
            order.id,
            f"{RETURN_NEEDED}: {provider} shipped the cancelled order "
            f"(shipment {shipment.shipment_id})",
            source,
        )
        return row
    if not allocation:
        return row  # nothing of the order is in it: no state to move, no tracking to push
    if may(order.status, Trigger.SHIP):
        done = all(line.open_quantity == 0 for line in lines)
        orders.fire(
            session,
            order,
            Trigger.SHIP,
            source,
            detail={"shipment": row.id, "tracking_numbers": list(shipment.tracking_numbers)},
            all_lines_shipped=done,
        )
    PUSH_TRACKING.enqueue(session, order.id, {"shipment_id": row.id}, row.id)
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
    order = orders.get(session, row.order_id)
    orders.note(session, order, "tracking_pushed", source, {"shipment": shipment_id})


def _held_by(shipment_id: int) -> str:
    return f"shipment:{shipment_id}"


def hold_tracking(session: Session, order_id: str, shipment_id: int, reason: str) -> None:
    """The channel needs something from a person before it takes this shipment (a rented
    unit's serial number): the push waits, and the order is flagged with the channel's words."""
    order = orders.get(session, order_id)
    orders.note(
        session,
        order,
        "tracking_held",
        _held_by(shipment_id),
        {"shipment": shipment_id, "reason": reason},
    )
    orders.flag(session, order_id, reason, _held_by(shipment_id), code=NEEDS_INPUT)


def add_serials(
    session: Session,
    order: Order,
    shipment_id: int,
    serials: Mapping[str, Sequence[str]],
    source: str,
) -> None:
    """Give the serial numbers of a shipment's units (per SKU, one per unit) and tell the
    channel again; a flag the held push raised is cleared, since its cause is answered."""
    row = session.get(Shipment, shipment_id)
    if row is None or row.order_id != order.id:
        raise ShipmentNotFound(f"order {order.id} has no shipment {shipment_id}")
    if row.pushed_to_channel_at is not None:
        raise ShipmentAlreadyReported(
            f"shipment {shipment_id} was reported to {order.channel} already"
        )
    lines = list(repo.shipment_lines(session, [shipment_id]))
    for sku, numbers in serials.items():
        holding = [sl for sl in lines if sl.sku == sku]
        units = sum(sl.quantity for sl in holding)
        if not holding:
            raise ShipmentRejected(f"shipment {shipment_id} holds no {sku}")
        if len(numbers) > units:
            raise ShipmentRejected(
                f"shipment {shipment_id} holds {units} unit(s) of {sku}, "
                f"{len(numbers)} serial numbers given"
            )
        rest = list(numbers)
        for sl in holding:
            sl.serial_numbers, rest = rest[: sl.quantity], rest[sl.quantity :]
            session.add(sl)
    orders.note(
        session,
        order,
        "serials_added",
        source,
        {"shipment": shipment_id, "serial_numbers": {k: list(v) for k, v in serials.items()}},
    )
    orders.clear_flag(session, order, source, raised_by=_held_by(shipment_id))
    PUSH_TRACKING.enqueue(
        session, order.id, {"shipment_id": shipment_id}, shipment_id, "serials", new_id("s")
    )


def shipment_views(
    session: Session, order_id: str, lines: Sequence[OrderLine] | None = None
) -> tuple[ShipmentView, ...]:
    """The order's shipments as a connector sees them, oldest first."""
    by_line = {line.id: line for line in (lines or orders_repo.lines(session, order_id))}
    shipments = repo.shipments(session, order_id)
    per_shipment: dict[int, list[ShipmentLineView]] = {}
    for sl in repo.shipment_lines(session, [s.id for s in shipments if s.id is not None]):
        per_shipment.setdefault(sl.shipment_id, []).append(
            ShipmentLineView(
                channel_line_id=by_line[sl.order_line_id].channel_line_id,
                sku=sl.sku,
                quantity=sl.quantity,
                serial_numbers=tuple(sl.serial_numbers),
            )
        )
    return tuple(
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
    )


def with_channel_carriers(view: OrderView, names: Mapping[str, Mapping[str, str]]) -> OrderView:
    """The view with each shipment's carrier as the order's channel names it (HUB_CARRIER_NAMES);
    a carrier the channel's map does not list keeps the provider's name."""
    known = {k.strip().lower(): v for k, v in names.get(view.channel, {}).items()}
    if not known:
        return view
    shipments = tuple(
        replace(s, carrier=known.get(s.carrier.strip().lower(), s.carrier)) if s.carrier else s
        for s in view.shipments
    )
    return replace(view, shipments=shipments)


def view(session: Session, order_id: str) -> OrderView:
    """The order as a connector sees it, with its shipments."""
    return orders.view(session, order_id, shipment_views(session, order_id))
