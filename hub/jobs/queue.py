"""The job queue's SQL: enqueue once per idempotency key, claim under a lease, finish fenced by
that lease, retry with capped exponential backoff and full jitter, and bury the hopeless."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlmodel import Session, col

from hub.db import insert_ignore
from hub.jobs.models import Job, JobAttempt, JobState
from hub.types import utcnow

ERROR_LIMIT = 2000
# A job enqueued without its own limit takes the worker's HUB_JOB_MAX_ATTEMPTS when first claimed.
CONFIGURED_MAX_ATTEMPTS = 0


class LeaseLost(Exception):
    """The job's lease expired and another worker may have it: this worker's result is void."""


def enqueue(
    session: Session,
    kind: str,
    key: str,
    payload: dict[str, Any] | None = None,
    *,
    order_id: str | None = None,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
) -> bool:
    """Queue a job unless one with `key` exists; True when this call created it. Without
    `max_attempts` the job gets the configured HUB_JOB_MAX_ATTEMPTS when it first runs."""
    values = {
        "kind": kind,
        "idempotency_key": key,
        "payload": payload or {},
        "state": JobState.QUEUED.value,
        "attempts": 0,
        "max_attempts": CONFIGURED_MAX_ATTEMPTS if max_attempts is None else max_attempts,
        "run_at": run_at or utcnow(),
        "order_id": order_id,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    return insert_ignore(session, Job, values, ["idempotency_key"])


def enqueue_coalesced(
    session: Session,
    kind: str,
    keyed: Sequence[tuple[str, dict[str, Any]]],
    *,
    merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Queue one job of `kind` per (key, payload), coalesced with any job of that key still
    waiting: the waiting job keeps its place and its payload becomes `merge(its payload,
    payload)` (without `merge`, it stays). A job of that key that has started gives the key up
    to a new job, so a change made after it read its inputs is not lost.

    A job that reads its inputs when it runs (a SKU's available units, say) covers every change
    made before it starts, so one waiting job per key is enough however many changes arrive.
    Finding the waiting job is one unique-index look-up per key, and it is read locked on
    Postgres so no worker claims it before this transaction ends.
    """
    found = _jobs_by_keys(session, [key for key, _ in keyed])
    for key, payload in keyed:
        job = found.get(key)
        while True:
            if job is not None and job.state == JobState.QUEUED:
                merged = merge(job.payload, payload) if merge is not None else job.payload
                if merged != job.payload:
                    job.payload = merged
                    session.add(job)
                break
            if job is not None:
                _retire_key(session, job)
            if enqueue(session, kind, key, payload):
                break
            # Another transaction queued it first: coalesce with that one.
            job = _jobs_by_keys(session, [key]).get(key)


_KEYS_PER_STATEMENT = 1000  # well inside every backend's limit on bound parameters


def _jobs_by_keys(session: Session, keys: Sequence[str]) -> dict[str, Job]:
    """The jobs holding these idempotency keys, freshly read and locked on Postgres, so no
    worker claims one (claims skip locked rows) before this transaction ends."""
    found: dict[str, Job] = {}
    for start in range(0, len(keys), _KEYS_PER_STATEMENT):
        query = (
            select(Job)
            .where(col(Job.idempotency_key).in_(keys[start : start + _KEYS_PER_STATEMENT]))
            .order_by(col(Job.idempotency_key))
            .execution_options(populate_existing=True)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        found.update({job.idempotency_key: job for job in session.scalars(query)})
    return found


def _retire_key(session: Session, job: Job) -> None:
    """Free `job`'s idempotency key for the next job of its kind: suffix it with the job's id."""
    session.execute(
        update(Job)
        .where(col(Job.id) == job.id)
        .values(idempotency_key=f"{job.idempotency_key}:{job.id}")
        .execution_options(synchronize_session=False)
    )


def claim(
    session: Session,
    worker: str,
    lease_seconds: float,
    limit: int = 1,
    *,
    max_attempts: int | None = None,
) -> list[Job]:
    """Take up to `limit` due jobs (or jobs whose lease expired) for `worker`; `max_attempts`
    is the configured limit for jobs enqueued without their own.

    Postgres skips rows other workers hold locked, so any number of workers claim without
    blocking each other; the conditional UPDATE makes the claim safe on SQLite too. The attempt
    of a worker whose lease expired is closed as `lease_expired`: that worker is gone, or its
    late result will be refused.
    """
    now = utcnow()
    due = or_(
        and_(col(Job.state) == JobState.QUEUED, col(Job.run_at) <= now),
        and_(col(Job.state) == JobState.RUNNING, col(Job.lease_expires_at) < now),
    )
    query = select(col(Job.id), col(Job.state)).where(due).order_by(col(Job.run_at)).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = [(row[0], row[1]) for row in session.execute(query)]
    claimed: list[Job] = []
    expires = now + timedelta(seconds=lease_seconds)
    values: dict[str, Any] = {
        "state": JobState.RUNNING.value,
        "lease_owner": worker,
        "lease_expires_at": expires,
        "attempts": Job.attempts + 1,
        "updated_at": now,
    }
    if max_attempts is not None:
        values["max_attempts"] = case(
            (col(Job.max_attempts) == CONFIGURED_MAX_ATTEMPTS, max_attempts),
            else_=col(Job.max_attempts),
        )
    for job_id, state in rows:
        result = session.execute(update(Job).where(col(Job.id) == job_id, due).values(**values))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue
        job = session.get(Job, job_id, populate_existing=True)
        assert job is not None
        if state == JobState.RUNNING:
            session.execute(
                update(JobAttempt)
                .where(col(JobAttempt.job_id) == job_id, col(JobAttempt.outcome) == "running")
                .values(
                    outcome="lease_expired",
                    error=f"lease expired; claimed again by {worker}",
                    finished_at=now,
                )
            )
        session.add(JobAttempt(job_id=job_id, attempt=job.attempts, worker=worker))
        claimed.append(job)
    return claimed


def _fence(session: Session, job: Job, values: dict[str, Any]) -> None:
    """Update `job` only while `job.lease_owner` still holds it; else `LeaseLost`."""
    result = session.execute(
        update(Job)
        .where(
            col(Job.id) == job.id,
            col(Job.state) == JobState.RUNNING,
            col(Job.lease_owner) == job.lease_owner,
            col(Job.attempts) == job.attempts,
        )
        .values(updated_at=utcnow(), **values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"job {job.id} is no longer held by {job.lease_owner}")


def _close_attempt(
    session: Session, job: Job, outcome: str, error: str | None, status_code: int | None
) -> None:
    session.execute(
        update(JobAttempt)
        .where(col(JobAttempt.job_id) == job.id, col(JobAttempt.attempt) == job.attempts)
        .values(
            outcome=outcome,
            error=error[:ERROR_LIMIT] if error else None,
            status_code=status_code,
            finished_at=utcnow(),
        )
    )


def complete(session: Session, job: Job) -> None:
    """Mark `job` done; call it in the same transaction as the job's effects."""
    _fence(
        session,
        job,
        {
            "state": JobState.DONE.value,
            "finished_at": utcnow(),
            "lease_owner": None,
            "lease_expires_at": None,
        },
    )
    _close_attempt(session, job, "ok", None, None)


def keep_payload(session: Session, job: Job, payload: dict[str, Any]) -> None:
    """Replace the payload of a job this worker holds (`LeaseLost` if it is gone), so the next
    attempt starts from what this one learnt (an asynchronous call's `resume`)."""
    _fence(session, job, {"payload": payload})
    job.payload = payload


def extend_lease(session: Session, job: Job, lease_seconds: float) -> None:
    """Keep a long job's lease for another `lease_seconds` (`LeaseLost` if it is gone), so no
    other worker claims it while it is still making progress."""
    _fence(session, job, {"lease_expires_at": utcnow() + timedelta(seconds=lease_seconds)})


def backoff(attempt: int, base: float, cap: float) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


def retry(
    session: Session,
    job: Job,
    error: str,
    *,
    delay: float,
    status_code: int | None = None,
) -> None:
    """Put `job` back in the queue to run after `delay` seconds."""
    _fence(
        session,
        job,
        {
            "state": JobState.QUEUED.value,
            "run_at": utcnow() + timedelta(seconds=delay),
            "last_error": error[:ERROR_LIMIT],
            "lease_owner": None,
            "lease_expires_at": None,
        },
    )
    _close_attempt(session, job, "retry", error, status_code)


def bury(session: Session, job: Job, error: str, *, status_code: int | None = None) -> None:
    """Mark `job` dead: visible in the admin API and retryable there, never run by itself."""
    _fence(
        session,
        job,
        {
            "state": JobState.DEAD.value,
            "last_error": error[:ERROR_LIMIT],
            "finished_at": utcnow(),
            "lease_owner": None,
            "lease_expires_at": None,
        },
    )
    _close_attempt(session, job, "dead", error, status_code)


def release(session: Session, job: Job) -> None:
    """Hand a claimed job back untouched (a draining worker), without spending an attempt."""
    _fence(
        session,
        job,
        {
            "state": JobState.QUEUED.value,
            "lease_owner": None,
            "lease_expires_at": None,
            "attempts": job.attempts - 1,
        },
    )
    session.execute(
        JobAttempt.__table__.delete().where(  # type: ignore[attr-defined]
            and_(JobAttempt.job_id == job.id, JobAttempt.attempt == job.attempts)  # type: ignore[arg-type]
        )
    )


def requeue(session: Session, job_id: int, *, allowance: int | None = None) -> Job | None:
    """An operator's retry of a dead (or done) job: run it again now, with `allowance` more
    attempts (default: as many as it had)."""
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        return None
    if job.state in (JobState.QUEUED, JobState.RUNNING):
        return job
    job.state = JobState.QUEUED.value
    job.run_at = utcnow()
    job.max_attempts = job.attempts + max(1, allowance or job.max_attempts)
    job.finished_at = None
    job.updated_at = utcnow()
    session.add(job)
    return job


def list_jobs(
    session: Session,
    *,
    state: str | None = None,
    kind: str | None = None,
    order_id: str | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> Sequence[Job]:
    query = select(Job)
    if state:
        query = query.where(col(Job.state) == state)
    if kind:
        query = query.where(col(Job.kind) == kind)
    if order_id:
        query = query.where(col(Job.order_id) == order_id)
    if after_id is not None:
        query = query.where(col(Job.id) > after_id)
    return session.scalars(query.order_by(col(Job.id)).limit(limit)).all()


def attempts_of(session: Session, job_id: int) -> Sequence[JobAttempt]:
    return session.scalars(
        select(JobAttempt).where(col(JobAttempt.job_id) == job_id).order_by(col(JobAttempt.id))
    ).all()


def counts_by_kind_and_state(session: Session) -> list[tuple[str, str, int]]:
    rows = session.execute(
        select(col(Job.kind), col(Job.state), func.count()).group_by(col(Job.kind), col(Job.state))
    ).all()
    return [(str(k), str(s), int(n)) for k, s, n in rows]


def get(session: Session, job_id: int) -> Job | None:
    return session.get(Job, job_id, populate_existing=True)


def oldest_due_by_kind(session: Session) -> list[tuple[str, float]]:
    """For each kind with due jobs waiting, how many seconds the longest-waiting one has waited."""
    now = utcnow()
    rows = session.execute(
        select(col(Job.kind), func.min(col(Job.run_at)))
        .where(col(Job.state) == JobState.QUEUED, col(Job.run_at) <= now)
        .group_by(col(Job.kind))
    ).all()
    return [(str(kind), max(0.0, (now - due).total_seconds())) for kind, due in rows]
