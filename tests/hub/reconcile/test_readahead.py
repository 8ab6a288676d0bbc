"""Reading the next page while the current one is applied: same pages, same order, a failure
where it would have come, and never more than one page ahead."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator

import pytest

from hub.reconcile.readahead import read_ahead


class Listing:
    """Pages 0..n-1, recording how many were read and whether the listing was closed."""

    def __init__(self, n: int, *, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.read = 0
        self.closed = threading.Event()

    def pages(self) -> Iterator[int]:
        try:
            for page in range(self.n):
                if page == self.fail_at:
                    raise ConnectionError(f"page {page} could not be read")
                self.read += 1
                yield page
        finally:
            self.closed.set()


def test_every_page_arrives_in_order() -> None:
    listing = Listing(5)
    with read_ahead(listing.pages()) as pages:
        assert list(pages) == [0, 1, 2, 3, 4]


def test_a_page_that_cannot_be_read_fails_after_the_pages_before_it() -> None:
    listing = Listing(5, fail_at=2)
    got: list[int] = []
    with pytest.raises(ConnectionError, match="page 2"), read_ahead(listing.pages()) as pages:
        for page in pages:
            got.append(page)
    assert got == [0, 1]


def test_at_most_one_page_is_read_ahead() -> None:
    listing = Listing(6)
    with read_ahead(listing.pages()) as pages:
        for page in pages:
            time.sleep(0.05)  # time for the reader to run ahead, were it allowed to
            assert listing.read <= page + 2


def test_reading_stops_when_the_caller_stops() -> None:
    listing = Listing(100)
    with pytest.raises(RuntimeError), read_ahead(listing.pages()) as pages:
        for _ in pages:
            raise RuntimeError("the page could not be applied")
    assert listing.closed.wait(5)
    assert listing.read <= 2


def test_the_reader_sees_the_callers_context() -> None:
    job = contextvars.ContextVar("job", default="none")
    seen: list[str] = []

    def pages() -> Iterator[int]:
        seen.append(job.get())
        yield 0

    job.set("job-1")
    with read_ahead(pages()) as read:
        assert list(read) == [0]
    assert seen == ["job-1"]
