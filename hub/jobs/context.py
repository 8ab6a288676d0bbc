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
        for hook in registry.done_hooks():
            hook(session, self.job)
        self.finished = True
