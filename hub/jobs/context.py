"""What a job handler is given: the runtime, its job, and the way to finish it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from hub.jobs import queue, registry
from hub.jobs.models import Job
from hub.runtime import Runtime


@dataclass(frozen=True, slots=True)
class NextClaim:
    """How the worker thread running a job claims its next one when the job finishes alone:
    as `worker`, within its lane (`max_priority`), and only while `wanted()` (not once the
    thread is told to stop)."""

    worker: str
    max_priority: int | None
    wanted: Callable[[], bool]


@dataclass
class JobContext:
    runtime: Runtime
    job: Job
    finished: bool = False
    then: NextClaim | None = None
    # The job claimed by the statement that finished this one (`finish_alone` with `then`).
    next_job: Job | None = None

    def finish(self, session: Session) -> None:
        """Mark the job done inside the transaction that applies its effects, so the effects
        and the completion commit together or not at all (and not at all if the lease is lost)."""
        queue.complete(session, self.job)
        if registry.wants_done_hooks(self.job):
            for hook in registry.done_hooks():
                hook(session, self.job)
        self.finished = True

    def finish_alone(self) -> None:
        """Mark the job done in a transaction of its own (a handler with nothing to commit). A
        job that never failed has no done hook to run, so it is finished on a plain connection:
        one statement and a commit, no ORM session."""
        if registry.wants_done_hooks(self.job):
            with self.runtime.db.transaction() as session:
                self.finish(session)
            return
        with self.runtime.db.connect(one_statement=queue.FINISH_IS_ONE_STATEMENT) as connection:
            queue.complete(connection, self.job)
        self.finished = True

    def finish_returned(self) -> None:
        """`finish_alone` for a handler that has returned (the worker's own finish, never a
        handler's): with `then`, the statement that finishes the job also claims the worker's
        next one (`next_job`), saving the claim's own round trip and transaction. Only once the
        handler is over: a job claimed mid-handler would have its lease running while the
        handler still works."""
        then = self.then
        if then is None or not then.wanted() or registry.wants_done_hooks(self.job):
            self.finish_alone()
            return
        settings = self.runtime.settings
        with self.runtime.db.connect(one_statement=queue.FINISH_IS_ONE_STATEMENT) as connection:
            claimed = queue.complete_and_claim(
                connection,
                self.job,
                then.worker,
                settings.job_lease_seconds,
                max_attempts=settings.job_max_attempts,
                max_priority=then.max_priority,
            )
        # Recorded once committed: on SQLite the finish and the claim commit as the block ends,
        # and a claim whose commit failed is not this worker's.
        self.next_job = claimed
        self.finished = True
