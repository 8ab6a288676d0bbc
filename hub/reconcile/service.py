"""Reconciliation: read what the channel holds and make the hub agree, through the same
idempotent intake as webhooks. Every run is stored with what it found and what it did."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from connectors.base import ChannelOrder, ChannelOrderStatus
from connectors.registry import resolve, system_of
from hub import metrics
from hub.config import HubSettings
from hub.fulfilment import repository as fulfilment_repo
from hub.fulfilment.service import PUSH_TRACKING
from hub.ids import new_id
from hub.inventory import service as inventory
from hub.jobs import queue
from hub.orders import intake
from hub.orders import repository as orders_repo
from hub.orders import service as orders
from hub.orders.models import Order
from hub.reconcile import repository as repo
from hub.reconcile.models import ReconcileRun
from hub.runtime import Runtime
from hub.types import utcnow
from state_machines.order import OrderState, Trigger, may

log = structlog.get_logger("hub.reconcile")

RUN = "reconcile.run"


def run_key(run_id: str) -> str:
    """The key of a run started by hand (a scheduled run's key names its slot instead)."""
    return f"reconcile:{run_id}"


# What the hub did about each kind of drift intake reports, as the run shows it.
_ACTIONS = {
    "cancelled_at_channel": "cancelled the order",
    "refunded_after_shipment": "flagged the order: refunded after shipment, check the return",
}


class InvalidWindow(ValueError):
    """A reconciliation window that is empty, inverted or not in UTC."""


def start_run(
    session: Session,
    settings: HubSettings,
    connection: str,
    *,
    window_from: datetime | None = None,
    window_to: datetime | None = None,
    key: str | None = None,
) -> ReconcileRun | None:
    """Store a run of the channel connection `connection` (a bare system name: its default)
    and queue it; None when a run under `key` exists already.

    Without a window: from the last watermark (less an overlap, since late webhooks and clock
    skew blur the edge) to now. `to` is capped at now: a window reaching into the future would
    move the watermark past what was read, and later runs would skip orders.
    """
    for value in (window_from, window_to):
        if value is not None and value.tzinfo is None:
            raise InvalidWindow("times need a UTC offset, e.g. 2026-11-23T00:00:00Z")
    connection = resolve(connection)
    now = utcnow()
    to = min(window_to, now) if window_to is not None else now
    if window_from is not None:
        if window_from >= to:
            raise InvalidWindow("'from' must be before 'to', and before now")
        since = window_from
    else:
        overlap = timedelta(minutes=settings.reconcile_overlap_minutes)
        mark = repo.watermark(session, connection)
        since = (
            mark - overlap if mark else to - timedelta(days=settings.reconcile_first_window_days)
        )
        if since >= to:
            # A run that ended after this one's end (a late scheduled firing): read the overlap.
            since = to - max(overlap, timedelta(minutes=1))
    run_id = new_id("rec")
    # The job first: its unique key is what makes a scheduled slot run once, and no run row
    # is left behind when the slot was queued already.
    if not queue.enqueue(
        session, RUN, key or run_key(run_id), {"run_id": run_id}, connection=connection
    ):
        return None
    run = ReconcileRun(
        id=run_id,
        channel=system_of(connection),
        connection=connection,
        window_from=since,
        window_to=to,
        created_at=now,
    )
    session.add(run)
    session.flush()
    return run


def begin(run: ReconcileRun) -> None:
    """Start (or restart, on a retried job) counting from zero."""
    run.state, run.started_at, run.finished_at, run.error = "running", utcnow(), None, None
    run.seen = run.created = run.updated = 0
    run.mismatches = []


def finish(run: ReconcileRun) -> None:
    run.state, run.finished_at, run.error = "done", utcnow(), None
    metrics.RECONCILE_RUNS.labels(run.channel, "done").inc()


def interrupted(run: ReconcileRun, error: str) -> None:
    """An attempt failed; the job layer decides whether another follows (see `failed`)."""
    run.state, run.error = "retrying", error


def failed(run: ReconcileRun, error: str) -> None:
    run.state, run.error, run.finished_at = "failed", error, utcnow()
    metrics.RECONCILE_RUNS.labels(run.channel, "failed").inc()


def apply_batch(
    session: Session, runtime: Runtime, run: ReconcileRun, batch: Sequence[ChannelOrder]
) -> None:
    """Apply one batch of channel orders to the hub and add what they showed to `run`.

    The page costs one look-up of the states of the orders the hub knows; an order whose
    state already agrees with the channel's (the daily case) is settled by it, and only the
    others are loaded and applied. The open orders the hub does not know are inserted together
    (orders, lines, history: a statement each) before each goes on as a webhook's order would.
    The batch goes in under one savepoint. When an order cannot be applied, the batch is
    rolled back and applied again with a savepoint per order, so that order is reported in the
    run and the others still count; the common case pays for one savepoint, not one per order.
    A conflict with a concurrent writer is raised instead, so the job retries the run.
    """
    ours = [o.channel_order_id for o in batch if o.channel == run.channel]
    states = orders_repo.states_by_channel_ids(session, run.connection, ours)
    # An order listed twice in a page is applied both times, as the second may see the first.
    once = {order_id for order_id, n in Counter(ours).items() if n == 1}
    work = [
        o
        for o in batch
        if o.channel != run.channel
        or o.channel_order_id not in once
        or o.channel_order_id not in states
        or not _settled(states[o.channel_order_id], o)
    ]
    known = orders_repo.by_channel_ids(
        session,
        run.connection,
        [
            o.channel_order_id
            for o in work
            if o.channel == run.channel and o.channel_order_id in states
        ],
    )
    # The page's orders each take their stock rows in SKU order, but one after another they
    # take the page's rows out of order; locking them all first, sorted, keeps the page from
    # deadlocking with a transaction that takes two of them in order. Outside the savepoint:
    # a rolled-back savepoint would let its locks go. A settled order touches no stock.
    inventory.lock(session, _skus_of(session, work, known.values()))
    applied: list[Finding] = []
    try:
        if work:  # a page settled whole needs no savepoint
            with session.begin_nested():
                applied = _apply_page(session, runtime, run, work, known)
    except _TRANSIENT:
        raise
    except Exception:
        applied = [_isolated(session, runtime, run, o) for o in work]
    # A settled order shows nothing: an empty finding.
    by_order = dict(zip(map(id, work), applied, strict=True))
    findings = [by_order[id(o)] if id(o) in by_order else Finding() for o in batch]
    found: list[dict[str, Any]] = []
    # Counted here and added to the run once: each change to the run's row is a tracked
    # attribute write, and three per order were a tenth of an unchanged page's time.
    created = updated = 0
    for incoming, result in zip(batch, findings, strict=True):
        created += result.created
        updated += result.updated
        for kind, action in result.drift:
            metrics.RECONCILE_MISMATCHES.labels(run.channel, kind).inc()
            found.append(
                {
                    "channel_order_id": incoming.channel_order_id,
                    "channel_status": incoming.channel_status,
                    "kind": kind,
                    "action": action,
                }
            )
    run.seen += len(batch)
    run.created += created
    run.updated += updated
    if found:
        # One new list per batch: the JSON column is rewritten once per batch, not per order.
        run.mismatches = [*run.mismatches, *found]
    session.add(run)


def _settled(state: tuple[str, str, bool], incoming: ChannelOrder) -> bool:
    """Whether `reconcile_order` would change and report nothing for `incoming`, an order the
    hub holds in `state` (status, channel status, needs attention): the same channel status,
    and neither completed while the channel still waits for it (tracking lost) nor still to
    ship, unflagged, while the channel says shipped. Kept in step with `_drift`."""
    status, channel_status, needs_attention = state
    if channel_status != incoming.channel_status:
        return False
    if incoming.status is ChannelOrderStatus.OPEN:
        return status != OrderState.COMPLETED
    if incoming.status is ChannelOrderStatus.SHIPPED:
        return needs_attention or not may(status, Trigger.SHIP)
    return False


def _skus_of(session: Session, batch: Sequence[ChannelOrder], known: Iterable[Order]) -> set[str]:
    """Every SKU the page may reserve, release or commit: its lines and its known orders'."""
    skus = {line.sku for incoming in batch for line in incoming.lines if line.sku}
    return skus | orders_repo.skus_of(session, [order.id for order in known])


def _apply_page(
    session: Session,
    runtime: Runtime,
    run: ReconcileRun,
    batch: Sequence[ChannelOrder],
    known: Mapping[str, Order],
) -> list[Finding]:
    source = f"reconcile:{run.id}"
    missing: dict[str, ChannelOrder] = {}
    for incoming in batch:
        if (
            incoming.channel == run.channel
            and incoming.channel_order_id not in known
            and incoming.status is ChannelOrderStatus.OPEN
        ):
            missing.setdefault(incoming.channel_order_id, incoming)
    created = {
        order.channel_order_id: order
        for order in orders.receive_many(session, list(missing.values()), source, run.connection)
    }
    findings: list[Finding] = []
    # New orders in a row are advanced together (a statement per step for all of them), and
    # before anything later in the page is applied, so the page's orders still take stock and
    # change in the page's order.
    fresh: list[Order] = []

    def advance_fresh() -> None:
        # What the per-order steps leave pending in the session (an order's changed columns, a
        # flag) waits for one flush at the end instead of one before every read: nothing the
        # steps read depends on it. (History rows are inserted at once.)
        with session.no_autoflush:
            orders.advance_many(session, runtime, fresh, source)
        fresh.clear()

    for incoming in batch:
        order = created.pop(incoming.channel_order_id, None)
        if order is not None and incoming.channel == run.channel:
            fresh.append(order)
            findings.append(Finding(created=True, drift=[_MISSING_ORDER]))
            continue
        if fresh:
            advance_fresh()
        session.flush()
        findings.append(
            reconcile_order(
                session,
                runtime,
                run.id,
                run.connection,
                incoming,
                known.get(incoming.channel_order_id) if incoming.channel == run.channel else None,
            )
        )
    if fresh:
        advance_fresh()
    session.flush()
    return findings


_MISSING_ORDER = ("missing_order", "created the order from the channel")

# Another writer got there first, or the database hiccupped: the whole run is retried.
_TRANSIENT = (orders.StaleOrder, OperationalError)


def _isolated(
    session: Session, runtime: Runtime, run: ReconcileRun, incoming: ChannelOrder
) -> Finding:
    try:
        with session.begin_nested():
            return reconcile_order(session, runtime, run.id, run.connection, incoming)
    except _TRANSIENT:
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.error(
            "hub.reconcile.order_failed", channel_order_id=incoming.channel_order_id, error=error
        )
        return Finding(drift=[("not_applied", f"nothing: {error}")])


@dataclass
class Finding:
    """What one channel order showed: whether the hub created or changed its order, and each
    mismatch as (kind, what was done)."""

    created: bool = False
    updated: bool = False
    drift: list[tuple[str, str]] = field(default_factory=list)


def reconcile_order(
    session: Session,
    runtime: Runtime,
    run_id: str,
    connection: str,
    incoming: ChannelOrder,
    known: Order | None = None,
) -> Finding:
    """One order of the channel connection `connection`: create it if missing, fix drift, say
    what was found and done. `known` is the hub's order when the caller looked it up already."""
    source = f"reconcile:{run_id}"
    if known is not None and incoming.status is not ChannelOrderStatus.CANCELLED:
        # What intake would do for an order it holds that the channel did not cancel.
        orders.update_channel_status(session, known, incoming.channel_status)
        return _drift(session, known, incoming, run_id, source)
    if incoming.status is ChannelOrderStatus.SHIPPED and not orders_repo.by_channel_id(
        session, connection, incoming.channel_order_id
    ):
        # Shipped before the hub knew of it (sold before the hub ran, or shipped by hand):
        # taking it in would route it to a warehouse and send the buyer a second parcel.
        return Finding(
            drift=[("missing_shipped_order", "not taken in: the channel shipped it already")]
        )
    outcome = intake.take_order(session, runtime, incoming, source, connection)
    found = Finding(created=outcome.created)
    if outcome.created:
        found.drift.append(_MISSING_ORDER)
    for change in outcome.changes:
        kind = str(change["kind"])
        if kind != "created":
            found.drift.append((kind, _ACTIONS.get(kind, "applied the channel's state")))
    order = outcome.order
    if order is not None and not outcome.created:
        found.drift.extend(_drift(session, order, incoming, run_id, source).drift)
        found.updated = bool(found.drift)
    return found


def _drift(
    session: Session, order: Order, incoming: ChannelOrder, run_id: str, source: str
) -> Finding:
    """What an order the hub holds shows beside the channel's open or shipped order."""
    found = Finding()
    if incoming.status is ChannelOrderStatus.OPEN:
        found.drift.extend(_tracking_lost(session, order, run_id, source))
    elif incoming.status is ChannelOrderStatus.SHIPPED:
        found.drift.extend(_shipped_elsewhere(session, order, source))
    found.updated = bool(found.drift)
    return found


def _tracking_lost(
    session: Session, order: Order, run_id: str, source: str
) -> list[tuple[str, str]]:
    """The hub shipped every line and told the channel, yet the channel still waits: send the
    tracking again (once per run; the push is safe to repeat)."""
    if order.status != OrderState.COMPLETED:
        return []
    shipments = fulfilment_repo.shipments(session, order.id)
    if not shipments or any(s.pushed_to_channel_at is None for s in shipments):
        return []  # a push is still under way: not drift
    for shipment in shipments:
        PUSH_TRACKING.enqueue(
            session, order.id, {"shipment_id": shipment.id, "force": True}, shipment.id, run_id
        )
    orders.note(
        session,
        order,
        "tracking_pushed_again",
        source,
        {"channel_status": order.channel_status, "shipments": [s.id for s in shipments]},
    )
    return [("tracking_not_received", "pushed the tracking again")]


def _shipped_elsewhere(session: Session, order: Order, source: str) -> list[tuple[str, str]]:
    """The channel says shipped while the hub still has units to send: shipping them would
    send the buyer a second parcel, so a person decides. Reported once, when flagged."""
    if not may(order.status, Trigger.SHIP) or order.needs_attention:
        return []
    orders.flag(session, order.id, "the channel reports it shipped; the hub has not", source)
    return [("shipped_outside_hub", "flagged the order for a person")]
