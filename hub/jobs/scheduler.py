"""The scheduler: APScheduler fires, the hub enqueues, workers run.

Any number of scheduler processes may run. Each holds a heartbeat that takes (or renews) the
leader lease row; only the leader enqueues. Each schedule's run slot becomes a job whose
idempotency key names the slot, so even two processes that both believe they lead (a lease
expiring mid-firing) cannot queue a slot twice. The schedules come from the job registry, where
each domain declared them beside its handlers.

The lease is short (HUB_SCHEDULER_LEASE_SECONDS) and renewed at a third of it, so a follower
leads within about one lease of a leader's crash. A slot that passed while nobody led (a crash
just before 03:00, a restart) is not lost: every heartbeat of the leader queues each slot of
each schedule that lies within the catch-up window (HUB_SCHEDULER_CATCHUP_SECONDS) and that
this process has not queued yet, oldest first. Every missed slot runs, not only the latest: a
slot's job is what that slot owes (an hourly reconciliation's run records its own window and
watermark, a report names its hour), and a skipped one would leave a hole that no later run
says was there. The slot's key makes the enqueue a no-op for a slot already queued, by this
leader, a former one or a racing one, so each slot runs once.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from hub.jobs import leases
from hub.jobs.registry import all_schedules
from hub.jobs.schedules import Schedule, slot_of, slots_within
from hub.runtime import Runtime
from hub.types import utcnow

log = structlog.get_logger("hub.scheduler")

LEASE_NAME = "scheduler"
# The most slots of one schedule a heartbeat queues. The catch-up window bounds them already for
# the schedules the hub declares (a 15-minute interval over 6 hours is 24); this bounds a
# window configured far longer than a schedule's interval, keeping the newest slots.
MAX_CATCHUP_SLOTS = 500


class Scheduler:
    """APScheduler in a background thread; every firing goes through the leader lease."""

    def __init__(
        self,
        runtime: Runtime,
        schedules: list[Schedule] | None = None,
        *,
        lease_ttl: float | None = None,
        catchup: float | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.runtime = runtime
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        settings = runtime.settings
        self.lease_ttl = settings.scheduler_lease_seconds if lease_ttl is None else lease_ttl
        self.catchup = timedelta(
            seconds=settings.scheduler_catchup_seconds if catchup is None else catchup
        )
        # Given schedules are fixed; the registry's are read again at every heartbeat, so a
        # connection created or switched off gets or loses its schedules within seconds.
        self._fixed = schedules is not None
        self.schedules = schedules if schedules is not None else all_schedules(runtime)
        self._clock = clock
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._lock = threading.Lock()
        self._leading = False
        # The latest slot of each schedule a heartbeat of this process committed: the next
        # heartbeat queues only later ones.
        self._queued: dict[str, datetime] = {}

    def try_lead(self) -> bool:
        """Take the lease if it is free or expired, renew it if this process holds it; True
        when this process leads now."""
        with self.runtime.db.transaction() as session:
            leading = leases.try_lead(
                session, LEASE_NAME, self.owner, self.lease_ttl, now=self._clock()
            )
        self._note_leadership(leading)
        return leading

    def heartbeat(self) -> bool:
        """Take or renew the lease and, while leading, queue every slot of every schedule that
        lies within the catch-up window and is not known to be queued; True when leading."""
        self._follow_registry()
        with self._lock, self.runtime.db.transaction() as session:
            now = self._clock()
            leading = leases.try_lead(session, LEASE_NAME, self.owner, self.lease_ttl, now=now)
            due = self._due(now) if leading else []
            for schedule, slots in due:
                for slot in slots:
                    schedule.enqueue(session, slot)
        self._note_leadership(leading)
        for schedule, slots in due:
            self._queued[schedule.name] = slots[-1]
            log.info(
                "hub.scheduler.caught_up",
                schedule=schedule.name,
                slots=len(slots),
                first=slots[0].isoformat(),
                last=slots[-1].isoformat(),
            )
        return leading

    def _due(self, now: datetime) -> list[tuple[Schedule, list[datetime]]]:
        """Each schedule's slots within the window after the latest this process queued."""
        due: list[tuple[Schedule, list[datetime]]] = []
        for schedule in self.schedules:
            known = self._queued.get(schedule.name)
            slots = [
                slot
                for slot in slots_within(schedule.trigger, now - self.catchup, now)
                if known is None or slot > known
            ]
            if len(slots) > MAX_CATCHUP_SLOTS:
                log.warning(
                    "hub.scheduler.catchup_truncated",
                    schedule=schedule.name,
                    missed=len(slots),
                    queued=MAX_CATCHUP_SLOTS,
                )
                slots = slots[-MAX_CATCHUP_SLOTS:]
            if slots:
                due.append((schedule, slots))
        return due

    def fire(self, schedule: Schedule, slot: datetime) -> bool:
        """Enqueue `schedule`'s run for `slot` if this process leads; True when it led.

        The lease check and the enqueue share one transaction, and the slot's key makes the
        enqueue a no-op when the slot was queued already (by this or a former leader)."""
        with self._lock, self.runtime.db.transaction() as session:
            leading = leases.try_lead(
                session, LEASE_NAME, self.owner, self.lease_ttl, now=self._clock()
            )
            if leading:
                schedule.enqueue(session, slot)
        self._note_leadership(leading)
        # The slot is not noted as queued: a firing that took the lease over has not caught up
        # the older slots, and the next heartbeat would skip them. That heartbeat queues this
        # slot again, a no-op under its key.
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
                self.fire(schedule, slot_of(schedule.trigger, self._clock()))
            except Exception:
                log.exception("hub.scheduler.fire_failed", schedule=schedule.name)

        return run

    def _heartbeat(self) -> None:
        try:
            self.heartbeat()
        except Exception:
            log.exception("hub.scheduler.heartbeat_failed")

    def _follow_registry(self) -> None:
        """Fire the schedules the registry gives now: add the new ones, drop the gone ones."""
        if self._fixed:
            return
        wanted = {s.name: s for s in all_schedules(self.runtime)}
        known = {s.name for s in self.schedules}
        if set(wanted) == known:
            return
        with self._lock:
            self.schedules = list(wanted.values())
        # A schedule that appears now (a connection created) owes nothing from before it
        # existed: its slots start from now, not from the catch-up window.
        now = self._clock()
        for name in set(wanted) - known:
            self._queued[name] = now
        if not self._scheduler.running:
            return
        for name in known - set(wanted):
            self._scheduler.remove_job(name)
        for name in set(wanted) - known:
            self._add(wanted[name])
        log.info(
            "hub.scheduler.schedules_changed",
            added=sorted(set(wanted) - known),
            removed=sorted(known - set(wanted)),
        )

    def _add(self, schedule: Schedule) -> None:
        self._scheduler.add_job(
            self._job(schedule),
            schedule.trigger,
            id=schedule.name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
        )

    def start(self) -> None:
        """Start firing in a background thread; the lease is tried at once (catching up what
        was missed), then renewed at a third of its lifetime so a live leader keeps it and a
        dead one loses it."""
        self._heartbeat()
        self._scheduler.add_job(
            self._heartbeat,
            IntervalTrigger(seconds=max(self.lease_ttl / 3, 0.1), timezone=UTC),
            id="lease-heartbeat",
            coalesce=True,
            max_instances=1,
        )
        for schedule in self.schedules:
            self._add(schedule)
        self._scheduler.start()
        log.info(
            "hub.scheduler.started", owner=self.owner, schedules=[s.name for s in self.schedules]
        )

    def stop(self) -> None:
        """Stop firing, wait for a firing in progress, and hand the lease back at once."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        with self.runtime.db.transaction() as session:
            leases.give_up(session, LEASE_NAME, self.owner, now=self._clock())
        self._leading = False
        log.info("hub.scheduler.stopped", owner=self.owner)
