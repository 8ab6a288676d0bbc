"""Reconciliation: read what the channel holds and make the hub agree, through the same
idempotent intake as webhooks. Every run is stored with what it found and what it did."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from connectors.base import ChannelOrder, ChannelOrderStatus
from hub import metrics
from hub.config import HubSettings
from hub.ids import new_id
from hub.jobs import queue
from hub.orders import intake
from hub.orders import repository as orders_repo
from hub.orders import service as orders
from hub.reconcile import repository as repo
from hub.reconcile.models import ReconcileRun
from hub.types import utcnow

RUN = "reconcile.run"


def start_run(
    session: Session,
    settings: HubSettings,
    channel: str,
    *,
    window_from: datetime | None = None,
    window_to: datetime | None = None,
    key: str | None = None,
) -> ReconcileRun | None:
    """Store a run and queue it; None when a run under `key` exists already.

    Without a window: from the last watermark (less an overlap, since late webhooks and clock
    skew blur the edge) to now."""
    to = window_to or utcnow()
    if window_from is None:
        mark = repo.watermark(session, channel)
        window_from = (
            mark - timedelta(minutes=settings.reconcile_overlap_minutes)
            if mark
            else to - timedelta(days=settings.reconcile_first_window_days)
        )
    run = ReconcileRun(id=new_id("rec"), channel=channel, window_from=window_from, window_to=to)
    with session.begin_nested() as savepoint:
        session.add(run)
        session.flush()
        if not queue.enqueue(session, RUN, key or f"reconcile:{run.id}", {"run_id": run.id}):
            savepoint.rollback()
            return None
    return run


def reconcile_order(
    session: Session, settings: HubSettings, run: ReconcileRun, incoming: ChannelOrder
) -> None:
    """One channel order: create it if missing, fix drift, and record every mismatch."""
    source = f"reconcile:{run.id}"
    run.seen += 1
    outcome = intake.take_order(session, settings, incoming, source)
    if outcome.created:
        run.created += 1
        _mismatch(run, incoming, "missing_order", "created the order from the channel")
    elif outcome.changes:
        run.updated += 1
        for change in outcome.changes:
            _mismatch(run, incoming, change["kind"], "applied the channel's state")
    order = outcome.order
    if order is not None and not outcome.created and incoming.status is ChannelOrderStatus.OPEN:
        pushed = [s for s in orders_repo.shipments(session, order.id) if s.pushed_to_channel_at]
        for shipment in pushed:
            # The channel still waits for tracking the hub believes it sent: send it again.
            queue.enqueue(
                session,
                orders.PUSH_TRACKING,
                f"order:{order.id}:push:{shipment.id}:{run.id}",
                {"shipment_id": shipment.id, "force": True},
                order_id=order.id,
            )
        if pushed:
            run.updated += 1
            _mismatch(run, incoming, "tracking_not_received", "pushed the tracking again")
    session.add(run)


def _mismatch(run: ReconcileRun, incoming: ChannelOrder, kind: str, action: str) -> None:
    run.mismatches = [
        *run.mismatches,
        {
            "channel_order_id": incoming.channel_order_id,
            "channel_status": incoming.channel_status,
            "kind": kind,
            "action": action,
        },
    ]
    metrics.RECONCILE_MISMATCHES.labels(run.channel, kind).inc()
