"""The hub's schedules: reconcile each channel, sweep for stuck orders, poll quiet routes."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from hub.jobs import queue
from hub.reconcile import service
from hub.reconcile.scheduler import Enqueue, Schedule, cron, interval
from hub.reconcile.tasks import POLL_QUIET, STUCK
from hub.runtime import Runtime

STUCK_ORDERS = "stuck-orders"
POLL_QUIET_FULFILMENT = "poll-quiet-fulfilment"


def reconcile_schedule_name(channel: str) -> str:
    return f"reconcile:{channel}"


def default_schedules(runtime: Runtime) -> list[Schedule]:
    """One reconciliation per enabled channel on HUB_RECONCILE_CRON (UTC), and the upkeep
    sweeps every HUB_MAINTENANCE_INTERVAL_SECONDS."""
    settings = runtime.settings
    reconcile_on = cron(settings.reconcile_cron)
    schedules = [
        Schedule(reconcile_schedule_name(name), reconcile_on, _reconcile(runtime, name))
        for name in sorted(runtime.connectors.channels)
    ]
    every = interval(settings.maintenance_interval_seconds)
    schedules.append(Schedule(STUCK_ORDERS, every, _simple(STUCK)))
    schedules.append(Schedule(POLL_QUIET_FULFILMENT, every, _simple(POLL_QUIET)))
    return schedules


def slot_key(name: str, slot: datetime) -> str:
    """The idempotency key of one schedule's run slot: the same in every process."""
    return f"schedule:{name}:{slot.isoformat()}"


def _reconcile(runtime: Runtime, channel: str) -> Enqueue:
    def enqueue(session: Session, slot: datetime) -> None:
        key = slot_key(reconcile_schedule_name(channel), slot)
        service.start_run(session, runtime.settings, channel, window_to=slot, key=key)

    return enqueue


def _simple(kind: str) -> Enqueue:
    def enqueue(session: Session, slot: datetime) -> None:
        queue.enqueue(session, kind, slot_key(kind, slot))

    return enqueue
