"""The job queue on the real database: enqueue once per key, claim under a lease, finish only
while the lease holds, back off with full jitter, and hand jobs back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from hub.db import Database, watching_prebuilt
from hub.jobs import priorities, queue, wakeup
from hub.jobs.models import Job, JobAttempt, JobState
from hub.jobs.priorities import Priority
from hub.types import utcnow
from tests.hub.jobs.kinds import BULK, COUNT, URGENT


def enqueue(database: Database, key: str, **kwargs: object) -> None:
    with database.transaction() as session:
        assert queue.enqueue(session, COUNT, key, **kwargs)  # type: ignore[arg-type]


def claim(database: Database, worker: str, lease: float = 60.0, limit: int = 1) -> list[Job]:
    with database.transaction() as session:
        return queue.claim(session, worker, lease, limit)


def job(database: Database, job_id: int | None) -> Job:
    assert job_id is not None
    with database.reader() as session:
        found = queue.get(session, job_id)
        assert found is not None
        return found


def attempts(database: Database, job_id: int | None) -> list[tuple[int, str, str]]:
    assert job_id is not None
    with database.reader() as session:
        return [(a.attempt, a.worker, a.outcome) for a in queue.attempts_of(session, job_id)]


def test_enqueue_creates_one_job_per_idempotency_key(database: Database) -> None:
    with database.transaction() as session:
        first = queue.enqueue(session, COUNT, "order:1:route", {"n": 1})
        second = queue.enqueue(session, COUNT, "order:1:route", {"n": 2})
    with database.transaction() as session:
        third = queue.enqueue(session, COUNT, "order:1:route", {"n": 3})

    assert (first, second, third) == (True, False, False)
    with database.reader() as session:
        [only] = queue.list_jobs(session)
    assert only.payload == {"n": 1}


def test_a_job_is_not_claimed_before_its_run_at(database: Database) -> None:
    enqueue(database, "later", run_at=utcnow() + timedelta(hours=1))

    assert claim(database, "w") == []


def test_claim_takes_due_jobs_oldest_first_and_records_the_attempt_when_it_ends(
    database: Database,
) -> None:
    now = utcnow()
    enqueue(database, "second", run_at=now - timedelta(seconds=1))
    enqueue(database, "first", run_at=now - timedelta(seconds=2))

    [claimed] = claim(database, "worker-a")

    assert claimed.idempotency_key == "first"
    assert (claimed.state, claimed.attempts, claimed.lease_owner) == ("running", 1, "worker-a")
    assert attempts(database, claimed.id) == []
    with database.transaction() as session:
        queue.complete(session, claimed)
    assert attempts(database, claimed.id) == [(1, "worker-a", "ok")]


def test_claim_takes_the_most_urgent_priority_first_then_the_oldest(database: Database) -> None:
    now = utcnow()
    with database.transaction() as session:
        for n in range(5):
            queue.enqueue(session, BULK, f"bulk-{n}", run_at=now - timedelta(minutes=10 - n))
        queue.enqueue(session, COUNT, "urgent-late", run_at=now)
        queue.enqueue(session, COUNT, "urgent-early", run_at=now - timedelta(seconds=1))

    claimed = claim(database, "w", limit=3)

    assert [j.idempotency_key for j in claimed] == ["urgent-early", "urgent-late", "bulk-0"]
    assert [j.priority for j in claimed] == [Priority.DEFAULT, Priority.DEFAULT, Priority.BULK]


def test_a_configured_priority_overrides_the_declared_one(database: Database) -> None:
    priorities.configure({BULK: 1})
    try:
        with database.transaction() as session:
            queue.enqueue(session, COUNT, "declared", run_at=utcnow() - timedelta(minutes=1))
            queue.enqueue(session, BULK, "configured")
    finally:
        priorities.configure({})

    assert [j.idempotency_key for j in claim(database, "w", limit=2)] == ["configured", "declared"]


def test_a_claimed_job_is_the_row_as_stored(database: Database) -> None:
    enqueue(database, "k", order_id="o-1", connection="shop:1")
    [claimed] = claim(database, "worker-a")

    stored = job(database, claimed.id)
    assert claimed.model_dump() == stored.model_dump()
    assert (claimed.state, claimed.lease_owner) == (JobState.RUNNING, "worker-a")
    # Still an instance a session can take up (a handler's `keep_payload`, `requeue`).
    with database.transaction() as session:
        merged = session.merge(claimed)
        merged.payload = {"kept": True}
    assert job(database, claimed.id).payload == {"kept": True}


def test_a_held_job_is_not_claimed_again_until_its_lease_expires(database: Database) -> None:
    enqueue(database, "k")
    [held] = claim(database, "worker-a", lease=0.3)

    assert claim(database, "worker-b") == []
    time.sleep(0.4)
    [again] = claim(database, "worker-b")

    assert again.id == held.id
    assert (again.attempts, again.lease_owner) == (2, "worker-b")
    assert attempts(database, held.id) == [(1, "worker-a", "lease_expired")]


def test_finishing_after_the_lease_moved_on_is_refused_and_rolled_back(
    database: Database,
) -> None:
    enqueue(database, "k")
    [held] = claim(database, "worker-a", lease=0.2)
    time.sleep(0.3)
    [taken] = claim(database, "worker-b")

    with pytest.raises(queue.LeaseLost), database.transaction() as session:
        queue.enqueue(session, COUNT, "effect-of-the-late-worker")
        queue.complete(session, held)

    with database.reader() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 1
    assert job(database, held.id).state == JobState.RUNNING
    with database.transaction() as session:
        queue.complete(session, taken)
    assert job(database, held.id).state == JobState.DONE
    assert [outcome for _, _, outcome in attempts(database, held.id)] == ["lease_expired", "ok"]


@pytest.mark.parametrize(
    "finish",
    [
        pytest.param(lambda s, j: queue.retry(s, j, "again", delay=0), id="retry"),
        pytest.param(lambda s, j: queue.bury(s, j, "dead"), id="bury"),
        pytest.param(queue.release, id="release"),
    ],
)
def test_every_way_of_finishing_is_fenced_by_the_lease(database: Database, finish: object) -> None:
    enqueue(database, "k")
    [held] = claim(database, "worker-a", lease=0.2)
    time.sleep(0.3)
    claim(database, "worker-b")

    with pytest.raises(queue.LeaseLost), database.transaction() as session:
        finish(session, held)  # type: ignore[operator]


def test_release_hands_a_job_back_without_spending_an_attempt(database: Database) -> None:
    enqueue(database, "k")
    [held] = claim(database, "draining-worker")

    with database.transaction() as session:
        queue.release(session, held)

    released = job(database, held.id)
    assert (released.state, released.attempts, released.lease_owner) == ("queued", 0, None)
    assert attempts(database, held.id) == []
    [again] = claim(database, "other")
    assert again.attempts == 1


def test_retry_puts_the_job_back_after_its_delay_and_keeps_the_error(database: Database) -> None:
    enqueue(database, "k")
    [held] = claim(database, "w")

    with database.transaction() as session:
        queue.retry(session, held, "503 from the channel", delay=3600, status_code=503)

    retried = job(database, held.id)
    assert (retried.state, retried.last_error) == ("queued", "503 from the channel")
    assert retried.run_at > utcnow() + timedelta(minutes=59)
    assert claim(database, "w") == []
    with database.reader() as session:
        [attempt] = queue.attempts_of(session, held.id or 0)
    assert (attempt.outcome, attempt.status_code, attempt.error) == (
        "retry",
        503,
        "503 from the channel",
    )


def test_errors_are_truncated_on_the_job_and_its_attempt(database: Database) -> None:
    enqueue(database, "k")
    [held] = claim(database, "w")

    with database.transaction() as session:
        queue.bury(session, held, "x" * 10_000)

    assert len(job(database, held.id).last_error or "") == queue.ERROR_LIMIT
    with database.reader() as session:
        [attempt] = session.scalars(select(JobAttempt)).all()
    assert len(attempt.error or "") == queue.ERROR_LIMIT


def test_requeue_gives_a_dead_job_a_fresh_allowance_of_attempts(database: Database) -> None:
    enqueue(database, "k", max_attempts=2)
    [first] = claim(database, "w")
    with database.transaction() as session:
        queue.retry(session, first, "boom", delay=0)
    [second] = claim(database, "w")
    with database.transaction() as session:
        queue.bury(session, second, "boom")
    assert job(database, second.id).state == JobState.DEAD

    with database.transaction() as session:
        requeued = queue.requeue(session, second.id or 0)

    assert requeued is not None
    assert (requeued.state, requeued.max_attempts - requeued.attempts) == ("queued", 2)
    [again] = claim(database, "w")
    assert (again.id, again.attempts) == (second.id, 3)


def test_requeue_leaves_a_queued_or_running_job_alone(database: Database) -> None:
    enqueue(database, "k")
    [held] = claim(database, "w")

    with database.transaction() as session:
        same = queue.requeue(session, held.id or 0)
        missing = queue.requeue(session, 424242)

    assert same is not None and same.state == JobState.RUNNING
    assert missing is None


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 12])
def test_backoff_is_full_jitter_under_a_capped_exponential(attempt: int) -> None:
    base, cap = 2.0, 60.0
    ceiling = min(cap, base * 2 ** (attempt - 1))

    delays = [queue.backoff(attempt, base, cap) for _ in range(400)]

    assert all(0 <= d <= ceiling for d in delays)
    # Uniform over [0, ceiling]: both halves are used (a fixed or a halved delay fails this).
    assert any(d < ceiling / 2 for d in delays)
    assert any(d > ceiling / 2 for d in delays)


def _merge_origin(waiting: dict[str, object], new: dict[str, object]) -> dict[str, object]:
    return waiting if waiting.get("origin") == new.get("origin") else {**waiting, "origin": None}


def test_coalesce_waiting_joins_a_waiting_job_and_leaves_the_rest(database: Database) -> None:
    with database.transaction() as session:
        queue.enqueue_coalesced(session, COUNT, [("sync:a", {"origin": "x"})])
    with database.transaction() as session:
        left = queue.coalesce_waiting(
            session,
            [("sync:a", {"origin": "x"}), ("sync:b", {"origin": "x"})],
            merge=_merge_origin,
        )
    assert left == [("sync:b", {"origin": "x"})]  # no job waits for b
    with database.transaction() as session:
        left = queue.coalesce_waiting(session, [("sync:a", {"origin": "y"})], merge=_merge_origin)
        assert left == [("sync:a", {"origin": "y"})]  # its payload would change
        queue.enqueue_coalesced(session, COUNT, left, merge=_merge_origin)
    with database.reader() as session:
        jobs = queue.list_jobs(session, kind=COUNT)
    assert [(j.idempotency_key, j.payload) for j in jobs] == [("sync:a", {"origin": None})]


def test_a_joined_job_is_not_claimed_until_the_joining_transaction_ends(
    postgres_database: Database,
) -> None:
    with postgres_database.transaction() as session:
        queue.enqueue_coalesced(session, COUNT, [("sync:a", {})])
    joined = postgres_database.transaction()
    session = joined.__enter__()
    try:
        assert queue.coalesce_waiting(session, [("sync:a", {})]) == []
        # Another joiner does not wait for the first (key-share locks share).
        with postgres_database.transaction() as other:
            assert queue.coalesce_waiting(other, [("sync:a", {})]) == []
        # A claim skips the joined job: the change it covers is not committed yet.
        assert claim(postgres_database, "w") == []
    finally:
        joined.__exit__(None, None, None)
    assert [j.idempotency_key for j in claim(postgres_database, "w")] == ["sync:a"]


def test_enqueue_coalesced_gives_the_key_of_a_started_or_finished_job_to_a_new_one(
    database: Database,
) -> None:
    with database.transaction() as session:
        queue.enqueue_coalesced(session, COUNT, [("sync:a", {"n": 1})])
    [done] = claim(database, "w")
    with database.transaction() as session:
        queue.complete(session, done)
    with database.transaction() as session:
        queue.enqueue_coalesced(session, COUNT, [("sync:a", {"n": 2})])
    [running] = claim(database, "w")  # started: its inputs may be read already
    with database.transaction() as session:
        queue.enqueue_coalesced(session, COUNT, [("sync:a", {"n": 3})])
        queue.enqueue_coalesced(session, COUNT, [("sync:a", {"n": 4})])  # joins the waiting one

    with database.reader() as session:
        jobs = {j.idempotency_key: j for j in queue.list_jobs(session, kind=COUNT)}
    assert sorted(jobs) == sorted(["sync:a", f"sync:a:{done.id}", f"sync:a:{running.id}"])
    assert (jobs[f"sync:a:{done.id}"].state, jobs[f"sync:a:{done.id}"].payload) == (
        JobState.DONE,
        {"n": 1},
    )
    assert jobs[f"sync:a:{running.id}"].state == JobState.RUNNING
    waiting = jobs["sync:a"]
    assert (waiting.state, waiting.payload, waiting.attempts) == (JobState.QUEUED, {"n": 3}, 0)
    assert waiting.priority == priorities.of(COUNT)
    assert waiting.max_attempts == queue.CONFIGURED_MAX_ATTEMPTS


def test_replacing_a_finished_jobs_key_is_one_prebuilt_statement_on_postgres(
    postgres_database: Database,
) -> None:
    """The usual listing-sync enqueue (its last sync has run) costs one statement: no look-up
    through the ORM and no separate re-keying."""
    with postgres_database.transaction() as session:
        queue.enqueue_coalesced(session, COUNT, [("sync:a", {})])
    [done] = claim(postgres_database, "w")
    with postgres_database.transaction() as session:
        queue.complete(session, done)
    executed: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        executed.append(statement)

    prebuilt: list[str] = []
    event.listen(postgres_database.engine, "before_cursor_execute", count)
    try:
        with (
            watching_prebuilt(lambda _conn, sql, _params: prebuilt.append(sql)),
            postgres_database.transaction() as session,
        ):
            queue.enqueue_coalesced(session, COUNT, [("sync:a", {"n": 2})])
    finally:
        event.remove(postgres_database.engine, "before_cursor_execute", count)

    assert len(prebuilt) == 1 and "INSERT INTO jobs" in prebuilt[0]
    assert executed == [f"NOTIFY {wakeup.CHANNEL}"]  # the wake-up, at commit
    with postgres_database.reader() as session:
        keys = sorted(j.idempotency_key for j in queue.list_jobs(session, kind=COUNT))
    assert keys == sorted(["sync:a", f"sync:a:{done.id}"])


def test_two_transactions_replacing_a_finished_jobs_key_queue_one_job(
    postgres_database: Database,
) -> None:
    """Both find the finished job; the second waits for the first's re-keying, then coalesces
    with the job the first queued (its payload merged), instead of failing or queueing two."""
    with postgres_database.transaction() as session:
        queue.enqueue_coalesced(session, COUNT, [("sync:a", {"origin": "x"})])
    [done] = claim(postgres_database, "w")
    with postgres_database.transaction() as session:
        queue.complete(session, done)
    first = postgres_database.transaction()
    session = first.__enter__()
    try:
        queue.enqueue_coalesced(session, COUNT, [("sync:a", {"origin": "x"})], merge=_merge_origin)
        failures: list[BaseException] = []

        def second() -> None:
            try:
                with postgres_database.transaction() as other:
                    queue.enqueue_coalesced(
                        other, COUNT, [("sync:a", {"origin": "y"})], merge=_merge_origin
                    )
            except BaseException as exc:  # reported below, in the test's thread
                failures.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # waiting for the first transaction's row lock
    finally:
        first.__exit__(None, None, None)
    thread.join(30)
    assert not thread.is_alive() and failures == []

    with postgres_database.reader() as session:
        jobs = {j.idempotency_key: j for j in queue.list_jobs(session, kind=COUNT)}
    assert sorted(jobs) == sorted(["sync:a", f"sync:a:{done.id}"])
    assert (jobs["sync:a"].state, jobs["sync:a"].payload) == (JobState.QUEUED, {"origin": None})


def test_enqueue_many_queues_each_key_once_in_one_call(database: Database) -> None:
    with database.transaction() as session:
        queue.enqueue(session, COUNT, "bulk:1")
    with database.transaction() as session:
        created = queue.enqueue_many(
            session, COUNT, [(f"bulk:{n}", {"n": n}) for n in range(3)], max_attempts=2
        )
    assert created == {"bulk:0", "bulk:2"}  # bulk:1 was queued already
    with database.reader() as session:
        jobs = {j.idempotency_key: j for j in queue.list_jobs(session, kind=COUNT)}
    assert sorted(jobs) == ["bulk:0", "bulk:1", "bulk:2"]
    assert jobs["bulk:2"].payload == {"n": 2}
    assert jobs["bulk:2"].max_attempts == 2
    assert jobs["bulk:2"].state == JobState.QUEUED
    assert jobs["bulk:2"].priority == priorities.of(COUNT)
    with database.transaction() as session:
        assert queue.enqueue_many(session, COUNT, [("bulk:0", {})]) == set()


def test_a_claim_with_max_priority_takes_only_jobs_that_urgent(database: Database) -> None:
    with database.transaction() as session:
        queue.enqueue(session, BULK, "bulk")
        queue.enqueue(session, COUNT, "default")
    with database.transaction() as session:
        assert queue.claim(session, "lane", 60.0, max_priority=Priority.ORDER) == []
        [taken] = queue.claim(session, "lane", 60.0, max_priority=priorities.of(COUNT))
    assert taken.idempotency_key == "default"
    assert [j.idempotency_key for j in claim(database, "any")] == ["bulk"]


# -- finishing a job and claiming the next at once -------------------------------------------


def complete_and_claim(
    database: Database, held: Job, worker: str, lease: float = 60.0, **kwargs: object
) -> Job | None:
    with database.connect(one_statement=queue.FINISH_IS_ONE_STATEMENT) as connection:
        return queue.complete_and_claim(connection, held, worker, lease, **kwargs)  # type: ignore[arg-type]


def test_complete_and_claim_finishes_the_job_and_leases_the_next_to_the_same_worker(
    database: Database,
) -> None:
    now = utcnow()
    enqueue(database, "first", run_at=now - timedelta(seconds=3))
    enqueue(database, "second", run_at=now - timedelta(seconds=2), max_attempts=7)
    enqueue(database, "third", run_at=now - timedelta(seconds=1))
    [held] = claim(database, "worker-a")

    taken = complete_and_claim(database, held, "worker-a", lease=90.0, max_attempts=4)

    assert job(database, held.id).state == JobState.DONE
    assert job(database, held.id).finished_at is not None
    assert attempts(database, held.id) == [(1, "worker-a", "ok")]
    assert taken is not None and taken.idempotency_key == "second"
    stored = job(database, taken.id)
    assert (stored.state, stored.lease_owner, stored.attempts) == ("running", "worker-a", 1)
    assert stored.max_attempts == 7, "a job's own limit is kept"
    assert stored.lease_expires_at is not None
    assert timedelta(seconds=85) < stored.lease_expires_at - utcnow() <= timedelta(seconds=90)
    # What the worker holds is the row as stored, so its finish passes the lease fence.
    assert taken.model_dump() == stored.model_dump()
    assert attempts(database, taken.id) == []
    again = complete_and_claim(database, taken, "worker-a", max_attempts=4)
    assert attempts(database, taken.id) == [(1, "worker-a", "ok")]
    assert again is not None and again.idempotency_key == "third"
    assert job(database, again.id).max_attempts == 4, "the configured limit is taken"


def test_complete_and_claim_claims_nothing_when_no_job_is_due(database: Database) -> None:
    enqueue(database, "now")
    enqueue(database, "later", run_at=utcnow() + timedelta(hours=1))
    [held] = claim(database, "worker-a")

    assert complete_and_claim(database, held, "worker-a") is None

    assert job(database, held.id).state == JobState.DONE
    assert attempts(database, held.id) == [(1, "worker-a", "ok")]
    with database.reader() as session:
        [later] = queue.list_jobs(session, state=JobState.QUEUED)
    assert (later.idempotency_key, later.attempts) == ("later", 0)


def test_complete_and_claim_after_the_lease_moved_on_is_refused_and_claims_nothing(
    database: Database,
) -> None:
    now = utcnow()
    enqueue(database, "k", run_at=now - timedelta(seconds=2))
    enqueue(database, "next", run_at=now - timedelta(seconds=1))
    [held] = claim(database, "worker-a", lease=0.2)
    time.sleep(0.3)
    [taken] = claim(database, "worker-b")
    assert taken.id == held.id

    with pytest.raises(queue.LeaseLost):
        complete_and_claim(database, held, "worker-a")

    assert (job(database, held.id).state, job(database, held.id).lease_owner) == (
        "running",
        "worker-b",
    )
    assert attempts(database, held.id) == [(1, "worker-a", "lease_expired")]
    with database.reader() as session:
        [waiting] = queue.list_jobs(session, state=JobState.QUEUED)
    assert (waiting.idempotency_key, waiting.attempts, waiting.lease_owner) == ("next", 0, None)


def test_complete_and_claim_keeps_to_the_workers_lane(database: Database) -> None:
    with database.transaction() as session:
        queue.enqueue(session, URGENT, "urgent")
        queue.enqueue(session, BULK, "bulk")
        queue.enqueue(session, COUNT, "default")
    with database.transaction() as session:
        [held] = queue.claim(session, "lane", 60.0, max_priority=Priority.ORDER)

    assert complete_and_claim(database, held, "lane", max_priority=Priority.ORDER) is None

    assert job(database, held.id).state == JobState.DONE
    with database.reader() as session:
        waiting = queue.list_jobs(session, state=JobState.QUEUED)
    assert sorted((j.idempotency_key, j.attempts) for j in waiting) == [
        ("bulk", 0),
        ("default", 0),
    ]


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


# A busy queue's history: thousands of jobs claimed, then finished (their entries in the
# partial index of running jobs dead until a vacuum), and the table analyzed between jobs,
# when none was running; the statistics then show that index empty.
_RAN = text(
    "INSERT INTO jobs (kind, payload, idempotency_key, state, priority, attempts, max_attempts,"
    " run_at, lease_owner, lease_expires_at, created_at, updated_at, claimed_at)"
    " SELECT :kind, '{}', 'ran:' || n, 'running', 50, 1, 0, now(), 'other',"
    " now() + interval '1 minute', now(), now(), now() FROM generate_series(1, :jobs) AS n"
)
_FINISHED = text(
    "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_expires_at = NULL,"
    " finished_at = now() WHERE state = 'running'"
)


@pytest.mark.postgres_only
@pytest.mark.parametrize("finish", ["complete", "complete_and_claim"])
def test_a_finish_finds_its_job_by_primary_key_on_postgres(
    postgres_database: Database, finish: str
) -> None:
    """The lease fence of a finish, as the hub sends it, reaches its job through `jobs_pkey`.
    Written with `state = 'running'` (or any test from which Postgres can prove the predicate
    of `ix_jobs_leases`), it went through that partial index instead whenever statistics showed
    the index (nearly) empty, and read every entry of it, the dead ones of jobs finished since
    the last vacuum included. With a few jobs running at the last ANALYZE Postgres takes the
    primary key either way, so the history here has none. A planner's choice, so Postgres
    only: SQLite's planner has no such pick to pin, and this test has no SQLite run by
    design."""
    database = postgres_database
    with database.engine.begin() as connection:
        connection.execute(_RAN, {"kind": COUNT, "jobs": 3000})
    with database.engine.begin() as connection:
        connection.execute(_FINISHED)
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE jobs"))
    enqueue(database, "mine")
    sent: list[tuple[str, dict[str, Any]]] = []
    with database.connect(one_statement=True) as connection:
        [job] = queue.claim(connection, "w1", 60.0, sweep=False)
        with watching_prebuilt(lambda _, sql, params: sent.append((sql, dict(params)))):
            if finish == "complete":
                queue.complete(connection, job)
            else:
                assert queue.complete_and_claim(connection, job, "w1", 60.0) is None
    [(sql, params)] = sent
    with database.connect(one_statement=True) as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            [[[explained]]] = cursor.fetchall()
    nodes = list(_plan_nodes(explained["Plan"]))
    [fenced] = [node for node in nodes if node.get("Subplan Name") == "CTE fenced"]
    assert (fenced["Node Type"], fenced["Operation"]) == ("ModifyTable", "Update")
    [found] = fenced["Plans"]
    assert (found["Node Type"], found.get("Index Name")) == ("Index Scan", "jobs_pkey"), found
    assert "ix_jobs_leases" not in {node.get("Index Name") for node in nodes}
