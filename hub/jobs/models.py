"""Durable jobs: every outbound call and every deferred step is one of these."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field, SQLModel

from hub.types import UTCDateTime, utcnow


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    # Partial indexes: the claim reads only queued jobs in (priority, run_at) order and the sweep
    # only running ones by lease expiry, so neither grows with the done jobs kept for history.
    __table_args__ = (
        Index(
            "ix_jobs_due",
            "priority",
            "run_at",
            postgresql_where=text("state = 'queued'"),
            sqlite_where=text("state = 'queued'"),
        ),
        Index(
            "ix_jobs_leases",
            "lease_expires_at",
            postgresql_where=text("state = 'running'"),
            sqlite_where=text("state = 'running'"),
        ),
        Index(
            "ix_jobs_done",
            "finished_at",
            postgresql_where=text("state = 'done'"),
            sqlite_where=text("state = 'done'"),
        ),
        Index("ix_jobs_kind_state", "kind", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    idempotency_key: str = Field(unique=True, max_length=255)
    state: str = Field(default=JobState.QUEUED, max_length=16)
    # Lower runs sooner: order-path kinds ahead of bulk work (`hub.jobs.registry.Priority`).
    priority: int = 50
    attempts: int = 0
    max_attempts: int = 0  # 0: no limit by count; the retry window decides
    run_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = None
    order_id: str | None = Field(default=None, index=True, max_length=40)
    # The connection the job works for: its order's, or the one whose webhook or
    # reconciliation run it processes; null for work of no one connection.
    connection: str | None = Field(default=None, max_length=97)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When the current attempt was claimed, and when the first one was: the retry window runs
    # from the latter.
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class JobAttempt(SQLModel, table=True):
    """One finished try of a job: who ran it, how it ended, and what the other side answered.
    Written once, when the try ends; the try in progress is on the job row itself."""

    __tablename__ = "job_attempts"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="jobs.id", index=True)
    attempt: int
    worker: str = Field(max_length=128)
    outcome: str = Field(default="running", max_length=16)
    status_code: int | None = None  # the external system's HTTP status, when it answered
    error: str | None = None  # truncated
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SchedulerLease(SQLModel, table=True):
    """One row per lease name; whoever holds an unexpired lease leads."""

    __tablename__ = "scheduler_leases"

    name: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=128)
    expires_at: datetime = Field(sa_type=UTCDateTime)
