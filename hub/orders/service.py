"""The rules of an order's life. The only writer of order state.

Every change is: compute the next state with the state machine, persist it with a
compare-and-set update, write a history row, and enqueue the jobs it implies, all in the
caller's transaction. Services never commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
from sqlmodel import Session

from connectors import base
from connectors.base import Capability, ChannelOrder, OrderLineView, OrderView, ShipmentView
from connectors.registry import NotConfigured, connection_key
from hub.errors import DomainError
from hub.ids import new_id
from hub.inventory import repository as stock
from hub.inventory import service as inventory
from hub.jobs import queue
from hub.jobs.registry import TryAgain
from hub.orders import effects
from hub.orders import repository as repo
from hub.orders.jobs import ACCEPT, ACKNOWLEDGE, REJECT
from hub.orders.models import Order, OrderFlag, OrderLine
from hub.runtime import Runtime
from hub.types import utcnow
from state_machines.order import Effect, OrderState, Trigger, may, next_state

log = structlog.get_logger("hub.orders")

OVERSOLD = "oversold: restock or refund"

# What a flag is about. A flag of a job's failure is resolved when that job succeeds (on an
# operator's retry); an oversold one when stock fills the order; a stuck one when the order
# moves; the others by a person.
ATTENTION = "attention"
JOB_FAILED = "job_failed"
OVERSOLD_CODE = "oversold"
NO_SKU_CODE = "no_sku"
STUCK = "stuck"
MONEY_OUT_OF_RANGE = "money_out_of_range"
# Codes that hold the order (not acknowledged, accepted or routed) until a person resolves them.
HOLDING = frozenset({MONEY_OUT_OF_RANGE})

# A paid order that found no stock stays acknowledged (never confirmed without its units) and
# flagged until a restock fills it or a refund cancels it.
WAITING_STATE = OrderState.ACKNOWLEDGED
FILL_WAITING = "orders.fill_waiting"


def fill_key(sku: str) -> str:
    """One waiting fill job per SKU (coalesced): it offers whatever is free when it runs."""
    return f"{FILL_WAITING}:{sku}"


# What the hub assumes of a channel it has no connector for (switched off since the order came):
# the strictest flow, every call made, nothing assumed.
_UNKNOWN_CHANNEL = frozenset({Capability.ACKNOWLEDGE, Capability.ACCEPT, Capability.REJECT})


class OrderNotFound(DomainError):
    status = 404
    code = "order_not_found"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} not found")
        self.order_id = order_id


class StaleOrder(DomainError, TryAgain):
    """The order changed state under us (compare-and-set missed); a job tries again."""

    status = 409
    code = "concurrent_update"


def capabilities(runtime: Runtime, channel: str) -> frozenset[Capability]:
    """What the order's channel can do, as its connector declares it."""
    try:
        return runtime.connectors.channel(channel).capabilities
    except NotConfigured:
        return _UNKNOWN_CHANNEL


def get(session: Session, order_id: str) -> Order:
    order = repo.get(session, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order


# -- receiving --------------------------------------------------------------------------------


def receive(
    session: Session, incoming: ChannelOrder, source: str, connection: str | None = None
) -> tuple[Order, bool]:
    """The hub's order for `incoming` from the channel connection `connection` (by default its
    channel's default connection), created if new; True when this call created it.

    The insert comes first (`INSERT ... ON CONFLICT DO NOTHING RETURNING`): a new order, the
    common case, costs no look-up, and of two processes receiving the same order at once (a
    webhook and a reconciliation run) the unique (connection, channel_order_id) lets exactly
    one win; the other reads the winner's order.
    """
    connection = connection or connection_key(incoming.channel)
    created = receive_many(session, [incoming], source, connection)
    if created:
        return created[0], True
    winner = repo.by_channel_id(session, connection, incoming.channel_order_id)
    if winner is None:
        raise StaleOrder(f"{connection} order {incoming.channel_order_id} vanished")
    return winner, False


def receive_many(
    session: Session,
    incoming: Sequence[ChannelOrder],
    source: str,
    connection: str | None = None,
) -> list[Order]:
    """`receive` for a page of orders none of which the caller found: the orders this call
    created (one statement each for orders, lines and history). An order another writer
    created meanwhile is left out; the caller takes it through `receive`.
    """
    now = utcnow()
    rows: list[dict[str, Any]] = []
    lines: dict[str, list[dict[str, Any]]] = {}
    history: dict[str, dict[str, Any]] = {}
    problems: dict[str, list[str]] = {}
    for order in incoming:
        order_id = new_id("ord")
        problems[order_id] = base.money_problems(order)
        as_sent: dict[str, str] = {}
        total = _storable(order.total_amount, "total", as_sent)
        prices = [
            _storable(line.unit_price, f"line {line.channel_line_id}", as_sent)
            for line in order.lines
        ]
        attributes = _jsonable(order.attributes)
        if as_sent:
            attributes["amounts_as_sent"] = as_sent
        rows.append(
            {
                "id": order_id,
                "channel": order.channel,
                "connection": connection or connection_key(order.channel),
                "channel_order_id": order.channel_order_id,
                "status": OrderState.CREATED.value,
                "channel_status": order.channel_status,
                "currency": order.currency,
                "total_amount": total,
                "buyer_email": order.buyer_email,
                "shipping_address": asdict(order.shipping_address)
                if order.shipping_address
                else None,
                "attributes": attributes,
                "placed_at": order.placed_at,
                "needs_attention": False,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        lines[order_id] = [
            {
                "order_id": order_id,
                "channel_line_id": line.channel_line_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "shipped_quantity": 0,
                "cancelled_quantity": 0,
                "unit_price": price,
                "parcel_ref": line.parcel_ref,
                "attributes": _jsonable(line.attributes),
            }
            for line, price in zip(order.lines, prices, strict=True)
        ]
        history[order_id] = {
            "order_id": order_id,
            "trigger": "receive",
            "from_state": None,
            "to_state": OrderState.CREATED.value,
            "source": source,
            "detail": {},
            "at": now,
        }
    received = repo.insert_new(session, rows, lines, history)
    for new in received:
        log.info("hub.orders.received", order_id=new.id, channel=new.channel)
        if any(line["sku"] is None for line in lines[new.id]):
            flag(session, new.id, "line has no SKU", source, code=NO_SKU_CODE)
        if problems[new.id]:
            # Kept, and held where it is (nothing acknowledged, accepted or routed) until a
            # person has looked: a negative price or an absurd total is a channel's bug or an
            # attack, and shipping against it cannot be undone.
            flag(
                session,
                new.id,
                "money out of range: " + "; ".join(problems[new.id]),
                source,
                code=MONEY_OUT_OF_RANGE,
            )
    return received


# Amounts with more digits either side of the point than this are kept as sent in the order's
# attributes, and as 0 in the money columns, which every backend then holds exactly.
_MAX_EXPONENT = 100


def _storable(amount: Decimal, what: str, as_sent: dict[str, str]) -> Decimal:
    if amount.is_finite() and -_MAX_EXPONENT < amount.adjusted() < _MAX_EXPONENT:
        return amount
    as_sent[what] = str(amount)
    return Decimal(0)


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
    history = {
        "trigger": trigger.value,
        "from_state": before,
        "to_state": after.value,
        "source": source,
        "detail": _jsonable(detail or {}),
    }
    if not repo.transition(session, order, before, after, history):
        raise StaleOrder(f"order {order.id} is no longer {before}")
    if after != before:
        clear_flag(session, order, source, code=STUCK)  # it moved: no longer stuck
    log.info("hub.orders.transition", order_id=order.id, trigger=trigger.value, to=after.value)
    effects.dispatch(session, order, after, source)
    return after


@effects.on_enter(Effect.RELEASE_STOCK)
def _release_stock(session: Session, order: Order, source: str) -> None:
    inventory.release(session, order.id)


def _history(
    session: Session,
    order_id: str,
    trigger: str,
    before: str | None,
    after: str | None,
    source: str,
    detail: Mapping[str, Any] | None = None,
) -> None:
    repo.add_history(
        session,
        [
            {
                "order_id": order_id,
                "trigger": trigger,
                "from_state": before,
                "to_state": after,
                "source": source,
                "detail": _jsonable(detail or {}),
                "at": utcnow(),
            }
        ],
    )


def note(
    session: Session, order: Order, what: str, source: str, detail: Mapping[str, Any] | None = None
) -> None:
    """Record a fact in the history without changing state (a partial refund, a notice)."""
    _history(session, order.id, what, order.status, order.status, source, detail)


def record_routing(
    session: Session,
    order_id: str,
    provider: str,
    connection: str | None,
    ref: str | None,
    source: str,
    detail: Mapping[str, Any],
) -> str | None:
    """The order went to the provider system `provider` (at `connection`) as `ref`: its
    fulfilment columns set and a `routed` note with `detail` in its history, one statement on
    Postgres. The order's state as that statement found it, under its row lock; None when
    there is no such order."""
    return repo.set_routing(
        session,
        order_id,
        provider,
        connection,
        ref,
        "routed",
        utcnow(),
        note={"trigger": "routed", "source": source, "detail": _jsonable(detail)},
    )


def flag(
    session: Session, order_id: str, reason: str, source: str, *, code: str = ATTENTION
) -> OrderFlag | None:
    """Ask a person to look at the order: one open flag per reason, kept with its source.

    Raising a reason that is open already refreshes it instead of adding a second: the same
    code and text, or for a job's failure the same job. The order's `attention_reason` is its
    newest open reason."""
    # The order's row lock makes two transactions raising the same reason take turns, so the
    # second sees the first's flag and refreshes it instead of adding a twin.
    order = repo.get(session, order_id, for_update=True)
    if order is None:
        return None
    for open_flag in repo.flags(session, order_id, open_only=True):
        same_job = code == JOB_FAILED and open_flag.source == source
        if open_flag.code == code and (same_job or open_flag.message == reason):
            if open_flag.message != reason:
                open_flag.message = reason
                session.add(open_flag)
                _summarise(session, order)
            return open_flag
    raised = OrderFlag(order_id=order_id, code=code, message=reason, source=source[:128])
    session.add(raised)
    session.flush()
    _summarise(session, order)
    _history(
        session,
        order.id,
        "flag",
        order.status,
        order.status,
        source,
        {"reason": reason, "code": code},
    )
    log.warning("hub.orders.flagged", order_id=order_id, reason=reason, code=code)
    return raised


def clear_flag(
    session: Session,
    order: Order,
    source: str,
    *,
    code: str | None = None,
    raised_by: str | None = None,
    flag_id: int | None = None,
    note: str | None = None,
) -> list[OrderFlag]:
    """Resolve the order's open flags that match (all of them when nothing is named): their
    cause is gone, or `source` (an operator) settled them with `note`. The resolved ones."""
    if not order.needs_attention:
        return []
    resolved = [
        f
        for f in repo.flags(session, order.id, open_only=True)
        if (code is None or f.code == code)
        and (raised_by is None or f.source == raised_by)
        and (flag_id is None or f.id == flag_id)
    ]
    now = utcnow()
    for f in resolved:
        f.resolved_at = now
        f.resolved_by = source[:128]
        f.note = note
        session.add(f)
        detail = {"flag": f.id, "code": f.code, "reason": f.message}
        _history(
            session,
            order.id,
            "unflag",
            order.status,
            order.status,
            source,
            detail | ({"note": note} if note else {}),
        )
    if resolved:
        session.flush()
        _summarise(session, order)
    return resolved


def has_flag(session: Session, order: Order, code: str) -> bool:
    """Whether the order has an open flag of `code`."""
    return order.needs_attention and any(
        f.code == code for f in repo.flags(session, order.id, open_only=True)
    )


def _summarise(session: Session, order: Order) -> None:
    """Keep the order's summary of its open flags (what lists, filters and the metric read)."""
    still_open = repo.flags(session, order.id, open_only=True)
    order.needs_attention = bool(still_open)
    order.attention_reason = still_open[-1].message if still_open else None
    order.updated_at = utcnow()
    session.add(order)


class NotFlagged(DomainError):
    status = 409
    code = "not_flagged"


def resolve(
    session: Session,
    runtime: Runtime,
    order: Order,
    source: str,
    note: str,
    flag_id: int | None = None,
) -> list[OrderFlag]:
    """An operator settles one open flag (or all, when `flag_id` is None) with a note. An order
    held by a flag (money out of range) goes on once no such flag is left."""
    resolved = clear_flag(session, order, source, flag_id=flag_id, note=note)
    if not resolved:
        what = "no open flag" if flag_id is None else f"no open flag {flag_id}"
        raise NotFlagged(f"order {order.id} has {what}")
    if any(f.code in HOLDING for f in resolved) and not _held(session, order):
        advance(session, runtime, order, source)
    return resolved


def _held(session: Session, order: Order) -> bool:
    """Whether an open flag holds the order where it is until a person resolves it."""
    return order.needs_attention and any(
        f.code in HOLDING for f in repo.flags(session, order.id, open_only=True)
    )


def update_channel_status(session: Session, order: Order, channel_status: str) -> None:
    if order.channel_status != channel_status:
        order.channel_status = channel_status
        order.updated_at = utcnow()
        session.add(order)


# -- the channel flow -------------------------------------------------------------------------


def advance(session: Session, runtime: Runtime, order: Order, source: str) -> None:
    """Take a new order as far as it can go without calling out.

    A channel that has an acknowledge or accept call gets a job for it, and the state follows
    only once the channel answered; a channel without such calls moves at once. Stock is
    reserved before the order is accepted, so a confirmed order always has its units. An order
    that cannot be fulfilled is rejected where the channel lets the seller reject, and held,
    flagged, where the buyer has paid already (Depop).
    """
    if _held(session, order):
        return
    can = capabilities(runtime, order.connection)
    rejects = Capability.REJECT in can
    if order.status == OrderState.CREATED:
        if Capability.ACKNOWLEDGE in can:
            ACKNOWLEDGE.enqueue(session, order.id)
            return
        fire(session, order, Trigger.ACKNOWLEDGE, source)
    if order.status != OrderState.ACKNOWLEDGED:
        return
    lines = repo.line_snapshot(session, order.id)
    missing_sku = [line.channel_line_id for line in lines if line.sku is None]
    short: Sequence[str] = ()
    # A paid order (Depop) stands even with a line nobody can name: hold the units it does name.
    if not missing_sku or not rejects:
        result = inventory.reserve(
            session,
            order.id,
            [(line.sku, line.open_quantity) for line in lines if line.sku and line.open_quantity],
            policy=runtime.settings.untracked_skus,
            origin_channel=order.connection,
        )
        short = result.short
    if not missing_sku and not short:
        clear_flag(session, order, source, code=OVERSOLD_CODE)  # restocked: the order goes on
        if Capability.ACCEPT in can:
            ACCEPT.enqueue(session, order.id)
        else:
            fire(session, order, Trigger.CONFIRM, source)
        return
    _unfulfillable(session, order, source, rejects, missing_sku, short)


def _unfulfillable(
    session: Session,
    order: Order,
    source: str,
    rejects: bool,
    missing_sku: Sequence[str],
    short: Sequence[str],
) -> None:
    """An acknowledged order with a line nobody can name or units not in stock: rejected where
    the channel lets the seller reject, else (paid) kept and flagged."""
    reason = (
        f"line has no SKU: {', '.join(missing_sku)}"
        if missing_sku
        else f"out of stock: {', '.join(short)}"
    )
    if rejects:
        REJECT.enqueue(session, order.id, {"reason": reason})
        return
    if missing_sku:
        # The channel took the buyer's money already (Depop): the order stands, a person decides.
        fire(session, order, Trigger.CONFIRM, source, detail={"unfulfillable": reason})
        flag(session, order.id, "line has no SKU", source, code=NO_SKU_CODE)
        return
    # Paid, but the units went elsewhere: it stays unconfirmed, so nothing ships, until a
    # restock fills it (the fill_waiting job runs advance again) or a refund cancels it.
    flag(session, order.id, OVERSOLD, source, code=OVERSOLD_CODE)


def advance_many(session: Session, runtime: Runtime, orders: Sequence[Order], source: str) -> None:
    """`advance` for a page of orders just received, ending each where `advance` would.

    The orders that move without calling out (created, no open flag, their channel has neither
    an acknowledge nor an accept call) are acknowledged together and confirmed together: one
    compare-and-set UPDATE per transition for all of them, their history rows in one insert,
    the effects of the state entered for all at once (their route jobs in one statement). Their
    stock is reserved in one pass (`inventory.reserve_many`), each order all or nothing in the
    page's order, so which order gets the last units is what `advance` one order after another
    gives; one that finds no stock goes on as `advance` would. Every other order (held,
    flagged, a channel with those calls) goes through `advance` at its place in the page, after
    the reservations of the orders before it. The caller locks the page's stock rows first.
    """
    can = {order.id: capabilities(runtime, order.connection) for order in orders}
    together = [
        order
        for order in orders
        if order.status == OrderState.CREATED
        and not order.needs_attention
        and not can[order.id] & {Capability.ACKNOWLEDGE, Capability.ACCEPT}
    ]
    _fire_many(session, together, Trigger.ACKNOWLEDGE, source)
    lines: dict[str, list[OrderLine]] = {order.id: [] for order in together}
    for line in repo.lines_for(session, list(lines)):
        lines[line.order_id].append(line)
    confirmed: list[Order] = []
    # Orders that reserve together, in the page's order: reserved (one pass for all of them)
    # before the next order that goes through `advance`, which may take the same units.
    # Each is (order, whether its channel rejects, its lines without a SKU).
    pending: list[tuple[Order, bool, list[str]]] = []

    def reserve_pending() -> None:
        # A paid order (Depop) stands even with a line nobody can name: it holds what it names.
        reserving = [order for order, rejects, missing in pending if not missing or not rejects]
        results = inventory.reserve_many(
            session,
            [(o.id, _units(lines[o.id])) for o in reserving],
            policy=runtime.settings.untracked_skus,
            origin_channels=[o.connection for o in reserving],
        )
        short = {o.id: r.short for o, r in zip(reserving, results, strict=True)}
        for order, rejects, missing_sku in pending:
            found_short = short.get(order.id, ())
            if not missing_sku and not found_short:
                confirmed.append(order)  # no open flag: no oversold one to clear
            else:
                _unfulfillable(session, order, source, rejects, missing_sku, found_short)
        pending.clear()

    for order in orders:
        if order.id not in lines:
            if pending:
                reserve_pending()
            advance(session, runtime, order, source)
            continue
        missing = [line.channel_line_id for line in lines[order.id] if line.sku is None]
        pending.append((order, Capability.REJECT in can[order.id], missing))
    if pending:
        reserve_pending()
    _fire_many(session, confirmed, Trigger.CONFIRM, source)


def _units(lines: Sequence[OrderLine]) -> list[tuple[str, int]]:
    """What an order's lines ask to reserve: (sku, open quantity) of the named, open ones."""
    return [(line.sku, line.open_quantity) for line in lines if line.sku and line.open_quantity]


def _fire_many(session: Session, orders: Sequence[Order], trigger: Trigger, source: str) -> None:
    """`fire` for orders in the same state with no open flag (so no stuck flag to clear):
    one compare-and-set for all, or StaleOrder and none."""
    if not orders:
        return
    before = orders[0].status
    if any(order.status != before for order in orders):
        raise ValueError("orders fired together must share their state")
    after = next_state(before, trigger)
    if not repo.compare_and_set_many(session, orders, before, after):
        raise StaleOrder(f"an order of {len(orders)} is no longer {before}")
    now = utcnow()
    repo.add_history(
        session,
        [
            {
                "order_id": order.id,
                "trigger": trigger.value,
                "from_state": before,
                "to_state": after.value,
                "source": source,
                "detail": {},
                "at": now,
            }
            for order in orders
        ],
    )
    for order in orders:
        log.info("hub.orders.transition", order_id=order.id, trigger=trigger.value, to=after.value)
    effects.dispatch_many(session, orders, after, source)


def request_reject(session: Session, order: Order, reason: str) -> None:
    """An operator refuses an order not yet confirmed: the channel is told first (a job), and
    the state follows its answer. IllegalTransition now, rather than a dead job later."""
    next_state(order.status, Trigger.REJECT)
    REJECT.enqueue(session, order.id, {"reason": reason})


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
    freed: list[tuple[str, int]] = []
    changed = []
    for line in lines:
        if line.channel_line_id in wanted and line.open_quantity > 0:
            units = line.open_quantity
            line.cancelled_quantity += units
            session.add(line)
            changed.append(line.channel_line_id)
            if line.sku:
                freed.append((line.sku, units))
    if not changed:
        return
    note(session, order, "lines_cancelled", source, {"lines": changed})
    if all(line.open_quantity == 0 and line.shipped_quantity == 0 for line in lines):
        # The whole order goes: cancelling it gives its units back once no provider can ship
        # them, never before.
        cancel(session, order, source, {"lines": changed})
        return
    for sku, units in freed:
        inventory.release_units(session, order.id, sku, units)
    if order.fulfilment_ref and may(order.status, Trigger.SHIP):
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
    if all(line.open_quantity == 0 for line in lines) and may(order.status, Trigger.SHIP):
        fire(session, order, Trigger.SHIP, source, all_lines_shipped=True)


# -- views ------------------------------------------------------------------------------------


def view(session: Session, order_id: str, shipments: Sequence[ShipmentView] = ()) -> OrderView:
    """The order as a connector sees it. Each line says how much of it shipped; the shipments
    themselves are fulfilment's to read and pass in (tracking pushes need them)."""
    order = get(session, order_id)
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
            for line in repo.lines(session, order.id)
        ),
        shipments=tuple(shipments),
        attributes=dict(order.attributes),
    )


# -- paid orders waiting for stock ---------------------------------------------------------------


@inventory.on_units_freed
def offer_freed_units(session: Session, skus: Sequence[str]) -> None:
    """Units of `skus` came free: for each SKU paid orders wait for, queue one job (coalesced)
    that offers them the units, oldest order first."""
    if not repo.search(session, status=WAITING_STATE, open_flag=OVERSOLD_CODE, limit=1):
        return
    waited_for = [
        sku
        for sku in skus
        if repo.search(session, status=WAITING_STATE, open_flag=OVERSOLD_CODE, sku=sku, limit=1)
    ]
    queue.enqueue_coalesced(
        session, FILL_WAITING, [(fill_key(sku), {"sku": sku}) for sku in waited_for]
    )


def fill_waiting(session: Session, runtime: Runtime, sku: str, source: str) -> None:
    """Offer the free units of `sku` to the orders waiting for it, oldest first.

    A waiting order is one its channel already sold and charged for (Depop) that found no
    stock; taking it forward reserves its units and confirms it, so it is routed and shipped.
    """
    for order in waiting(session, sku):
        item = stock.get(session, sku)
        if item is None or item.available <= 0:
            break
        if capabilities(runtime, order.connection) & {Capability.ACCEPT, Capability.REJECT}:
            continue  # such a channel's order is rejected, never kept waiting
        advance(session, runtime, order, source)
        if order.status == WAITING_STATE:
            continue
        log.info("hub.orders.filled", sku=sku, order_id=order.id)
        # The sale is old news at its channel, whose listing the hub has changed since (a
        # restock relists it): unlike a fresh sale, that channel is told too.
        for line_sku in sorted({line.sku for line in repo.lines(session, order.id) if line.sku}):
            inventory.request_listing_sync(session, line_sku, None)


_PAGE = 200


def waiting(session: Session, sku: str) -> list[Order]:
    """Orders waiting for stock with a line of `sku`, oldest first: those with an open
    oversold flag, not any flag (an order flagged for another cause waits for no stock)."""
    found: list[Order] = []
    cursor: str | None = None
    while True:
        page = repo.search(
            session,
            status=WAITING_STATE,
            open_flag=OVERSOLD_CODE,
            sku=sku,
            after_id=cursor,
            limit=_PAGE,
        )
        found.extend(page)
        if len(page) < _PAGE:
            return found[::-1]
        cursor = page[-1].id
