"""Stock jobs: show every channel a SKU's available quantity, and hand units that came free to
the paid orders waiting for them."""

from __future__ import annotations

import structlog
from sqlmodel import Session

from connectors.base import FlowNotSupported, ListingNotFound, Permanent, Retriable
from hub.inventory import repository as repo
from hub.inventory.service import (
    FILL_WAITING,
    LISTING_SYNC,
    WAITING_STATE,
    request_listing_sync,
)
from hub.jobs.context import JobContext
from hub.jobs.registry import job_handler
from hub.orders import repository as orders_repo
from hub.orders import service as orders
from hub.orders.flows import flow_for
from hub.orders.models import Order

log = structlog.get_logger("hub.inventory")

PAGE = 200


@job_handler(LISTING_SYNC)
def sync_listing(ctx: JobContext) -> None:
    """Tell each channel (but the one the sale came from) how many units it may sell.

    Every channel is tried before a failure is raised, so one channel's outage does not hold
    the others back; a retry repeats only idempotent quantity updates.
    """
    runtime = ctx.runtime
    sku = str(ctx.job.payload["sku"])
    skip = ctx.job.payload.get("skip_channel")
    with runtime.db.reader() as session:
        item = repo.get(session, sku)
        if item is None:
            return
        available = item.available
    retry: list[str] = []
    failed: list[str] = []
    for name, channel in runtime.connectors.channels.items():
        if name == skip:
            continue
        try:
            channel.update_listing(sku, available)
        except FlowNotSupported:
            continue
        except ListingNotFound:
            log.info("hub.inventory.not_listed", channel=name, sku=sku)
            continue
        except Permanent as exc:
            failed.append(f"{name}: {exc.reason}")
        except Retriable as exc:
            retry.append(f"{name}: {exc.reason}")
    if retry:
        raise Retriable("; ".join(retry + failed))
    if failed:
        raise Permanent("; ".join(failed))
    log.info("hub.inventory.listing_synced", sku=sku, available=available)


@job_handler(FILL_WAITING)
def fill_waiting(ctx: JobContext) -> None:
    """Offer the free units of a SKU to the orders waiting for it, oldest first.

    A waiting order is one its channel already sold and charged for (Depop) that found no
    stock; taking it forward reserves its units and confirms it, so it is routed and shipped.
    """
    runtime = ctx.runtime
    sku = str(ctx.job.payload["sku"])
    source = f"job:{ctx.job.id}"
    with runtime.db.transaction() as session:
        for order in _waiting(session, sku):
            item = repo.get(session, sku)
            if item is None or item.available <= 0:
                break
            flow = flow_for(order.channel)
            if flow.calls_accept or flow.rejects_unfulfillable:
                continue  # such a channel's order is rejected, never kept waiting
            orders.advance(session, order, source, flow, runtime.settings.untracked_skus)
            if order.status == WAITING_STATE:
                continue
            log.info("hub.inventory.filled", sku=sku, order_id=order.id)
            # The sale is old news at its channel, whose listing the hub has changed since
            # (a restock relists it): unlike a fresh sale, that channel is told too.
            lines = orders_repo.lines(session, order.id)
            for line_sku in sorted({line.sku for line in lines if line.sku}):
                request_listing_sync(session, line_sku, None)
        ctx.finish(session)


def _waiting(session: Session, sku: str) -> list[Order]:
    """Flagged acknowledged orders with a line of `sku`, oldest first."""
    found: list[Order] = []
    cursor: str | None = None
    while True:
        page = orders_repo.search(
            session,
            status=WAITING_STATE,
            needs_attention=True,
            sku=sku,
            after_id=cursor,
            limit=PAGE,
        )
        found.extend(page)
        if len(page) < PAGE:
            return found[::-1]
        cursor = page[-1].id
