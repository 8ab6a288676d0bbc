"""The overview's figures, read back from the database on both backends."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import text, update
from sqlmodel import col

from hub.console import charts
from hub.console import repository as figures
from hub.db import Database
from hub.jobs import queue
from hub.jobs.models import Job
from hub.types import utcnow
from tests.harness import Hub

from ..admin.conftest import send


def test_queue_depth_is_read_back_from_when_jobs_were_created_and_finished(
    database: Database,
) -> None:
    now = utcnow().replace(microsecond=0)
    spans = {
        "a": (now - timedelta(hours=5), now - timedelta(hours=3)),  # waited 2 h, done
        "b": (now - timedelta(hours=4), None),  # still waiting
        "c": (now - timedelta(hours=1), now - timedelta(minutes=30)),
    }
    with database.transaction() as session:
        for key, (created, finished) in spans.items():
            queue.enqueue(session, "test.kind", key)
            session.execute(
                update(Job)
                .where(col(Job.idempotency_key) == key)
                .values(created_at=created, finished_at=finished)
            )
    moments = [now - timedelta(hours=h) for h in (6, 4.5, 3.5, 2, 0.75, 0)]

    with database.reader() as session:
        depth = figures.queue_depth_at(session, moments)

    assert depth == [0, 1, 2, 1, 2, 1]


def test_orders_are_counted_per_hour_they_arrived(hub: Hub) -> None:
    for n in range(3):
        send(hub, f"H-{n}", ("SKU-1", 1))
    hub.drain()
    now = utcnow()

    with hub.db.reader() as session:
        if hub.db.is_postgres:
            # Hours are UTC hours, whatever zone the database session is in.
            session.execute(text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))
        per_hour = figures.orders_per_hour(session, now - timedelta(hours=2))

    arrived = Counter(
        datetime.fromisoformat(o["created_at"].replace("Z", "+00:00")).strftime("%Y-%m-%d %H")
        for o in hub.orders()
    )
    assert per_hour == dict(arrived) and sum(per_hour.values()) == 3


def test_a_chart_says_in_words_what_it_draws() -> None:
    svg = charts.bar_chart("Orders per hour", [("09:00", 0), ("10:00", 4), ("11:00", 1)])

    assert 'aria-label="Orders per hour: 5 in all, most (4) at 10:00"' in svg
    assert svg.count("<rect") == 3
    assert "most" not in charts.bar_chart("Nothing", [("09:00", 0)])
