"""The scheduler: APScheduler fires, the hub enqueues, workers run.

Any number of scheduler processes may run. Each tick, a process tries to take (or renew) the
leader lease row; only the leader enqueues. Each schedule's run slot becomes a job whose
idempotency key names the slot, so even two leaders in a lease hand-over cannot run a slot twice.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import update
from sqlmodel import Session, col

from hub.db import insert_ignore
from hub.reconcile.models import SchedulerLease
from hub.runtime import Runtime
from hub.types import utcnow

log = structlog.get_logger("hub.scheduler")

LEASE_NAME = "scheduler"


def try_lead(session: Session, owner: str, ttl: float) -> bool:
    """Take the lease if it is free or expired, or renew it if `owner` holds it."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    if insert_ignore(
        session,
        SchedulerLease,
        {"name": LEASE_NAME, "owner": owner, "expires_at": expires},
        ["name"],
    ):
        return True
    result = session.execute(
        update(SchedulerLease)
        .where(
            col(SchedulerLease.name) == LEASE_NAME,
            (col(SchedulerLease.owner) == owner) | (col(SchedulerLease.expires_at) < now),
        )
        .values(owner=owner, expires_at=expires)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def give_up(session: Session, owner: str) -> None:
    session.execute(
        update(SchedulerLease)
        .where(col(SchedulerLease.name) == LEASE_NAME, col(SchedulerLease.owner) == owner)
        .values(expires_at=utcnow())
    )


EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def interval(seconds: float) -> IntervalTrigger:
    """An interval trigger aligned to fixed wall-clock slots, the same in every process."""
    return IntervalTrigger(seconds=seconds, start_date=EPOCH, timezone=UTC)


def slot_of(trigger: CronTrigger | IntervalTrigger, now: datetime) -> datetime:
    """The run slot `now` belongs to: the latest fire time at or before it. Every process
    computes the same slot for the same firing, which is what makes the slot key unique."""
    if isinstance(trigger, IntervalTrigger):
        step = trigger.interval.total_seconds()
        elapsed = (now - EPOCH).total_seconds()
        return EPOCH + timedelta(seconds=(elapsed // step) * step)
    latest: datetime | None = None
    fire = trigger.get_next_fire_time(None, now - timedelta(days=1))
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return (latest or now).astimezone(UTC)


Enqueue = Callable[[Session, datetime], None]


@dataclass(frozen=True, slots=True)
class Schedule:
    """A named job that runs on `trigger`; `enqueue(session, slot)` queues that slot's run."""

    name: str
    trigger: CronTrigger | IntervalTrigger
    enqueue: Enqueue


class Scheduler:
    """APScheduler in a background thread; every firing goes through the leader lease."""

    def __init__(
        self, runtime: Runtime, schedules: list[Schedule] | None = None, *, lease_ttl: float = 30
    ) -> None:
        from hub.reconcile.schedules import default_schedules

        self.runtime = runtime
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_ttl = lease_ttl
        self.schedules = schedules if schedules is not None else default_schedules(runtime)
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._lock = threading.Lock()

    def is_leader(self) -> bool:
        with self.runtime.db.transaction() as session:
            return try_lead(session, self.owner, self.lease_ttl)

    def fire(self, schedule: Schedule, slot: datetime) -> None:
        """Enqueue `schedule`'s run for `slot` if this process leads."""
        with self._lock, self.runtime.db.transaction() as session:
            if not try_lead(session, self.owner, self.lease_ttl):
                return
            schedule.enqueue(session, slot)
        log.info("hub.scheduler.fired", schedule=schedule.name, slot=slot.isoformat())

    def _job(self, schedule: Schedule) -> Callable[[], None]:
        def run() -> None:
            try:
                self.fire(schedule, slot_of(schedule.trigger, utcnow()))
            except Exception:
                log.exception("hub.scheduler.fire_failed", schedule=schedule.name)

        return run

    def start(self) -> None:
        for schedule in self.schedules:
            self._scheduler.add_job(
                self._job(schedule),
                schedule.trigger,
                id=schedule.name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=3600,
            )
        self._scheduler.start()
        log.info(
            "hub.scheduler.started", owner=self.owner, schedules=[s.name for s in self.schedules]
        )

    def stop(self) -> None:
        self._scheduler.shutdown(wait=True)
        with self.runtime.db.transaction() as session:
            give_up(session, self.owner)
        log.info("hub.scheduler.stopped", owner=self.owner)
