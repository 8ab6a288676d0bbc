"""Admin endpoints for jobs: see what is queued, running, done or dead, and retry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from connectors.registry import resolve
from hub import audit
from hub.deps import ActorDep, ReaderDep, RowCursor, RowId, RuntimeDep, require_admin
from hub.errors import ApiError
from hub.jobs import queue
from hub.jobs.models import JobState

router = APIRouter(prefix="/admin/jobs", tags=["jobs"], dependencies=[Depends(require_admin)])


class AttemptPublic(BaseModel):
    attempt: int
    worker: str
    outcome: str
    status_code: int | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class JobPublic(BaseModel):
    id: int
    kind: str
    state: str
    priority: int  # lower runs sooner
    attempts: int
    # 0: retried until HUB_JOB_RETRY_WINDOW_SECONDS have passed since the first attempt; else
    # also given up after this many attempts (HUB_JOB_MAX_ATTEMPTS, fixed at the first run)
    max_attempts: int
    last_error: str | None
    order_id: str | None
    connection: str | None = None
    payload: dict[str, Any]
    run_at: datetime
    created_at: datetime
    finished_at: datetime | None


class JobDetail(JobPublic):
    history: list[AttemptPublic]


class JobPage(BaseModel):
    data: list[JobPublic]
    next_cursor: int | None


class RetriedJobs(BaseModel):
    retried: list[int]


@router.get("", response_model=JobPage)
def list_jobs(
    session: ReaderDep,
    state: JobState | None = None,
    kind: str | None = None,
    order_id: str | None = None,
    connection: str | None = None,
    cursor: RowCursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JobPage:
    """Jobs oldest first; `connection` ("depop/shop-b", or a system for its default) keeps
    those working for one connection."""
    rows = queue.list_jobs(
        session,
        state=state.value if state else None,
        kind=kind,
        order_id=order_id,
        connection=resolve(connection) if connection else None,
        after_id=cursor,
        limit=limit + 1,
    )
    page = rows[:limit]
    return JobPage(
        data=[JobPublic.model_validate(j, from_attributes=True) for j in page],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )


@router.get("/{job_id}", response_model=JobDetail, responses={404: {"description": "No such job"}})
def get_job(job_id: RowId, session: ReaderDep) -> JobDetail:
    job = queue.get(session, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"job {job_id} not found")
    history = [
        AttemptPublic.model_validate(a, from_attributes=True)
        for a in queue.attempts_of(session, job_id)
    ]
    if job.state == JobState.RUNNING and job.claimed_at is not None:
        # Attempts are written when they end; the one in progress is on the job itself.
        history.append(
            AttemptPublic(
                attempt=job.attempts,
                worker=job.lease_owner or "",
                outcome="running",
                status_code=None,
                error=None,
                started_at=job.claimed_at,
                finished_at=None,
            )
        )
    return JobDetail(
        **JobPublic.model_validate(job, from_attributes=True).model_dump(), history=history
    )


@router.post(
    "/{job_id}/retry", response_model=JobPublic, responses={404: {"description": "No such job"}}
)
def retry_job(job_id: RowId, runtime: RuntimeDep, actor: ActorDep) -> JobPublic:
    """Run a dead job again now, with a fresh retry window (and allowance of attempts)."""
    with runtime.db.transaction() as session:
        job = queue.requeue(session, job_id, allowance=runtime.settings.job_max_attempts)
        if job is None:
            raise ApiError(404, "job_not_found", f"job {job_id} not found")
        audit.record(
            session, actor, "job.retry", f"job {job_id} ({job.kind})", order_id=job.order_id
        )
        return JobPublic.model_validate(job, from_attributes=True)


@router.post("/retry-dead", response_model=RetriedJobs)
def retry_dead(runtime: RuntimeDep, actor: ActorDep, kind: str) -> RetriedJobs:
    """Retry every dead job of `kind` (after the cause was fixed)."""
    with runtime.db.transaction() as session:
        ids = [
            j.id
            for j in queue.list_jobs(session, state=JobState.DEAD.value, kind=kind, limit=10_000)
            if j.id is not None
        ]
        for job_id in ids:
            queue.requeue(session, job_id, allowance=runtime.settings.job_max_attempts)
        audit.record(session, actor, "job.retry_dead", kind, detail={"jobs": len(ids)})
        return RetriedJobs(retried=ids)
