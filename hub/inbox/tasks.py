"""`inbox.process`: turn one stored webhook into its effects, exactly once."""

from __future__ import annotations

import structlog
from sqlmodel import Session

from connectors.base import EventKind, MalformedPayload, Permanent, WebhookIdentity
from connectors.registry import NotConfigured
from hub.fulfilment import service as fulfilment
from hub.inbox import repository as repo
from hub.inbox.models import InboundStatus
from hub.inbox.service import PROCESS
from hub.jobs.context import JobContext
from hub.jobs.models import Job
from hub.jobs.registry import job_handler
from hub.orders import intake

log = structlog.get_logger("hub.inbox")


def _failed(session: Session, job: Job, error: str) -> None:
    repo.settle(session, int(job.payload["event_id"]), InboundStatus.FAILED, error=error)


@job_handler(PROCESS, on_dead=_failed)
def process(ctx: JobContext) -> None:
    runtime = ctx.runtime
    event_id = int(ctx.job.payload["event_id"])
    with runtime.db.reader() as session:
        stored = repo.get(session, event_id)
        if stored is None:
            raise Permanent(f"inbound event {event_id} does not exist")
        channel, body = stored.channel, stored.body
        identity = WebhookIdentity(stored.external_id, stored.event_type)
        settled = stored.status in (InboundStatus.PROCESSED, InboundStatus.IGNORED)
    if settled and not ctx.job.payload.get("replay"):
        return
    structlog.contextvars.bind_contextvars(event_id=event_id, channel=channel)
    try:
        receiver = runtime.connectors.receiver(channel)
    except NotConfigured:
        raise Permanent(f"channel {channel} is not configured") from None
    try:
        event = receiver.parse(body, identity)
    except MalformedPayload as exc:
        with runtime.db.transaction() as session:
            repo.settle(session, event_id, InboundStatus.FAILED, error=f"unreadable: {exc}")
            ctx.finish(session)
        return
    fetched = None
    report = event.fulfilment
    wanted = intake.order_to_fetch(event)
    if wanted is not None:
        fetched = runtime.connectors.channel(channel).fetch_order(wanted)
    elif event.kind is EventKind.ORDER_CHANGED:
        raise Permanent(f"{identity.event_type} names no order")
    elif event.kind is EventKind.FULFILMENT_UPDATE and report is None:
        # A provider whose events carry ids only: the order it names is read for its state.
        if event.channel_order_id is None:
            raise Permanent(f"{identity.event_type} names no order")
        report = runtime.connectors.provider(channel).get_order(event.channel_order_id)
    source = f"webhook:{channel}:{identity.external_id}"
    with runtime.db.transaction() as session:
        if event.kind is EventKind.FULFILMENT_UPDATE:
            assert report is not None
            order, shipments = fulfilment.apply_report(session, channel, report, source)
            changes = [{"kind": "shipment", "id": s.id} for s in shipments]
            outcome = intake.Outcome(order=order, changes=changes)
        else:
            outcome = intake.apply_event(session, runtime, channel, event, fetched, source)
        repo.settle(
            session,
            event_id,
            InboundStatus.IGNORED if outcome.ignored else InboundStatus.PROCESSED,
            error=outcome.ignored,
            order_id=outcome.order.id if outcome.order else None,
        )
        ctx.finish(session)
    log.info("hub.inbox.processed", kind=event.kind.value, ignored=outcome.ignored)
