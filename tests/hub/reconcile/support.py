"""Driving reconciliation from the outside: the admin API starts a run, the worker runs it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.jobs.scheduler import Scheduler
from hub.jobs.schedules import Schedule, slot_of
from hub.types import utcnow
from tests.harness import Hub


def reconcile(hub: Hub, channel: str, **window: str) -> dict[str, Any]:
    """Start a run through the admin API, let the worker run everything it queued, and answer
    the run as `GET /admin/reconcile/runs/{id}` shows it."""
    started = hub.admin("POST", f"/admin/reconcile/{channel}", json=window or None)
    assert started.status_code == 202, started.text
    hub.drain()
    return run(hub, started.json()["run_id"])


def run(hub: Hub, run_id: str) -> dict[str, Any]:
    response = hub.admin("GET", f"/admin/reconcile/runs/{run_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def kinds(found: dict[str, Any]) -> list[str]:
    return [m["kind"] for m in found["mismatches"]]


def fire_now(hub: Hub, name: str, *, at: datetime | None = None) -> None:
    """Fire the default schedule `name` as the scheduler would at `at` (now), then drain."""
    scheduler = Scheduler(hub.runtime)
    schedule: Schedule = next(s for s in scheduler.schedules if s.name == name)
    assert scheduler.fire(schedule, slot_of(schedule.trigger, at or utcnow()))
    scheduler.stop()
    hub.drain()
