"""The scheduler: APScheduler fires, the hub enqueues, workers run.

Any number of scheduler processes may run. Each holds a heartbeat that takes (or renews) the
leader lease row; only the leader enqueues. Each schedule's run slot becomes a job whose
idempotency key names the slot, so even two processes that both believe they lead (a lease
expiring mid-firing) cannot queue a slot twice.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import Session

from hub.reconcile import repository as repo
from hub.runtime import Runtime
from hub.types import utcnow

log = structlog.get_logger("hub.scheduler")

LEASE_NAME = "scheduler"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# How far back slot_of looks for a cron trigger's last firing before giving up: a cron that
# has not fired in this long (30 February) has no slot.
_LONGEST_LOOKBACK = timedelta(days=366 * 8)
_MICROSECOND = timedelta(microseconds=1)

Trigger: TypeAlias = CronTrigger | IntervalTrigger


# Crontab's day-of-week numbers: 0 and 7 are Sunday.
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron(expression: str, timezone: str = "UTC") -> CronTrigger:
    """A trigger from a standard five-field crontab line.

    Not `CronTrigger.from_crontab`: APScheduler 3 reads a numeric day of week as 0 = Monday
    where crontab means 0 = Sunday (its issue 286, fixed only in 4.x), so `0 3 * * 1` would run
    on Tuesdays. The day-of-week field is spelled out as day names first, which both read alike.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a crontab line has 5 fields, not {len(fields)}: {expression!r}")
    minute, hour, day, month, weekdays = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_day_names(weekdays),
        timezone=timezone,
    )


def _day_names(field: str) -> str:
    if field == "*":
        return "*"
    names: list[str] = []
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            low, _, high = span.partition("-")
            first, last = _day_number(low), _day_number(high)
        else:
            first = _day_number(span)
            last = 6 if step else first
        if first > last:
            raise ValueError(f"day-of-week range {part!r} runs backwards")
        for number in range(first, last + 1, int(step) if step else 1):
            if _CRON_DAYS[number] not in names:
                names.append(_CRON_DAYS[number])
    return ",".join(names)


def _day_number(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token[:3] in _CRON_DAYS:
        return _CRON_DAYS.index(token[:3])
    raise ValueError(f"not a day of the week: {token!r}")


def interval(seconds: float) -> IntervalTrigger:
    """An interval trigger aligned to fixed wall-clock slots, the same in every process."""
    return IntervalTrigger(seconds=seconds, start_date=EPOCH, timezone=UTC)


def slot_of(trigger: Trigger, now: datetime) -> datetime:
    """The run slot `now` belongs to: the trigger's latest fire time at or before `now`, in UTC.

    A firing computes it from its own clock just after the fire time, so every process that
    fires for the same moment names the same slot, which is what makes the slot key unique.
    Raises ValueError when the trigger has not fired by `now`.
    """
    if now.tzinfo is None:
        raise ValueError("slot_of needs an aware datetime")
    if isinstance(trigger, IntervalTrigger):
        start: datetime = trigger.start_date
        if now < start:
            raise ValueError(f"the interval starts at {start.isoformat()}, after {now}")
        # Whole microseconds, not float seconds, so the same slot comes out in every process.
        step: int = trigger.interval // _MICROSECOND
        elapsed = (now - start) // _MICROSECOND
        return (start + _MICROSECOND * (elapsed - elapsed % step)).astimezone(UTC)
    # Look back over a doubling span until it holds a fire time, then walk forward to the last
    # one not after `now`: a few steps for any cron, whether it fires each minute or yearly.
    span = timedelta(minutes=1)
    while span <= _LONGEST_LOOKBACK:
        fire: datetime | None = trigger.get_next_fire_time(None, now - span)
        if fire is None:
            break  # it never fires from `now - span` on, so not before `now` either
        if fire <= now:
            while True:
                following: datetime | None = trigger.get_next_fire_time(fire, fire + _MICROSECOND)
                if following is None or following > now:
                    return fire.astimezone(UTC)
                fire = following
        span *= 2
    raise ValueError(f"the trigger {trigger} has not fired before {now.isoformat()}")


Enqueue = Callable[[Session, datetime], None]


@dataclass(frozen=True, slots=True)
class Schedule:
    """A named job that runs on `trigger`; `enqueue(session, slot)` queues that slot's run."""

    name: str
    trigger: Trigger
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
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._lock = threading.Lock()
        self._leading = False

    def try_lead(self) -> bool:
        """Take the lease if it is free or expired, renew it if this process holds it; True
        when this process leads now."""
        with self.runtime.db.transaction() as session:
            leading = repo.try_lead(session, LEASE_NAME, self.owner, self.lease_ttl)
        self._note_leadership(leading)
        return leading

    def fire(self, schedule: Schedule, slot: datetime) -> bool:
        """Enqueue `schedule`'s run for `slot` if this process leads; True when it led.

        The lease check and the enqueue share one transaction, and the slot's key makes the
        enqueue a no-op when the slot was queued already (by this or a former leader)."""
        with self._lock, self.runtime.db.transaction() as session:
            leading = repo.try_lead(session, LEASE_NAME, self.owner, self.lease_ttl)
            if leading:
                schedule.enqueue(session, slot)
        self._note_leadership(leading)
        if leading:
            log.info("hub.scheduler.fired", schedule=schedule.name, slot=slot.isoformat())
        return leading

    def _note_leadership(self, leading: bool) -> None:
        if leading != self._leading:
            self._leading = leading
            log.info(
                "hub.scheduler.leader" if leading else "hub.scheduler.follower", owner=self.owner
            )

    def _job(self, schedule: Schedule) -> Callable[[], None]:
        def run() -> None:
            try:
                self.fire(schedule, slot_of(schedule.trigger, utcnow()))
            except Exception:
                log.exception("hub.scheduler.fire_failed", schedule=schedule.name)

        return run

    def _heartbeat(self) -> None:
        try:
            self.try_lead()
        except Exception:
            log.exception("hub.scheduler.heartbeat_failed")

    def start(self) -> None:
        """Start firing in a background thread; the lease is tried at once, then renewed at a
        third of its lifetime so a live leader keeps it and a dead one loses it."""
        self._heartbeat()
        self._scheduler.add_job(
            self._heartbeat,
            IntervalTrigger(seconds=max(self.lease_ttl / 3, 0.1), timezone=UTC),
            id="lease-heartbeat",
            coalesce=True,
            max_instances=1,
        )
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
        """Stop firing, wait for a firing in progress, and hand the lease back at once."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        with self.runtime.db.transaction() as session:
            repo.give_up(session, LEASE_NAME, self.owner)
        self._leading = False
        log.info("hub.scheduler.stopped", owner=self.owner)
