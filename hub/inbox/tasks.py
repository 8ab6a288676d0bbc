"""`inbox.process`: turn one stored webhook into its effects, exactly once."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlmodel import Session

from connectors.base import EventKind, MalformedPayload, Permanent, WebhookIdentity
from connectors.registry import NotConfigured
from hub.fulfilment import service as fulfilment
from hub.inbox import repository as repo
from hub.inbox import service
from hub.inbox.models import InboundStatus
from hub.inbox.service import PROCESS
from hub.jobs import queue
from hub.jobs.context import JobContext
from hub.jobs.models import Job
from hub.jobs.priorities import Priority
from hub.jobs.registry import Periodic, job_handler
from hub.jobs.schedules import interval
from hub.orders import intake
from hub.types import utcnow

log = structlog.get_logger("hub.inbox")


def _failed(session: Session, job: Job, error: str) -> None:
    repo.settle(
        session, int(job.payload["event_id"]), InboundStatus.FAILED, error=service.storable(error)
    )


@job_handler(PROCESS, on_dead=_failed, priority=Priority.ORDER)
def process(ctx: JobContext) -> None:
    runtime = ctx.runtime
    event_id = int(ctx.job.payload["event_id"])
    with runtime.db.read_one() as db_connection:
        stored = repo.to_process(db_connection, event_id)
    if stored is None:
        raise Permanent(f"inbound event {event_id} does not exist")
    channel, connection, body = stored["channel"], stored["connection"], stored["body"]
    identity = WebhookIdentity(stored["external_id"], stored["event_type"])
    settled = stored["status"] in (InboundStatus.PROCESSED, InboundStatus.IGNORED)
    if settled and not ctx.job.payload.get("replay"):
        return
    structlog.contextvars.bind_contextvars(
        event_id=event_id, channel=channel, connection=connection
    )
    try:
        receiver = runtime.connectors.receiver(connection)
    except NotConfigured:
        raise Permanent(f"connection {connection} is disabled or not configured") from None
    try:
        event = receiver.parse(body, identity)
    except MalformedPayload as exc:
        with runtime.db.transaction() as session:
            repo.settle(
                session,
                event_id,
                InboundStatus.FAILED,
                error=service.storable(f"unreadable: {exc}"),
            )
            ctx.finish(session)
        return
    fetched = None
    report = event.fulfilment
    wanted = intake.order_to_fetch(event)
    if wanted is not None:
        fetched = runtime.connectors.channel(connection).fetch_order(wanted)
    elif event.kind is EventKind.ORDER_CHANGED:
        raise Permanent(f"{identity.event_type} names no order")
    elif event.kind is EventKind.FULFILMENT_UPDATE and report is None:
        # A provider whose events carry ids only: the order it names is read for its state.
        if event.channel_order_id is None:
            raise Permanent(f"{identity.event_type} names no order")
        report = runtime.connectors.provider(connection).get_order(event.channel_order_id)
    source = f"webhook:{channel}:{identity.external_id}"
    with runtime.db.transaction() as session:
        if event.kind is EventKind.FULFILMENT_UPDATE:
            assert report is not None
            order, shipments = fulfilment.apply_report(session, connection, report, source)
            changes = [{"kind": "shipment", "id": s.id} for s in shipments]
            outcome = intake.Outcome(order=order, changes=changes)
        else:
            outcome = intake.apply_event(session, runtime, connection, event, fetched, source)
        repo.settle(
            session,
            event_id,
            InboundStatus.IGNORED if outcome.ignored else InboundStatus.PROCESSED,
            error=outcome.ignored,
            order_id=outcome.order.id if outcome.order else None,
        )
        ctx.finish(session)
    log.info("hub.inbox.processed", kind=event.kind.value, ignored=outcome.ignored)


EVENT_RETENTION = "maintenance.event_retention"
_BATCH = 500
_MAX_BATCHES = 200  # per run; the next run carries on


@job_handler(
    EVENT_RETENTION,
    priority=Priority.BULK,
    periodic=Periodic(
        EVENT_RETENTION, lambda settings: interval(settings.retention_interval_seconds)
    ),
)
def forget_settled_events(ctx: JobContext) -> None:
    """Delete settled webhooks older than HUB_RETENTION_EVENTS_DAYS, a small batch per
    transaction: their raw bodies hold buyers' personal data."""
    runtime = ctx.runtime
    cutoff = utcnow() - timedelta(days=runtime.settings.retention_events_days)
    deleted = 0
    for _ in range(_MAX_BATCHES):
        with runtime.db.transaction() as session:
            queue.extend_lease(session, ctx.job, runtime.settings.job_lease_seconds)
            batch = repo.delete_settled_before(session, cutoff, _BATCH)
        deleted += batch
        if batch < _BATCH:
            break
    log.info("hub.inbox.forgotten", events=deleted, before=cutoff.isoformat())
