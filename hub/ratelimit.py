"""`connectors.ratelimit.RateLimiter` on the hub's database: the channels' rate limits held by
every worker thread of every process together.

Each limit key has one row holding when its next call may go. A call reserves its slot with
one atomic upsert (a row lock on Postgres, SQLite's single writer): the slot is the later of
the row's time and now, and the row moves one interval on. Slots are spaced evenly, as the
local limiter spaces them, so no window of the limit's length, wherever the channel starts
counting it, holds more calls than the limit allows, however many processes ask. A call whose
slot is further off than it may wait reserves nothing and is retried later instead.

Times are Unix seconds from the callers' clocks, as the hub's leases are: hosts sharing a
database must keep their clocks in step (NTP).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Double, case, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

from connectors.base import Retriable
from connectors.ratelimit import RateLimit
from hub.db import Database


class RateLimitSlot(SQLModel, table=True):
    """When the next call under one rate limit key may go."""

    __tablename__ = "rate_limit_slots"

    key: str = Field(primary_key=True, max_length=128)
    next_at: float = Field(sa_type=Double)  # Unix seconds


class DatabaseRateLimiter:
    """Slots handed out evenly per key, from a schedule every process shares."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = db
        self._clock = clock
        self._sleep = sleep
        self._insert = postgresql.insert if db.is_postgres else sqlite.insert

    def acquire(self, limit: RateLimit, *, max_wait: float) -> None:
        now = self._clock()
        table = RateLimitSlot.__table__  # type: ignore[attr-defined]
        start = case((table.c.next_at > now, table.c.next_at), else_=now)
        stmt = (
            self._insert(table)
            .values(key=limit.key, next_at=now + limit.interval)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={"next_at": start + limit.interval},
                where=start - now <= max_wait,
            )
            .returning(table.c.next_at)
        )
        with self._db.transaction() as session:
            if self._db.is_postgres:
                # A reservation lost in a database crash lets one call go early at worst, so
                # its commit need not wait for the disk (the slowest part of this call).
                session.execute(text("SET LOCAL synchronous_commit = off"))
            reserved = session.execute(stmt).scalar()
            if reserved is None:
                busy_until = session.execute(
                    select(table.c.next_at).where(table.c.key == limit.key)
                ).scalar_one()
        if reserved is None:
            raise Retriable(
                f"{limit.key}: over {limit.requests} calls per {limit.per_seconds:g} s",
                after=busy_until - now,
            )
        wait = float(reserved) - limit.interval - now
        if wait > 0:
            self._sleep(wait)
