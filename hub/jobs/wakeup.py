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
    """Idle threads wait here for work to be queued; a wake-up wakes one of them, not all.

    Waking every idle thread of every worker process for each queued job had all but one of
    them claim nothing, a statement each. A wake-up is kept until a thread takes it, so one
    sent while every thread is busy is not lost: the next thread to wait takes it at once. At
    most one is kept: it means "something was queued since a thread last looked", and the
    thread that looks passes it on when it found work (`Worker`), so jobs queued together are
    still taken in parallel. `notify(everyone=True)` wakes all of them (to stop)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._pending = False
        self._broadcasts = 0

    def notify(self, *, everyone: bool = False) -> None:
        with self._changed:
            if everyone:
                self._broadcasts += 1
                self._changed.notify_all()
            else:
                self._pending = True
                self._changed.notify()

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` for a wake-up; True when woken (not timed out)."""
        with self._changed:
            seen = self._broadcasts
            woken = self._changed.wait_for(
                lambda: self._pending or self._broadcasts != seen, timeout
            )
            if self._pending:
                self._pending = False
                return True
            return woken


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
