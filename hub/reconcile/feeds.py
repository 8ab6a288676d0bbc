"""Reading providers' event feeds (Capability.EVENT_FEED): a lost webhook still moves the order.

Each run reads every feed from its stored cursor, queues a status poll of every hub order the
events name, and keeps the cursor the feed gave for the next page, page by page. The provider
is called between transactions, never inside one; a run cut short re-reads at most one page,
whose polls are queued once per run.
"""

from __future__ import annotations

import structlog

from connectors.base import Capability, EventFeed
from hub.fulfilment.service import POLL
from hub.jobs.context import JobContext
from hub.jobs.priorities import Priority
from hub.jobs.registry import Periodic, job_handler
from hub.jobs.schedules import interval
from hub.orders import repository as orders_repo
from hub.reconcile import repository as repo

log = structlog.get_logger("hub.reconcile")

READ_FEEDS = "reconcile.provider_feeds"
# Pages one run reads per provider: what is left waits for the next run.
MAX_PAGES = 50


@job_handler(
    READ_FEEDS,
    priority=Priority.BULK,
    periodic=Periodic(
        "read-provider-feeds", lambda settings: interval(settings.maintenance_interval_seconds)
    ),
)
def read_provider_feeds(ctx: JobContext) -> None:
    runtime = ctx.runtime
    slot = ctx.job.idempotency_key
    for name, provider in sorted(runtime.connectors.providers.items()):
        if Capability.EVENT_FEED not in provider.capabilities:
            continue
        if not isinstance(provider, EventFeed):
            continue
        with runtime.db.reader() as session:
            cursor = repo.feed_cursor(session, name)
        polled = 0
        for _ in range(MAX_PAGES):
            page = provider.read_events(cursor)
            with runtime.db.transaction() as session:
                for ref in page.provider_order_ids:
                    order = orders_repo.by_fulfilment_ref(session, name, ref)
                    if order is not None and POLL.enqueue(session, order.id, None, "feed", slot):
                        polled += 1
                if page.next_cursor:
                    repo.save_feed_cursor(session, name, page.next_cursor)
            if not page.next_cursor or not page.provider_order_ids:
                break
            cursor = page.next_cursor
        log.info("hub.reconcile.feed_read", provider=name, polled=polled)
    with runtime.db.transaction() as session:
        ctx.finish(session)
