"""Waking idle workers the moment a job is queued, instead of at their next poll.

A transaction that queues a job sends `NOTIFY hub_jobs` on Postgres (delivered at commit, and
only if it commits), which wakes the workers of other processes through their LISTEN
connection; the workers of this process are woken directly once it commits, on every backend.
Polling stays as the fallback for anything a notification misses.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

CHANNEL = "hub_jobs"
_FLAG = "hub.jobs.queued"


class Wakeup:
    """A generation counter idle threads wait on: a wait returns as soon as the generation
    moves past the one the thread saw before it last looked for work."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Wait up to `timeout` for a wake-up after generation `seen`; True when woken."""
        with self._changed:
            return self._changed.wait_for(lambda: self._generation != seen, timeout)


WAKEUP = Wakeup()


def after_commit(session: Session) -> None:
    """Wake the workers when `session`'s transaction commits (not if it rolls back)."""
    session.info[_FLAG] = True


@event.listens_for(Session, "before_commit")
def _notify_others(session: Session) -> None:
    if session.info.get(_FLAG) and session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))


@event.listens_for(Session, "after_commit")
def _wake_here(session: Session) -> None:
    if session.info.pop(_FLAG, False):
        WAKEUP.notify()


@event.listens_for(Session, "after_rollback")
def _forget(session: Session, *_: Any) -> None:
    session.info.pop(_FLAG, None)
