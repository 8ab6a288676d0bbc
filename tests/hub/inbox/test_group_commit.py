"""`Database.run_batched`, the commit webhooks share on SQLite: every caller gets its own result
or its own error, and one caller's failure never undoes another's rows."""

from __future__ import annotations

import threading

from sqlmodel import Session

from hub.db import Database
from hub.jobs import queue

WRITERS = 24
FAILING = {5, 17}


def test_concurrent_batched_writers_each_get_their_own_outcome(database: Database) -> None:
    gate = threading.Barrier(WRITERS)
    outcomes: dict[int, object] = {}
    lock = threading.Lock()

    def writer(n: int) -> None:
        def work(session: Session) -> int:
            queue.enqueue(session, "test.count", f"writer-{n}")
            if n in FAILING:
                raise ValueError(f"writer {n} failed")
            return n * 10

        gate.wait()
        try:
            outcome: object = database.run_batched(work)
        except ValueError as exc:
            outcome = str(exc)
        with lock:
            outcomes[n] = outcome

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes == {
        n: (f"writer {n} failed" if n in FAILING else n * 10) for n in range(WRITERS)
    }
    with database.reader() as session:
        keys = {job.idempotency_key for job in queue.list_jobs(session, limit=100)}
    assert keys == {f"writer-{n}" for n in range(WRITERS) if n not in FAILING}


def test_a_batched_write_sees_the_rows_of_earlier_writes_in_its_group(
    database: Database,
) -> None:
    with database.transaction() as session:
        queue.enqueue(session, "test.count", "existing")

    def work(session: Session) -> bool:
        return queue.enqueue(session, "test.count", "existing")

    assert database.run_batched(work) is False
