"""Rate limits a connector declares, and the limiter that keeps its calls within them.

A connector names the limits its system documents (`RateLimit`) and asks a `RateLimiter` for a
slot before each call. `LocalRateLimiter` keeps one process within them; the hub hands its
connectors a limiter shared by every process (kept in its database), so N workers together
stay within what the external API allows instead of collecting 429s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from connectors.base import Retriable


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `requests` calls per `per_seconds` under the name `key` (for example
    `depop`, or `depop:listings` for a stricter limit on some endpoints)."""

    key: str
    requests: int
    per_seconds: float

    @property
    def interval(self) -> float:
        """Seconds between two calls when the limit is used evenly."""
        return self.per_seconds / self.requests


class RateLimiter(Protocol):
    def acquire(self, limit: RateLimit, *, max_wait: float) -> None:
        """Return once one more call under `limit` is allowed. When that is more than
        `max_wait` seconds away, raise `Retriable` with `after` set instead of waiting."""
        ...


class NoRateLimit:
    """No limit at all: for a simulator, which enforces none."""

    def acquire(self, limit: RateLimit, *, max_wait: float) -> None:
        return None


class LocalRateLimiter:
    """Slots handed out evenly (a virtual schedule per key), for the threads of one process."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, limit: RateLimit, *, max_wait: float) -> None:
        with self._lock:
            now = self._clock()
            # Calls are spaced evenly, never bunched: then no window of `per_seconds`, wherever
            # the system starts counting it, holds more than `requests` calls.
            slot = max(self._next.get(limit.key, now), now)
            wait = slot - now
            if wait > max_wait:
                raise Retriable(
                    f"{limit.key}: over {limit.requests} calls per {limit.per_seconds:g} s",
                    after=wait,
                )
            self._next[limit.key] = slot + limit.interval
        if wait > 0:
            self._sleep(wait)
