"""Forgetting finished work: done jobs and their attempts older than HUB_RETENTION_JOBS_DAYS
are deleted by a scheduled job of the lowest band, in small batches (each its own short
transaction), so neither the tables nor anything that reads them grows without bound. Dead
jobs are kept: they wait for an operator."""

from __future__ import annotations

from datetime import timedelta

import structlog

from hub.jobs import queue
from hub.jobs.context import JobContext
from hub.jobs.priorities import Priority
from hub.jobs.registry import Periodic, job_handler
from hub.jobs.schedules import interval
from hub.types import utcnow

log = structlog.get_logger("hub.jobs")

JOB_RETENTION = "maintenance.job_retention"
BATCH = 500
# One run deletes at most this many batches; the next run carries on, so a first run over a
# long history does not hold a worker for hours.
MAX_BATCHES = 200


@job_handler(
    JOB_RETENTION,
    priority=Priority.BULK,
    periodic=Periodic(
        JOB_RETENTION, lambda settings: interval(settings.retention_interval_seconds)
    ),
)
def forget_done_jobs(ctx: JobContext) -> None:
    runtime = ctx.runtime
    cutoff = utcnow() - timedelta(days=runtime.settings.retention_jobs_days)
    deleted = 0
    for _ in range(MAX_BATCHES):
        with runtime.db.transaction() as session:
            queue.extend_lease(session, ctx.job, runtime.settings.job_lease_seconds)
            batch = queue.delete_done_before(session, cutoff, BATCH)
        deleted += batch
        if batch < BATCH:
            break
    log.info("hub.jobs.forgotten", jobs=deleted, before=cutoff.isoformat())
