"""`POST /webhooks/{system}[/{connection}]`: the only door orders come in by. A system's
bare URL is its `default` connection's; each other connection has its own URL and is checked
with its own secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from connectors.base import Unauthenticated
from connectors.registry import DEFAULT, NotConfigured, connection_key, name_of, system_of
from hub import audit, metrics
from hub.deps import ActorDep, ReaderDep, RowCursor, RowId, RuntimeDep, require_admin
from hub.errors import ApiError
from hub.inbox import repository as repo
from hub.inbox import service
from hub.inbox.models import DeliveryOutcome, InboundStatus
from hub.runtime import Runtime

log = structlog.get_logger("hub.inbox")

MAX_BODY = 1 << 20  # 1 MiB

router = APIRouter(tags=["webhooks"])


class WebhookReceipt(BaseModel):
    status: Literal["accepted", "duplicate"]
    event_id: int


_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "Missing or invalid signature or token; nothing was stored."},
    404: {"description": "`channel_not_configured`: no credentials for this channel."},
    413: {"description": "Body over 1 MiB; refused before it was read whole."},
}


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if too_big:
            raise ApiError(413, "payload_too_large", f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/webhooks/{channel}", response_model=WebhookReceipt, responses=_ERRORS)
async def receive_webhook(channel: str, request: Request) -> WebhookReceipt:
    """Verify, store once and queue a webhook of the system's default connection; answers
    before any processing."""
    return await _receive(connection_key(channel), request)


@router.post("/webhooks/{system}/{connection}", response_model=WebhookReceipt, responses=_ERRORS)
async def receive_connection_webhook(
    system: Annotated[str, Path(max_length=32)],
    connection: Annotated[str, Path(max_length=64)],
    request: Request,
) -> WebhookReceipt:
    """Verify with the connection's own secrets, store once and queue a webhook of the
    connection `system/connection`; answers before any processing."""
    return await _receive(connection_key(system, connection), request)


async def _receive(key: str, request: Request) -> WebhookReceipt:
    runtime: Runtime = request.app.state.runtime
    remote = request.client.host if request.client else None
    channel = system_of(key)
    try:
        # The registry in hand (the usual case) costs no thread hand-off; a connection it
        # lacks, or a refresh due, reads the database on a worker thread.
        receiver = runtime.connectors.known_receiver(key)
        if receiver is None:
            receiver = await run_in_threadpool(runtime.connectors.receiver, key)
    except NotConfigured:
        metrics.WEBHOOKS.labels(channel="unknown", outcome="not_configured").inc()
        await _refused(runtime, key, "connection not configured", remote)
        if name_of(key) == DEFAULT:
            raise ApiError(
                404, "channel_not_configured", f"channel {channel!r} is not configured"
            ) from None
        raise ApiError(
            404,
            "connection_not_configured",
            f"connection {key!r} does not exist, is disabled or lacks credentials",
        ) from None
    body = await read_body(request)
    try:
        receiver.authenticate(request.headers, body, service.now())
    except Unauthenticated as exc:
        metrics.WEBHOOKS.labels(channel=channel, outcome="rejected").inc()
        await _refused(runtime, key, str(exc), remote)
        raise ApiError(401, "unauthenticated", f"webhook not authenticated: {exc}") from None
    receipt = await run_in_threadpool(service.store, runtime, key, receiver, request.headers, body)
    metrics.WEBHOOKS.labels(channel=channel, outcome=receipt.status).inc()
    if receipt.status == "duplicate":
        await run_in_threadpool(
            _note, runtime, key, DeliveryOutcome.DUPLICATE, None, remote, receipt.event_id
        )
    elif receipt.failed is not None:
        # Stored and answered 2xx (the channel must not resend what it cannot fix), and listed
        # with the rejected ones, where a person looks for deliveries that went wrong.
        log.warning("hub.inbox.failed_at_intake", connection=key, event_id=receipt.event_id)
        await run_in_threadpool(
            _note,
            runtime,
            key,
            DeliveryOutcome.FAILED,
            receipt.failed,
            remote,
            receipt.event_id,
        )
    return WebhookReceipt(status=receipt.status, event_id=receipt.event_id)


async def _refused(runtime: Runtime, key: str, reason: str, remote: str | None) -> None:
    """Log and keep a refused delivery: connection, reason and sender, never the body or a
    header (either may carry a secret)."""
    log.warning(
        "hub.inbox.rejected",
        channel=system_of(key),
        connection=key,
        reason=reason,
        remote_addr=remote,
    )
    await run_in_threadpool(_note, runtime, key, DeliveryOutcome.REJECTED, reason, remote)


def _note(
    runtime: Runtime,
    key: str,
    outcome: DeliveryOutcome,
    reason: str | None,
    remote: str | None,
    event_id: int | None = None,
) -> None:
    try:
        with runtime.db.transaction() as session:
            repo.add_delivery(
                session,
                connection=key,
                outcome=outcome,
                reason=reason,
                remote_addr=remote,
                event_id=event_id,
            )
    except Exception as exc:
        # The answer to the sender does not depend on this record: a database that cannot take
        # it is logged, and the sender still hears what happened to its delivery.
        log.error("hub.inbox.delivery_not_recorded", connection=key, error=type(exc).__name__)


class EventPublic(BaseModel):
    id: int
    channel: str
    connection: str
    external_id: str
    event_type: str
    status: str
    error: str | None
    order_id: str | None
    replays: int
    received_at: datetime
    processed_at: datetime | None


class EventDetail(EventPublic):
    body: str  # the raw body as received (UTF-8; undecodable bytes replaced)


class EventPage(BaseModel):
    data: list[EventPublic]
    next_cursor: int | None


class ReplayQueued(BaseModel):
    event_id: int
    status: Literal["queued"]


admin_router = APIRouter(
    prefix="/admin/events", tags=["events"], dependencies=[Depends(require_admin)]
)


@admin_router.get("", response_model=EventPage)
def list_events(
    session: ReaderDep,
    channel: str | None = None,
    connection: str | None = None,
    status: InboundStatus | None = None,
    order_id: str | None = None,
    cursor: RowCursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EventPage:
    """Inbound events, newest first; `connection` is a key ("depop/shop-b") or a system's
    name for its default connection."""
    rows = repo.search(
        session,
        channel=channel,
        connection=connection,
        status=status.value if status else None,
        order_id=order_id,
        after_id=cursor,
        limit=limit + 1,
    )
    page = rows[:limit]
    return EventPage(
        data=[EventPublic.model_validate(e, from_attributes=True) for e in page],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )


@admin_router.get(
    "/{event_id}", response_model=EventDetail, responses={404: {"description": "No such event"}}
)
def get_event(event_id: RowId, session: ReaderDep) -> EventDetail:
    event = repo.get(session, event_id)
    if event is None:
        raise ApiError(404, "event_not_found", f"inbound event {event_id} not found")
    return EventDetail(
        **EventPublic.model_validate(event, from_attributes=True).model_dump(),
        body=event.body.decode("utf-8", "replace"),
    )


@admin_router.post(
    "/{event_id}/replay",
    response_model=ReplayQueued,
    status_code=202,
    responses={404: {"description": "No such event"}},
)
def replay_event(event_id: RowId, runtime: RuntimeDep, actor: ActorDep) -> ReplayQueued:
    """Process the stored raw event again; handlers are idempotent, so a replay of an event
    already applied changes nothing."""
    if not service.replay(runtime, event_id):
        raise ApiError(404, "event_not_found", f"inbound event {event_id} not found")
    with runtime.db.transaction() as session:
        event = repo.get(session, event_id)
        audit.record(
            session,
            actor,
            "event.replay",
            f"event {event_id}",
            order_id=event.order_id if event else None,
        )
    return ReplayQueued(event_id=event_id, status="queued")


class DeliveryPublic(BaseModel):
    id: int
    channel: str
    connection: str | None
    outcome: str
    reason: str | None
    remote_addr: str | None
    event_id: int | None
    at: datetime


class DeliveryPage(BaseModel):
    data: list[DeliveryPublic]
    next_cursor: int | None


deliveries_router = APIRouter(
    prefix="/admin/webhooks", tags=["events"], dependencies=[Depends(require_admin)]
)


@deliveries_router.get("/deliveries", response_model=DeliveryPage)
def list_deliveries(
    session: ReaderDep,
    outcome: Literal["rejected", "duplicate", "failed"] | None = None,
    channel: str | None = None,
    cursor: RowCursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryPage:
    """Webhook deliveries that stored no new event, newest first: rejected ones (why, when,
    from which address) and duplicates; and those stored but failed at intake (unreadable, or
    an id or type no column holds), whose `event_id` can be replayed. Kept eight days."""
    rows = repo.deliveries(
        session, outcome=outcome, channel=channel, before_id=cursor, limit=limit + 1
    )
    page = rows[:limit]
    return DeliveryPage(
        data=[DeliveryPublic.model_validate(d, from_attributes=True) for d in page],
        next_cursor=page[-1].id if len(rows) > limit and page[-1].id is not None else None,
    )
