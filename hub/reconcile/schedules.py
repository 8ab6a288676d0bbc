"""The hub's schedules: reconcile each channel, sweep for stuck orders, poll quiet routes."""

from __future__ import annotations

from datetime import datetime

from apscheduler.triggers.cron import CronTrigger
from sqlmodel import Session

from hub.jobs import queue
from hub.reconcile import service
from hub.reconcile.scheduler import Enqueue, Schedule, interval
from hub.reconcile.tasks import POLL_QUIET, STUCK
from hub.runtime import Runtime


def default_schedules(runtime: Runtime) -> list[Schedule]:
    settings = runtime.settings
    schedules = [
        Schedule(
            f"reconcile:{name}",
            CronTrigger.from_crontab(settings.reconcile_cron, timezone="UTC"),
            _reconcile(runtime, name),
        )
        for name in runtime.connectors.channels
    ]
    every = interval(settings.maintenance_interval_seconds)
    schedules.append(Schedule("stuck-orders", every, _simple(STUCK)))
    schedules.append(Schedule("poll-quiet-fulfilment", every, _simple(POLL_QUIET)))
    return schedules


def _reconcile(runtime: Runtime, channel: str) -> Enqueue:
    def enqueue(session: Session, slot: datetime) -> None:
        key = f"schedule:reconcile:{channel}:{slot.isoformat()}"
        service.start_run(session, runtime.settings, channel, window_to=slot, key=key)

    return enqueue


def _simple(kind: str) -> Enqueue:
    def enqueue(session: Session, slot: datetime) -> None:
        queue.enqueue(session, kind, f"schedule:{kind}:{slot.isoformat()}")

    return enqueue
