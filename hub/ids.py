"""Identifiers: time-ordered, globally unique, safe to hand to external systems."""

from __future__ import annotations

import os
import time


def new_id(prefix: str) -> str:
    """A UUIDv7-style id as `prefix_` + 26 Crockford base32 characters.

    Sorting by id sorts by creation time (to the millisecond), which keeps cursor pagination and
    index inserts cheap; the random part keeps ids unique across processes and databases, so an
    id sent to a 3PL as an external order id never collides with another hub's.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(alphabet[rem])
    return f"{prefix}_{''.join(reversed(chars))}"
