"""Stock jobs: show every channel that lists a SKU how many units it may sell."""

from __future__ import annotations

import structlog

from connectors.base import Capability, ListingNotFound, Permanent, Retriable
from connectors.registry import resolve
from hub.inventory import repository as repo
from hub.inventory.service import LISTING_SYNC
from hub.jobs.context import JobContext
from hub.jobs.priorities import Priority
from hub.jobs.registry import job_handler

log = structlog.get_logger("hub.inventory")


@job_handler(LISTING_SYNC, priority=Priority.BULK)
def sync_listing(ctx: JobContext) -> None:
    """Tell each channel connection (but the one the sale came from, and those that opted
    out of the SKU) how many units it may sell: one SKU's stock is shared by every connection
    that lists it, so a sale on one Depop shop updates the other shop and the other channels.

    Every channel is tried before a failure is raised, so one channel's outage does not hold
    the others back; a retry repeats only idempotent quantity updates.
    """
    runtime = ctx.runtime
    sku = str(ctx.job.payload["sku"])
    skip = ctx.job.payload.get("skip_channel")
    skip = resolve(str(skip)) if skip else None
    with runtime.db.read_one() as connection:
        view = repo.listing_view(connection, sku)
    if view is None:
        return
    # Connections that do not sell this SKU (`opted_out`) are left alone; the stock stays shared.
    available, opted_out = view
    retry: list[str] = []
    failed: list[str] = []
    for name in runtime.connectors.channel_keys():
        channel = runtime.connectors.channels.get(name)
        if channel is None or name == skip or name in opted_out:
            continue
        if Capability.LISTINGS not in channel.capabilities:
            continue
        try:
            channel.update_listing(sku, available)
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
