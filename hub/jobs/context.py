"""What a job handler is given: the runtime, its job, and the way to finish it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from hub.jobs import queue, registry
from hub.jobs.models import Job
from hub.runtime import Runtime


@dataclass
class JobContext:
    runtime: Runtime
    job: Job
    finished: bool = False

    def finish(self, session: Session) -> None:
        """Mark the job done inside the transaction that applies its effects, so the effects
        and the completion commit together or not at all (and not at all if the lease is lost)."""
        queue.complete(session, self.job)
        if registry.wants_done_hooks(self.job):
            for hook in registry.done_hooks():
                hook(session, self.job)
        self.finished = True

    def finish_alone(self) -> None:
        """Mark the job done in a transaction of its own (a handler that returned without
        finishing: it had nothing to commit). A job that never failed has no done hook to run,
        so it is finished on a plain connection: one statement and a commit, no ORM session."""
        if registry.wants_done_hooks(self.job):
            with self.runtime.db.transaction() as session:
                self.finish(session)
            return
        with self.runtime.db.connect(one_statement=queue.FINISH_IS_ONE_STATEMENT) as connection:
            queue.complete(connection, self.job)
        self.finished = True
