"""A `LeasedTokenStore` in memory, for a connector used by the threads of one process (scripts,
tests). The hub shares its database's store across processes instead."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping


class LocalTokenStore:
    """Credentials and renewal leases in dicts, guarded by one lock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, dict[str, str]] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> Mapping[str, str] | None:
        with self._lock:
            value = self._values.get(key)
            return dict(value) if value is not None else None

    def save(self, key: str, value: Mapping[str, str]) -> None:
        with self._lock:
            self._values[key] = dict(value)

    def acquire(self, key: str, owner: str, seconds: float) -> bool:
        with self._lock:
            now = self._clock()
            holder = self._leases.get(key)
            if holder is not None and holder[0] != owner and holder[1] > now:
                return False
            self._leases[key] = (owner, now + seconds)
            return True

    def release(self, key: str, owner: str) -> None:
        with self._lock:
            holder = self._leases.get(key)
            if holder is not None and holder[0] == owner:
                del self._leases[key]

    def compare_and_set(
        self, key: str, expected: Mapping[str, str] | None, value: Mapping[str, str]
    ) -> bool:
        with self._lock:
            current = self._values.get(key)
            if (dict(expected) if expected is not None else None) != current:
                return False
            self._values[key] = dict(value)
            return True
