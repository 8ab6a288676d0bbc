"""Reading a channel's next page while the hub applies the current one.

A reconciliation run spends as long waiting for each page of the channel's listing as applying
it; reading the next page on a thread of its own while the current one is applied takes the
wait off the run. The pages still reach the caller one at a time, in the listing's order, and
a failure to read one reaches the caller where that page would have: after every page before
it was handed over, so a run that fails applies exactly what it applied before.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")

# How often a thread blocked on the other side looks whether the caller has gone.
_POLL_SECONDS = 0.1


class _Done:
    """The listing ended (`error` None) or failed reading its next page."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class _Reader(Generic[T]):
    """One thread reading `pages` at most one page ahead of the caller."""

    def __init__(self, pages: Iterator[T]) -> None:
        self._pages = pages
        self._handed: queue.SimpleQueue[T | _Done] = queue.SimpleQueue()
        # Released each time the caller takes a page: the thread reads the next only then.
        self._wanted = threading.Semaphore(1)
        self._stop = threading.Event()

    def start(self, name: str) -> None:
        # The caller's context goes along: log fields bound for the job and a connector
        # call deadline hold on the thread as they would have on the caller's.
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(self._read,), name=name, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _read(self) -> None:
        try:
            while self._want():
                try:
                    page = next(self._pages)
                except StopIteration:
                    self._handed.put(_Done())
                    return
                self._handed.put(page)
        except BaseException as exc:
            self._handed.put(_Done(exc))
        finally:
            close = getattr(self._pages, "close", None)
            if close is not None:
                close()

    def _want(self) -> bool:
        """Wait until the caller took the last page read; False once the caller has gone."""
        while not self._stop.is_set():
            if self._wanted.acquire(timeout=_POLL_SECONDS):
                return not self._stop.is_set()
        return False

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._handed.get()
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            self._wanted.release()
            yield item


@contextmanager
def read_ahead(pages: Iterator[T], *, name: str = "read-ahead") -> Iterator[Iterator[T]]:
    """`pages`, each read on a thread while the caller works on the one before.

    At most one page is read ahead. When the block ends, early or by an error, the thread
    reads no further page; a read under way ends by its own timeout and is dropped.
    """
    reader = _Reader(pages)
    reader.start(name)
    try:
        yield iter(reader)
    finally:
        reader.stop()
