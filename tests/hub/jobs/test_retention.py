"""Retention: the scheduled jobs that delete done jobs (with their attempts) and settled
webhooks past their age, leaving what an operator still needs, and metrics that stay right."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update
from sqlmodel import col

from connectors.base import Permanent
from hub.db import Database
from hub.inbox.models import InboundEvent
from hub.inbox.tasks import EVENT_RETENTION
from hub.jobs import queue
from hub.jobs.models import Job, JobAttempt, JobState
from hub.jobs.registry import all_schedules
from hub.jobs.retention import JOB_RETENTION
from hub.jobs.worker import run_one
from hub.types import utcnow
from tests.fake_channel import order_json, signed, webhook
from tests.harness import Hub, make_hub


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, fake=True, retention_jobs_days=7, retention_events_days=3)
    yield h
    h.close()


def place(hub: Hub, order_id: str) -> None:
    body = webhook(f"evt-{order_id}", "order.new", order_json(order_id, ("SKU-1", 1)))
    assert hub.client.post("/webhooks/fake", content=body, headers=signed(body)).status_code == 200


def age(hub: Hub, days: float) -> None:
    """Make everything in the database `days` older, as if that much time had passed."""
    then = utcnow() - timedelta(days=days)
    with hub.db.transaction() as session:
        session.execute(update(Job).where(col(Job.state) == "done").values(finished_at=then))
        session.execute(update(InboundEvent).values(received_at=then))


def postpone_queued(hub: Hub) -> None:
    """Every queued job waits an hour (a retry's backoff), so only the retention job runs."""
    later = utcnow() + timedelta(hours=1)
    with hub.db.transaction() as session:
        session.execute(update(Job).where(col(Job.state) == "queued").values(run_at=later))


def run(hub: Hub, kind: str, key: str) -> None:
    with hub.db.transaction() as session:
        assert queue.enqueue(session, kind, key)
    assert run_one(hub.runtime, "retention-worker")


def count(hub: Hub, model: Any, *where: Any) -> int:
    with hub.db.reader() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def metric(hub: Hub, name: str, **labels: str) -> float:
    text = hub.client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def test_both_retentions_are_scheduled_low_in_the_queue(hub: Hub) -> None:
    names = {schedule.name for schedule in all_schedules(hub.runtime)}

    assert {JOB_RETENTION, EVENT_RETENTION} <= names
    with hub.db.transaction() as session:
        queue.enqueue(session, JOB_RETENTION, "prio")
        queue.enqueue(session, EVENT_RETENTION, "prio-events")
        [one, other] = queue.claim(session, "w", 60, limit=2)
    assert one.priority == other.priority == 90


def test_done_jobs_past_their_age_go_with_their_attempts_the_rest_stay(hub: Hub) -> None:
    assert hub.fake is not None
    hub.fake.failures["accept"] = [Permanent("refused")]
    place(hub, "A-1")
    hub.drain()
    done = count(hub, Job, col(Job.state) == JobState.DONE)
    assert done > 0 and count(hub, Job, col(Job.state) == JobState.DEAD) == 1
    dead_before = metric(hub, "hub_jobs", kind="order.accept", state="dead")
    age(hub, 8)
    place(hub, "A-2")  # queued, not yet run: stays whatever its age
    postpone_queued(hub)

    run(hub, JOB_RETENTION, "now")

    # Only the retention job itself is done now; the dead job and the new order's stay.
    assert count(hub, Job, col(Job.state) == JobState.DONE) == 1
    assert count(hub, Job, col(Job.state) == JobState.DEAD) == 1
    assert count(hub, Job, col(Job.state) == JobState.QUEUED) == 1
    assert count(hub, JobAttempt) == 2, "the dead job's attempt and the retention job's"
    assert metric(hub, "hub_jobs", kind="order.accept", state="dead") == dead_before == 1
    assert metric(hub, "hub_jobs", kind="inbox.process", state="queued") == 1
    assert metric(hub, "hub_jobs_queued", kind="inbox.process", priority="10") == 1


def test_recent_done_jobs_stay(hub: Hub) -> None:
    place(hub, "A-1")
    hub.drain()
    age(hub, 6)
    done = count(hub, Job, col(Job.state) == JobState.DONE)

    run(hub, JOB_RETENTION, "now")

    assert count(hub, Job, col(Job.state) == JobState.DONE) == done + 1


def test_settled_webhooks_past_their_age_are_deleted_failed_and_pending_ones_stay(
    hub: Hub,
) -> None:
    place(hub, "A-1")
    place(hub, "A-2")
    hub.drain()
    bad = webhook("evt-bad", "order.new", {"not": "an order"})
    assert hub.client.post("/webhooks/fake", content=bad, headers=signed(bad)).status_code == 200
    hub.drain()
    place(hub, "A-3")  # pending: its job has not run
    postpone_queued(hub)
    age(hub, 4)

    run(hub, EVENT_RETENTION, "now")

    statuses = sorted(e["status"] for e in hub.admin("GET", "/admin/events").json()["data"])
    assert statuses == ["failed", "pending"]
