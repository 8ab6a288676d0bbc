"""Receiving webhooks: authenticate the raw bytes, store them once, queue their processing.

Storing and queueing happen in one transaction before the 2xx, so an event the channel was told
we accepted is never lost, and a duplicate is recognised by the database, not by a read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import structlog
from sqlalchemy.exc import DataError, DBAPIError, StatementError
from sqlmodel import Session

from connectors.base import MalformedPayload, WebhookIdentity, WebhookReceiver
from connectors.registry import system_of
from hub.inbox import repository as repo
from hub.inbox.models import EVENT_TYPE_LIMIT, EXTERNAL_ID_LIMIT, InboundStatus
from hub.jobs import queue
from hub.runtime import Runtime

log = structlog.get_logger("hub.inbox")

PROCESS = "inbox.process"


def process_key(event_id: int, replay: int = 0) -> str:
    """The key of processing an event (its `replay`-th replay: a new job each time)."""
    return f"inbox:{event_id}" if not replay else f"inbox:{event_id}:replay:{replay}"


@dataclass(frozen=True, slots=True)
class Receipt:
    status: Literal["accepted", "duplicate"]
    event_id: int
    failed: str | None = None  # why an accepted event was stored as failed


UNREADABLE = "unreadable"


def storable(text: str) -> str:
    """`text` as every backend stores it: a NUL (Postgres refuses it in text) and a lone
    surrogate (no UTF-8 encoding exists for it) written as backslash escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _unfit(value: str, what: str, limit: int) -> str | None:
    """Why `value` cannot be stored as the event's `what`, or None."""
    if len(value) > limit:
        return f"{what} over {limit} characters"
    if "\x00" in value:
        return f"{what} holds a NUL character"
    if storable(value) != value:
        return f"{what} is not valid Unicode (a lone surrogate)"
    return None


def _body_key(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _fitted(identity: WebhookIdentity, body: bytes) -> tuple[WebhookIdentity, str | None]:
    """An identity the columns hold, and why the event is failed if the channel's did not fit.

    An id that does not fit is replaced by the body's hash, which still makes a redelivery of
    the same body a duplicate; a type that does not fit is stored as unreadable."""
    bad_id = _unfit(identity.external_id, "event id", EXTERNAL_ID_LIMIT)
    bad_type = _unfit(identity.event_type, "event type", EVENT_TYPE_LIMIT)
    if bad_id is None and bad_type is None:
        return identity, None
    problems = "; ".join(p for p in (bad_id, bad_type) if p)
    fitted = WebhookIdentity(
        _body_key(body) if bad_id else identity.external_id,
        UNREADABLE if bad_type else identity.event_type,
    )
    shown = storable(identity.external_id[:60])
    return fitted, f"unstorable envelope: {problems} (id starts {shown!r})"


def store(
    runtime: Runtime,
    connection: str,
    receiver: WebhookReceiver,
    headers: Mapping[str, str],
    body: bytes,
) -> Receipt:
    """Store an authenticated webhook of the connection `connection` and queue it; a body the
    connector cannot read is kept as failed (visible, replayable once the connector learns to
    read it)."""
    channel = system_of(connection)
    error: str | None = None
    try:
        identity, error = _fitted(receiver.identify(headers, body), body)
    except MalformedPayload as exc:
        identity = WebhookIdentity(_body_key(body), UNREADABLE)
        error = storable(f"unreadable payload: {exc}")
    except Exception as exc:
        # The connector's reader broke on this body (a JSON nested too deep for the parser):
        # still an authenticated event, so it is kept, failed, for a replay after the fix.
        log.warning("hub.inbox.identify_crashed", channel=channel, error=type(exc).__name__)
        identity = WebhookIdentity(_body_key(body), UNREADABLE)
        error = storable(f"unreadable payload: {type(exc).__name__}: {exc}")
    try:
        receipt = _insert(runtime, connection, identity, body, error)
    except StatementError as exc:
        if isinstance(exc, DBAPIError) and not isinstance(exc, DataError):
            # The database is away (a dropped connection, a timeout), not refusing this body:
            # the delivery fails with a 5xx and the channel sends it again.
            raise
        # A value the checks above did not foresee, refused by this database: the body is
        # still kept (as bytes, which every backend stores), failed, for a person to look at.
        log.warning("hub.inbox.unstorable", channel=channel, error=type(exc).__name__)
        identity = WebhookIdentity(_body_key(body), UNREADABLE)
        error = f"the database refused the envelope: {type(exc).__name__}"
        receipt = _insert(runtime, connection, identity, body, error)
    event_id = receipt.event_id
    if receipt.status == "duplicate":
        log.info("hub.inbox.duplicate", channel=channel, event_id=event_id)
        return receipt
    log.info(
        "hub.inbox.received",
        channel=channel,
        event_id=event_id,
        event_type=identity.event_type,
        failed=error is not None,
    )
    return receipt


def _insert(
    runtime: Runtime, connection: str, identity: WebhookIdentity, body: bytes, error: str | None
) -> Receipt:
    def insert_and_queue(session: Session) -> Receipt:
        event_id = repo.insert(
            session,
            connection=connection,
            external_id=identity.external_id,
            event_type=identity.event_type,
            body=body,
            status=InboundStatus.FAILED if error else InboundStatus.PENDING,
            error=error,
        )
        if event_id is None:
            existing = repo.id_by_external_id(session, connection, identity.external_id)
            assert existing is not None
            return Receipt("duplicate", existing)
        if error is None:
            queue.enqueue(
                session,
                PROCESS,
                process_key(event_id),
                {"event_id": event_id},
                connection=connection,
            )
        return Receipt("accepted", event_id, error)

    # Webhooks arriving together share a commit; each answer still waits for its own.
    return runtime.db.run_batched(insert_and_queue)


def replay(runtime: Runtime, event_id: int) -> bool:
    """Process a stored event again (handlers are idempotent); False if there is no such event."""
    with runtime.db.transaction() as session:
        event = repo.get(session, event_id)
        if event is None:
            return False
        event.replays += 1
        event.status = InboundStatus.PENDING.value
        event.error = None
        session.add(event)
        queue.enqueue(
            session,
            PROCESS,
            process_key(event_id, event.replays),
            {"event_id": event_id, "replay": True},
            connection=event.connection,
        )
    return True


def now() -> datetime:
    return datetime.now(UTC)
