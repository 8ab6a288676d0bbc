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
from sqlmodel import Session

from connectors.base import MalformedPayload, WebhookIdentity, WebhookReceiver
from hub.inbox import repository as repo
from hub.inbox.models import InboundStatus
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


def store(
    runtime: Runtime,
    channel: str,
    receiver: WebhookReceiver,
    headers: Mapping[str, str],
    body: bytes,
) -> Receipt:
    """Store an authenticated webhook and queue it; a body the connector cannot read is kept
    as failed (visible, replayable once the connector learns to read it)."""
    error: str | None = None
    try:
        identity = receiver.identify(headers, body)
    except MalformedPayload as exc:
        identity = WebhookIdentity("sha256:" + hashlib.sha256(body).hexdigest(), "unreadable")
        error = f"unreadable payload: {exc}"
    except Exception as exc:
        # The connector's reader broke on this body (a JSON nested too deep for the parser):
        # still an authenticated event, so it is kept, failed, for a replay after the fix.
        log.warning("hub.inbox.identify_crashed", channel=channel, error=type(exc).__name__)
        identity = WebhookIdentity("sha256:" + hashlib.sha256(body).hexdigest(), "unreadable")
        error = f"unreadable payload: {type(exc).__name__}: {exc}"

    def insert_and_queue(session: Session) -> Receipt:
        event_id = repo.insert(
            session,
            channel=channel,
            external_id=identity.external_id,
            event_type=identity.event_type,
            body=body,
            status=InboundStatus.FAILED if error else InboundStatus.PENDING,
            error=error,
        )
        if event_id is None:
            existing = repo.id_by_external_id(session, channel, identity.external_id)
            assert existing is not None
            return Receipt("duplicate", existing)
        if error is None:
            queue.enqueue(session, PROCESS, process_key(event_id), {"event_id": event_id})
        return Receipt("accepted", event_id)

    # Webhooks arriving together share a commit; each answer still waits for its own.
    receipt = runtime.db.run_batched(insert_and_queue)
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
        )
    return True


def now() -> datetime:
    return datetime.now(UTC)
