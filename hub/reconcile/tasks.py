"""Jobs of reconciliation and upkeep: a reconciliation run, the stuck-order sweep, and the
search for routed orders whose provider has gone quiet."""

from __future__ import annotations

from datetime import timedelta

import structlog

from connectors.base import ConnectorError, Permanent
from connectors.registry import NotConfigured
from hub.fulfilment.tasks import POLL
from hub.jobs import queue
from hub.jobs.context import JobContext
from hub.jobs.registry import job_handler
from hub.orders import repository as orders_repo
from hub.orders import service as orders
from hub.reconcile import repository as repo
from hub.reconcile.service import RUN, reconcile_order
from hub.types import utcnow

log = structlog.get_logger("hub.reconcile")

STUCK = "maintenance.stuck_orders"
POLL_QUIET = "maintenance.poll_quiet_fulfilment"


@job_handler(RUN)
def run_reconciliation(ctx: JobContext) -> None:
    """Read every order in the run's window, page by page, and apply each in its own
    transaction; the channel is called between transactions, never inside one."""
    runtime = ctx.runtime
    run_id = str(ctx.job.payload["run_id"])
    with runtime.db.transaction() as session:
        run = repo.get(session, run_id)
        if run is None:
            raise Permanent(f"reconciliation run {run_id} does not exist")
        if run.state == "done":
            return
        run.state, run.started_at = "running", utcnow()
        run.seen = run.created = run.updated = 0
        run.mismatches = []
        session.add(run)
        channel_name, window = run.channel, (run.window_from, run.window_to)
    try:
        channel = runtime.connectors.channel(channel_name)
        for incoming in channel.list_orders(*window):
            with runtime.db.transaction() as session:
                run = repo.get(session, run_id)
                assert run is not None
                reconcile_order(session, runtime.settings, run, incoming)
    except (ConnectorError, NotConfigured) as exc:
        with runtime.db.transaction() as session:
            run = repo.get(session, run_id)
            assert run is not None
            run.state = "failed"
            run.error = getattr(exc, "reason", None) or f"channel {channel_name} not configured"
            session.add(run)
        if isinstance(exc, NotConfigured):
            raise Permanent(f"channel {channel_name} is not configured") from None
        raise
    with runtime.db.transaction() as session:
        run = repo.get(session, run_id)
        assert run is not None
        run.state, run.finished_at, run.error = "done", utcnow(), None
        session.add(run)
        ctx.finish(session)
    log.info(
        "hub.reconcile.done", run_id=run_id, seen=run.seen, created=run.created, updated=run.updated
    )


@job_handler(STUCK)
def flag_stuck_orders(ctx: JobContext) -> None:
    """Flag every order that stayed in one state longer than its configured limit."""
    runtime = ctx.runtime
    with runtime.db.transaction() as session:
        for state, hours in runtime.settings.stuck_after_hours.items():
            for order in orders_repo.stuck(session, state, utcnow() - timedelta(hours=hours)):
                orders.flag(
                    session,
                    order.id,
                    f"stuck: {state} for more than {hours:g} h",
                    f"job:{ctx.job.id}",
                )
        ctx.finish(session)


@job_handler(POLL_QUIET)
def poll_quiet_fulfilment(ctx: JobContext) -> None:
    """Queue a status poll for every routed order its provider has not spoken of lately."""
    runtime = ctx.runtime
    quiet = utcnow() - timedelta(minutes=runtime.settings.fulfilment_poll_after_minutes)
    slot = ctx.job.idempotency_key
    with runtime.db.transaction() as session:
        for order in orders_repo.routed_without_update(session, quiet):
            if order.fulfilment_provider == "manual":
                continue
            queue.enqueue(session, POLL, f"order:{order.id}:poll:{slot}", order_id=order.id)
        ctx.finish(session)
