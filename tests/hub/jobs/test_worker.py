"""The worker: what a failure means (retry, dead, flagged), what an operator can do about a dead
job, and what happens when a worker dies or stalls holding a job. Driven through a webhook from
the fake channel, the admin API, and the worker itself."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import structlog
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlmodel import col

from connectors.base import Permanent, Retriable
from connectors.registry import Registry
from hub.db import Database
from hub.jobs import queue
from hub.jobs.models import Job, JobAttempt, JobState
from hub.jobs.worker import Runner, Worker, run_claimed, run_one
from hub.runtime import Runtime
from hub.types import utcnow
from tests.fake_channel import FakeChannel, order_json, signed, webhook
from tests.harness import Hub, hub_settings, make_hub
from tests.hub.jobs import kinds

ACK = "order.acknowledge"


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, fake=True)
    yield h
    h.close()


def fake(hub: Hub) -> FakeChannel:
    assert hub.fake is not None
    return hub.fake


def place_order(hub: Hub, order_id: str = "A-1") -> None:
    body = webhook(f"evt-{order_id}", "order.new", order_json(order_id, ("SKU-1", 1)))
    response = hub.client.post("/webhooks/fake", content=body, headers=signed(body))
    assert response.status_code == 200, response.text


def jobs(hub: Hub, **params: Any) -> list[dict[str, Any]]:
    response = hub.admin("GET", "/admin/jobs", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def the_job(hub: Hub, kind: str) -> dict[str, Any]:
    [found] = jobs(hub, kind=kind)
    detail = hub.admin("GET", f"/admin/jobs/{found['id']}")
    assert detail.status_code == 200, detail.text
    return dict(detail.json())


def enqueue(hub: Hub, kind: str, key: str, payload: dict[str, Any] | None = None) -> int:
    with hub.db.transaction() as session:
        assert queue.enqueue(session, kind, key, payload)
        job_id = session.scalar(select(col(Job.id)).where(col(Job.idempotency_key) == key))
        assert job_id is not None
        return job_id


def test_retriable_failures_back_off_and_the_job_then_finishes(hub: Hub) -> None:
    fake(hub).failures["acknowledge"] = [Retriable("busy"), Retriable("still busy")]
    place_order(hub)

    hub.drain()

    ack = the_job(hub, ACK)
    assert (ack["state"], ack["attempts"]) == ("done", 3)
    assert [(a["outcome"], a["error"]) for a in ack["history"]] == [
        ("retry", "busy"),
        ("retry", "still busy"),
        ("ok", None),
    ]
    order = hub.order("fake", "A-1")
    assert order["status"] == "confirmed"
    assert not order["needs_attention"]
    assert fake(hub).count("acknowledge") == 1


def test_a_retriable_answer_with_a_wait_is_not_retried_before_it(hub: Hub) -> None:
    fake(hub).failures["acknowledge"] = [Retriable("429 too many requests", after=600)]
    place_order(hub)

    hub.drain()

    ack = the_job(hub, ACK)
    assert (ack["state"], ack["attempts"], ack["last_error"]) == (
        "queued",
        1,
        "429 too many requests",
    )
    run_at = datetime.fromisoformat(ack["run_at"].replace("Z", "+00:00"))
    assert run_at > utcnow() + timedelta(seconds=590)
    assert hub.order("fake", "A-1")["status"] == "created"


def test_a_job_that_keeps_failing_is_dead_after_the_configured_attempts_and_flags_its_order(
    hub: Hub,
) -> None:
    assert hub.runtime.settings.job_max_attempts == 4
    fake(hub).failures["acknowledge"] = [Retriable(f"timeout {n}") for n in range(1, 10)]
    place_order(hub)

    hub.drain()

    ack = the_job(hub, ACK)
    assert (ack["state"], ack["attempts"], ack["max_attempts"]) == ("dead", 4, 4)
    assert ack["last_error"] == "gave up after 4 attempts: timeout 4"
    assert [a["outcome"] for a in ack["history"]] == ["retry", "retry", "retry", "dead"]
    order = hub.order("fake", "A-1")
    assert order["status"] == "created"
    assert order["needs_attention"] is True
    assert (
        order["attention_reason"] == "order.acknowledge failed: gave up after 4 attempts: timeout 4"
    )
    assert "flag" in [h["trigger"] for h in order["history"]]


def test_a_permanent_failure_is_dead_at_once_with_its_reason_on_the_order(hub: Hub) -> None:
    fake(hub).failures["acknowledge"] = [Permanent("seller account suspended")]
    place_order(hub)

    hub.drain()

    ack = the_job(hub, ACK)
    assert (ack["state"], ack["attempts"], ack["last_error"]) == (
        "dead",
        1,
        "seller account suspended",
    )
    order = hub.order("fake", "A-1")
    assert order["needs_attention"] is True
    assert order["attention_reason"] == "order.acknowledge failed: seller account suspended"
    assert jobs(hub, state="dead") == [{k: v for k, v in ack.items() if k != "history"}], (
        "the dead job is listed for the operator"
    )


def test_retrying_a_dead_job_from_the_admin_api_runs_it_again(hub: Hub) -> None:
    fake(hub).failures["acknowledge"] = [Permanent("seller account suspended")]
    place_order(hub)
    hub.drain()
    dead = the_job(hub, ACK)

    response = hub.admin("POST", f"/admin/jobs/{dead['id']}/retry")

    assert response.status_code == 200
    assert response.json()["state"] == "queued"
    assert response.json()["max_attempts"] - response.json()["attempts"] == 4
    hub.drain()
    ack = the_job(hub, ACK)
    assert (ack["state"], ack["attempts"]) == ("done", 2)
    assert hub.order("fake", "A-1")["status"] == "confirmed"
    assert fake(hub).count("acknowledge") == 1


def test_retrying_an_unknown_job_answers_404(hub: Hub) -> None:
    response = hub.admin("POST", "/admin/jobs/424242/retry")

    assert response.status_code == 404
    assert response.json()["error"] == "job_not_found"


def test_retrying_every_dead_job_of_a_kind(hub: Hub) -> None:
    ids = [
        enqueue(hub, kinds.FLAKY, f"flaky-{n}", {"times": 1, "fail": "permanent"}) for n in range(3)
    ]
    hub.drain()
    assert {j["state"] for j in jobs(hub, kind=kinds.FLAKY)} == {"dead"}

    response = hub.admin("POST", "/admin/jobs/retry-dead", params={"kind": kinds.FLAKY})
    hub.drain()

    assert response.status_code == 200
    assert sorted(response.json()["retried"]) == sorted(ids)
    assert {j["state"] for j in jobs(hub, kind=kinds.FLAKY)} == {"done"}


def test_a_job_of_an_unknown_kind_is_dead_with_the_reason(hub: Hub) -> None:
    job_id = enqueue(hub, "no.such.kind", "unknown-1")

    hub.drain()

    job = hub.admin("GET", f"/admin/jobs/{job_id}").json()
    assert (job["state"], job["attempts"]) == ("dead", 1)
    assert job["last_error"] == "no handler for job kind 'no.such.kind'"


def test_a_handler_that_crashes_is_retried_like_a_transient_fault_then_dead(hub: Hub) -> None:
    job_id = enqueue(hub, kinds.CRASH, "crash-1")

    hub.drain()

    job = hub.admin("GET", f"/admin/jobs/{job_id}").json()
    assert (job["state"], job["attempts"]) == ("dead", 4)
    assert job["last_error"].endswith("ZeroDivisionError: division by zero in a handler")
    assert kinds.runs()[job_id] == 4


def test_a_deterministic_database_error_is_dead_at_once(hub: Hub) -> None:
    job_id = enqueue(hub, kinds.DATA_ERROR, "too-big")

    hub.drain()

    job = hub.admin("GET", f"/admin/jobs/{job_id}").json()
    assert (job["state"], job["attempts"]) == ("dead", 1)
    assert kinds.runs()[job_id] == 1


@pytest.fixture
def windowed(database: Database) -> Iterator[Hub]:
    """A hub that retries by time alone, within a window of a few seconds."""
    h = make_hub(database, fake=True, job_max_attempts=0, job_retry_window_seconds=3)
    yield h
    h.close()


def test_a_transient_failure_is_retried_until_the_window_has_passed_then_dead(
    windowed: Hub,
) -> None:
    fake(windowed).failures["acknowledge"] = [Retriable(f"503 number {n}") for n in range(10_000)]
    place_order(windowed)

    windowed.drain()

    ack = the_job(windowed, ACK)
    assert ack["state"] == "dead"
    assert ack["max_attempts"] == 0
    assert ack["attempts"] >= 2
    assert ack["last_error"].startswith("gave up after retrying for ")
    assert ack["last_error"].endswith(f"503 number {ack['attempts'] - 1}")
    assert [a["outcome"] for a in ack["history"]] == ["retry"] * (ack["attempts"] - 1) + ["dead"]
    assert windowed.order("fake", "A-1")["needs_attention"] is True


def test_a_wait_asked_for_beyond_the_window_is_dead_at_once(windowed: Hub) -> None:
    fake(windowed).failures["acknowledge"] = [Retriable("429 come back tomorrow", after=86_400)]
    place_order(windowed)

    windowed.drain()

    ack = the_job(windowed, ACK)
    assert (ack["state"], ack["attempts"]) == ("dead", 1)
    assert ack["last_error"].endswith("429 come back tomorrow")


def test_an_operator_retry_gives_a_dead_job_a_fresh_window(windowed: Hub) -> None:
    fake(windowed).failures["acknowledge"] = [Retriable("429 come back tomorrow", after=86_400)]
    place_order(windowed)
    windowed.drain()
    dead = the_job(windowed, ACK)

    assert windowed.admin("POST", f"/admin/jobs/{dead['id']}/retry").status_code == 200
    windowed.drain()

    ack = the_job(windowed, ACK)
    assert (ack["state"], ack["attempts"]) == ("done", 2)


def test_a_job_log_context_does_not_leak_into_the_next_job(hub: Hub) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(worker="w-1")
    try:
        place_order(hub)
        assert run_one(hub.runtime, "w-1")  # inbox.process binds event_id and channel
        assert structlog.contextvars.get_contextvars() == {"worker": "w-1"}
    finally:
        structlog.contextvars.clear_contextvars()


# -- priorities ----------------------------------------------------------------------------------


def test_a_new_orders_jobs_run_before_three_hundred_queued_listing_syncs(hub: Hub) -> None:
    items = [{"sku": f"BULK-{n:03d}", "on_hand": 5} for n in range(300)] + [
        {"sku": "SKU-1", "on_hand": 5}
    ]
    assert hub.admin("PUT", "/admin/stock", json={"items": items}).status_code == 200
    assert len(jobs(hub, kind="inventory.sync_listing", state="queued", limit=500)) == 301
    place_order(hub)

    def status() -> str | None:
        params = {"channel": "fake", "channel_order_id": "A-1"}
        found = hub.admin("GET", "/admin/orders", params=params).json()["data"]
        return str(found[0]["status"]) if found else None

    ran: list[str] = []
    while status() != "confirmed":
        assert len(ran) < 10, f"the order is still waiting after {ran}"
        with hub.db.transaction() as session:
            [job] = queue.claim(session, "w", 60)
        ran.append(job.kind)
        run_claimed(hub.runtime, job)

    assert "inventory.sync_listing" not in ran
    assert ran[0] == "inbox.process"
    listed = jobs(hub, kind="inventory.sync_listing", limit=500)
    assert len(listed) >= 301
    assert {j["state"] for j in listed} == {"queued"}
    assert {j["priority"] for j in listed} == {90}
    assert {j["priority"] for j in jobs(hub, kind=ACK)} == {10}


# -- wake-ups -------------------------------------------------------------------------------------


def _wait_until_done(database: Database, job_id: int, seconds: float = 60.0) -> str:
    """The job's state once it is done, or whatever it is after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        with database.reader() as session:
            found = queue.get(session, job_id)
        assert found is not None
        if found.state == JobState.DONE or time.monotonic() > deadline:
            return str(found.state)
        time.sleep(0.01)


def test_an_idle_worker_is_woken_by_a_job_queued_in_its_process(database: Database) -> None:
    settings = hub_settings(database.url, worker_poll_seconds=3600)
    runtime = Runtime(settings=settings, db=database, connectors=Registry())
    worker = Worker(runtime)
    worker.start()
    try:
        assert worker.idle.wait(30), "the worker never went idle"
        with database.transaction() as session:
            queue.enqueue(session, kinds.COUNT, "wake-me")
            job_id = session.scalar(
                select(col(Job.id)).where(col(Job.idempotency_key) == "wake-me")
            )
        assert job_id is not None

        assert _wait_until_done(database, job_id) == JobState.DONE, "still asleep"
    finally:
        worker.stop()


@pytest.mark.postgres_only
def test_an_idle_worker_on_postgres_is_woken_by_a_job_another_process_queued(
    postgres_database: Database,
) -> None:
    url = postgres_database.url
    runtime = _process(url)
    runtime.settings.worker_poll_seconds = 3600
    worker = Worker(runtime)
    worker.start()
    try:
        assert worker.listening.wait(30) and worker.idle.wait(30), "the worker never listened"
        script = (
            "from hub.db import Database\n"
            "from hub.jobs import queue\n"
            f"db = Database({url!r})\n"
            "with db.transaction() as session:\n"
            f"    queue.enqueue(session, {kinds.COUNT!r}, 'from-afar')\n"
        )
        subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
        with postgres_database.reader() as session:
            job_id = session.scalar(
                select(col(Job.id)).where(col(Job.idempotency_key) == "from-afar")
            )
        assert job_id is not None

        assert _wait_until_done(postgres_database, job_id) == JobState.DONE, "still asleep"
    finally:
        worker.stop()
        runtime.db.dispose()


# -- a worker that dies or stalls holding a job --------------------------------------------------


def claim_ack(hub: Hub, worker: str, lease: float) -> Job:
    with hub.db.transaction() as session:
        [job] = queue.claim(session, worker, lease)
    assert job.kind == ACK
    return job


def test_a_job_held_by_a_killed_worker_is_finished_once_by_another_after_the_lease(
    hub: Hub,
) -> None:
    place_order(hub)
    assert run_one(hub.runtime, "worker-b")  # inbox.process queues the acknowledge
    claim_ack(hub, "worker-a", lease=0.3)  # ... and worker-a dies holding it

    assert not run_one(hub.runtime, "worker-b"), "taken while worker-a's lease holds"
    time.sleep(0.4)
    hub.drain()

    ack = the_job(hub, ACK)
    assert (ack["state"], ack["attempts"]) == ("done", 2)
    assert [(a["worker"], a["outcome"]) for a in ack["history"]] == [
        ("worker-a", "lease_expired"),
        (ack["history"][1]["worker"], "ok"),
    ]
    order = hub.order("fake", "A-1")
    assert order["status"] == "confirmed"
    assert [h["trigger"] for h in order["history"]].count("acknowledge") == 1
    assert fake(hub).count("acknowledge") == 1


def test_a_stalled_worker_that_wakes_after_losing_its_lease_changes_nothing(hub: Hub) -> None:
    place_order(hub)
    assert run_one(hub.runtime, "worker-b")
    stalled = claim_ack(hub, "worker-a", lease=0.2)
    time.sleep(0.3)
    taken = claim_ack(hub, "worker-b", lease=60)

    run_claimed(hub.runtime, stalled)  # calls the channel, then tries to commit its result

    order = hub.order("fake", "A-1")
    assert order["status"] == "created", "the late worker's transition was rolled back"
    assert "acknowledge" not in [h["trigger"] for h in order["history"]]
    assert jobs(hub, kind="order.accept") == [], "... and so were the jobs it queued"
    assert the_job(hub, ACK)["state"] == "running"

    run_claimed(hub.runtime, taken)
    hub.drain()

    ack = the_job(hub, ACK)
    assert (ack["state"], ack["attempts"]) == ("done", 2)
    assert [a["outcome"] for a in ack["history"]] == ["lease_expired", "ok"]
    order = hub.order("fake", "A-1")
    assert order["status"] == "confirmed"
    assert [h["trigger"] for h in order["history"]].count("acknowledge") == 1
    # Both workers reached the channel: outbound calls are at least once, hence idempotent.
    assert fake(hub).count("acknowledge") == 2


# -- many workers --------------------------------------------------------------------------------


def _process(url: str) -> Runtime:
    """What one `hub worker` process holds: its own settings, engine and connectors."""
    settings = hub_settings(url, admin_tokens=[SecretStr("unused")])
    return Runtime(settings=settings, db=Database(url, pool_size=4), connectors=Registry())


@pytest.mark.postgres_only
def test_two_workers_on_postgres_run_each_of_a_thousand_jobs_exactly_once(
    postgres_database: Database,
) -> None:
    total = 1000
    with postgres_database.transaction() as session:
        for n in range(total):
            queue.enqueue(session, kinds.COUNT, f"count-{n}")
        ids = {j.id for j in queue.list_jobs(session, kind=kinds.COUNT, limit=total)}
    processes = [_process(postgres_database.url) for _ in range(2)]
    workers = [Worker(runtime, concurrency=2) for runtime in processes]
    done = threading.Event()
    try:
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline:
            with postgres_database.reader() as session:
                finished = session.scalar(
                    select(func.count())
                    .select_from(Job)
                    .where(col(Job.kind) == kinds.COUNT, col(Job.state) == JobState.DONE)
                )
            if finished == total:
                done.set()
            else:
                time.sleep(0.05)
    finally:
        for worker in workers:
            worker.stop()
        for runtime in processes:
            runtime.db.dispose()

    assert done.is_set(), "the workers did not drain the queue"
    runs = kinds.runs()
    assert {job_id: runs[job_id] for job_id in ids if job_id is not None} == {
        job_id: 1 for job_id in ids if job_id is not None
    }
    with postgres_database.reader() as session:
        attempts = session.execute(
            select(
                col(JobAttempt.outcome), func.count(), func.count(func.distinct(JobAttempt.worker))
            )
            .join(Job, col(Job.id) == col(JobAttempt.job_id))
            .where(col(Job.kind) == kinds.COUNT)
            .group_by(col(JobAttempt.outcome))
        ).all()
        per_job = session.scalars(
            select(col(Job.attempts)).where(col(Job.kind) == kinds.COUNT).distinct()
        ).all()
    [(outcome, count, worker_threads)] = attempts
    assert (outcome, count) == ("ok", total)
    assert worker_threads > 1, "the work was shared"
    assert list(per_job) == [1]


def test_an_order_path_job_runs_while_bulk_work_holds_every_other_thread(
    database: Database,
) -> None:
    settings = hub_settings(database.url, worker_poll_seconds=0.05)
    runtime = Runtime(settings=settings, db=database, connectors=Registry())
    kinds.GATE.clear()
    with database.transaction() as session:
        for n in range(3):
            queue.enqueue(session, kinds.GATED, f"gated-{n}")
    worker = Worker(runtime, 2)
    worker.start()
    try:
        # One thread takes a gated job and waits; the other (the order lane) leaves them be.
        deadline = time.monotonic() + 30
        while not kinds.runs() and time.monotonic() < deadline:
            time.sleep(0.01)
        with database.transaction() as session:
            queue.enqueue(session, kinds.URGENT, "urgent")
            job_id = session.scalar(select(col(Job.id)).where(col(Job.idempotency_key) == "urgent"))
        assert job_id is not None
        assert _wait_until_done(database, job_id, 30) == JobState.DONE
        assert len(kinds.runs()) == 2  # one gated job held its thread throughout
    finally:
        kinds.GATE.set()
        worker.stop()


# -- a worker thread takes its next job as it finishes one ---------------------------------------


def _runtime(database: Database) -> Runtime:
    return Runtime(settings=hub_settings(database.url), db=database, connectors=Registry())


def _queue(database: Database, *keyed: tuple[str, str]) -> list[int]:
    """Queue a job of each (kind, key), each due a moment after the one before."""
    now = utcnow()
    ids = []
    with database.transaction() as session:
        for n, (kind, key) in enumerate(keyed):
            queue.enqueue(session, kind, key, run_at=now - timedelta(seconds=len(keyed) - n))
            found = session.scalar(select(col(Job.id)).where(col(Job.idempotency_key) == key))
            assert found is not None
            ids.append(found)
    return ids


def _state(database: Database, job_id: int) -> tuple[str, int, str | None]:
    with database.reader() as session:
        found = queue.get(session, job_id)
    assert found is not None
    return (str(found.state), found.attempts, found.lease_owner)


def test_a_job_that_finishes_alone_hands_its_worker_the_next_job(database: Database) -> None:
    runner = Runner(_runtime(database), "thread-a")
    alone, in_transaction, last = _queue(
        database, (kinds.URGENT, "alone"), (kinds.COUNT, "in-transaction"), (kinds.COUNT, "last")
    )

    assert runner.run_next()

    assert _state(database, alone) == ("done", 1, None)
    assert runner.held is not None and runner.held.id == in_transaction
    assert _state(database, in_transaction) == ("running", 1, "thread-a")
    assert _state(database, last) == ("queued", 0, None)

    assert runner.run_next()  # runs the job it holds; finished in its handler's transaction
    assert runner.held is None
    assert _state(database, last) == ("queued", 0, None)
    assert runner.run_next()
    assert not runner.run_next()

    assert kinds.runs() == {alone: 1, in_transaction: 1, last: 1}
    with database.reader() as session:
        for job_id in (alone, in_transaction, last):
            assert [
                (a.attempt, a.worker, a.outcome) for a in queue.attempts_of(session, job_id)
            ] == [(1, "thread-a", "ok")]


def test_a_worker_told_to_stop_takes_no_next_job_as_it_finishes_one(database: Database) -> None:
    stopping = threading.Event()
    runner = Runner(_runtime(database), "thread-a", wanted=lambda: not stopping.is_set())
    first, second, third = _queue(
        database, (kinds.URGENT, "first"), (kinds.URGENT, "second"), (kinds.URGENT, "third")
    )
    assert runner.run_next()
    assert runner.held is not None and runner.held.id == second

    stopping.set()
    assert runner.run_next()

    assert runner.held is None
    assert _state(database, second) == ("done", 1, None)
    assert _state(database, third) == ("queued", 0, None)
    assert kinds.runs() == {first: 1, second: 1}


def test_a_job_taken_with_a_finish_and_never_run_is_handed_back_on_close(
    database: Database,
) -> None:
    runner = Runner(_runtime(database), "thread-a")
    first, second = _queue(database, (kinds.URGENT, "first"), (kinds.URGENT, "second"))
    assert runner.run_next()
    assert runner.held is not None

    runner.close()

    assert runner.held is None
    assert _state(database, second) == ("queued", 0, None)
    with database.reader() as session:
        assert queue.attempts_of(session, second) == []
    assert kinds.runs() == {first: 1}


def test_a_job_in_hand_whose_lease_moved_on_finishes_nothing_and_takes_nothing(
    database: Database,
) -> None:
    settings = hub_settings(database.url, job_lease_seconds=0.2)
    runner = Runner(Runtime(settings=settings, db=database, connectors=Registry()), "thread-a")
    _, second, third = _queue(
        database, (kinds.URGENT, "first"), (kinds.URGENT, "second"), (kinds.URGENT, "third")
    )
    assert runner.run_next()
    time.sleep(0.3)
    with database.transaction() as session:
        [taken] = queue.claim(session, "thread-b", 60.0)
    assert taken.id == second

    assert runner.run_next()  # runs it; its finish is refused by the lease fence

    assert runner.held is None
    assert _state(database, second) == ("running", 2, "thread-b")
    assert _state(database, third) == ("queued", 0, None)


def test_a_handler_finishing_its_own_job_claims_no_next_one_and_a_crash_after_it_loses_none(
    database: Database,
) -> None:
    # Only the worker's finish after the handler returned takes the next job: one taken by a
    # finish inside the handler would have its lease running while the handler still works.
    runner = Runner(_runtime(database), "thread-a")
    crashed, bulk = _queue(database, (kinds.FINISH_THEN_CRASH, "crash"), (kinds.BULK, "bulk"))

    assert runner.run_next()

    assert _state(database, crashed) == ("done", 1, None), "its finish stands"
    assert runner.held is None
    assert _state(database, bulk) == ("queued", 0, None)
    assert runner.run_next()
    assert _state(database, bulk) == ("done", 1, None)
    assert kinds.runs() == {crashed: 1, bulk: 1}


def test_a_job_in_hand_stays_in_hand_when_the_sweep_before_it_fails(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = Runner(_runtime(database), "thread-a")
    first, second = _queue(database, (kinds.URGENT, "first"), (kinds.URGENT, "second"))
    assert runner.run_next()
    assert runner.held is not None and runner.held.id == second

    def down(*_: Any, **__: Any) -> int:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(queue, "sweep_expired", down)
    with pytest.raises(ConnectionError):
        runner.run_next(sweep=True)
    monkeypatch.undo()

    assert runner.held is not None and runner.held.id == second
    assert runner.run_next(sweep=True)
    assert _state(database, second) == ("done", 1, None)
    assert kinds.runs() == {first: 1, second: 1}


def test_a_stopped_worker_leaves_no_job_running(database: Database) -> None:
    runtime = _runtime(database)
    ids = _queue(database, *((kinds.URGENT, f"urgent-{n}") for n in range(200)))
    worker = Worker(runtime)
    worker.start()
    deadline = time.monotonic() + 30
    while len(kinds.runs()) < 20 and time.monotonic() < deadline:
        time.sleep(0.001)
    worker.stop()

    states = [_state(database, job_id) for job_id in ids]
    assert 20 <= sum(1 for s in states if s[0] == "done") < 200
    assert {s for s in states if s[0] != "done"} == {("queued", 0, None)}
    assert all(s == ("done", 1, None) for s in states if s[0] == "done")
