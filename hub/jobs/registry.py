"""Job kinds and their handlers. Each domain's `tasks.py` registers its kinds at import."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session

from hub.jobs.models import Job

if TYPE_CHECKING:
    from hub.jobs.context import JobContext

Handler = Callable[["JobContext"], None]
DeadHook = Callable[[Session, Job, str], None]


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    handler: Handler
    on_dead: DeadHook | None = None


KINDS: dict[str, JobKind] = {}


def job_handler(name: str, *, on_dead: DeadHook | None = None) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of job kind `name`."""

    def register(func: Handler) -> Handler:
        if name in KINDS and KINDS[name].handler is not func:
            raise ValueError(f"job kind {name!r} registered twice")
        KINDS[name] = JobKind(name, func, on_dead)
        return func

    return register
