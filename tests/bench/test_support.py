"""The benchmarks' count of round trips sees everything the hub sends, the job engine's
prebuilt statements on Postgres (sent on the DBAPI cursor, past SQLAlchemy's events) included."""

from __future__ import annotations

from bench.support import round_trips
from hub.db import Database
from hub.jobs import queue


def test_round_trips_counts_a_jobs_claim_and_finish(database: Database) -> None:
    with database.transaction() as session:
        assert queue.enqueue(session, "count", "k1")
    with round_trips(database) as trips:
        with database.connect(one_statement=True) as connection:
            [job] = queue.claim(connection, "w1", 60.0, sweep=False)
        with database.connect(one_statement=True) as connection:
            queue.complete(connection, job)
    if database.is_postgres:
        # Each a statement alone in autocommit: the claim, and the finish (the fenced update
        # as a CTE of the attempt's insert); no BEGIN or COMMIT sent.
        assert (trips.statements, trips.commits, trips.total) == (2, 0, 2)
    else:
        # Two transactions, each BEGIN IMMEDIATE (a statement SQLAlchemy sees) and a COMMIT:
        # the claim, then the fenced update and the attempt's insert.
        assert (trips.statements, trips.commits, trips.total) == (5, 2, 7)
