"""Job kinds and their handlers, what happens when one dies, and the schedules that enqueue
them. Each domain's `tasks.py` registers its kinds at import; the job engine knows no domain.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

from hub.config import HubSettings
from hub.jobs import priorities, queue
from hub.jobs.models import Job
from hub.jobs.priorities import Priority
from hub.jobs.schedules import Schedule, Trigger, slot_key
from hub.runtime import Runtime

if TYPE_CHECKING:
    from hub.jobs.context import JobContext

Handler = Callable[["JobContext"], None]
# Runs in the transaction that marks the job dead: it records what the failure means.
DeadHook = Callable[[Session, Job, str], None]
# Runs in the transaction that marks done a job that had failed before: it records what its
# success means.
DoneHook = Callable[[Session, Job], None]


class TryAgain(Exception):
    """A handler's way to say "not now": the job is retried on the usual backoff, no sooner
    than `after` seconds, until its attempts run out. Domains raise it or subclass it."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


@dataclass(frozen=True, slots=True)
class Periodic:
    """A kind that runs on its own: `trigger(settings)` says when, `name` names the schedule."""

    name: str
    trigger: Callable[[HubSettings], Trigger]


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    handler: Handler
    on_dead: DeadHook | None = None
    periodic: Periodic | None = None
    priority: int = Priority.DEFAULT


KINDS: dict[str, JobKind] = {}
_default_on_dead: list[DeadHook] = []
_on_done: list[DoneHook] = []
# Domains whose schedules depend on the runtime (one reconciliation per enabled channel).
_SCHEDULERS: list[Callable[[Runtime], Iterable[Schedule]]] = []


def job_handler(
    name: str,
    *,
    on_dead: DeadHook | None = None,
    periodic: Periodic | None = None,
    priority: int = Priority.DEFAULT,
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of job kind `name`; `on_dead` replaces
    the default for this kind; `periodic` makes the scheduler enqueue it on its own; `priority`
    places its jobs in the queue (lower sooner; HUB_JOB_PRIORITIES overrides it)."""

    def register(func: Handler) -> Handler:
        if name in KINDS and KINDS[name].handler.__wrapped__ is not func:  # type: ignore[attr-defined]
            raise ValueError(f"job kind {name!r} registered twice")
        KINDS[name] = JobKind(name, _finishing(func), on_dead, periodic, int(priority))
        priorities.declare(name, priority)
        return func

    return register


def _finishing(func: Handler) -> Handler:
    """`func`, then the job marked done with the done hooks if `func` returned without doing
    so (nothing left to do is a success too)."""

    @functools.wraps(func)
    def run(ctx: JobContext) -> None:
        func(ctx)
        if not ctx.finished:
            ctx.finish_returned()

    return run


def default_on_dead(hook: DeadHook) -> DeadHook:
    """Register what a dead job of a kind without its own `on_dead` means (one hook)."""
    if _default_on_dead and _default_on_dead[0] is not hook:
        raise ValueError("a default on_dead hook is registered already")
    _default_on_dead[:] = [hook]
    return hook


def on_dead(kind: str) -> DeadHook | None:
    """The hook for a dead job of `kind`: its own, else the default, else none."""
    found = KINDS.get(kind)
    if found is not None and found.on_dead is not None:
        return found.on_dead
    return _default_on_dead[0] if _default_on_dead else None


def on_done(hook: DoneHook) -> DoneHook:
    """Register what the success of a job that had failed before means to a domain (a flag its
    earlier death raised is resolved, say); run as the handler finishes the job, in the
    transaction of its effects. A job that never failed (no `last_error`) has nothing to undo
    and runs no hook, which lets the worker finish it without an ORM session."""
    if hook not in _on_done:
        _on_done.append(hook)
    return hook


def done_hooks() -> tuple[DoneHook, ...]:
    return tuple(_on_done)


def wants_done_hooks(job: Job) -> bool:
    """Whether finishing `job` runs the done hooks: only once it has failed before."""
    return job.last_error is not None and bool(_on_done)


def schedules(
    provider: Callable[[Runtime], Iterable[Schedule]],
) -> Callable[[Runtime], Iterable[Schedule]]:
    """Register a provider of schedules that depend on the runtime."""
    if provider not in _SCHEDULERS:
        _SCHEDULERS.append(provider)
    return provider


def all_schedules(runtime: Runtime) -> list[Schedule]:
    """Every schedule: one per periodic kind, then those the providers give."""
    found = [
        Schedule(kind.periodic.name, kind.periodic.trigger(runtime.settings), _enqueue(kind.name))
        for kind in KINDS.values()
        if kind.periodic is not None
    ]
    for provider in _SCHEDULERS:
        found.extend(provider(runtime))
    return found


def _enqueue(kind: str) -> Callable[[Session, datetime], None]:
    def enqueue(session: Session, slot: datetime) -> None:
        queue.enqueue(session, kind, slot_key(kind, slot))

    return enqueue
