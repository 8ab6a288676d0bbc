"""What the benchmarks share: a scratch Postgres database per run, and a count of the round
trips a piece of work makes."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from hub.db import Database


@contextmanager
def postgres_database(prefix: str) -> Iterator[str | None]:
    """A scratch Postgres database, migrated, dropped afterwards; None if there is no Postgres."""
    import sqlalchemy as sa

    from hub.migrate import upgrade

    admin_url = os.environ.get(
        "HUB_BENCH_POSTGRES_URL",
        os.environ.get(
            "HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError:
        admin.dispose()
        yield None
        return
    name = f"bench_{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class RoundTrips:
    """What a piece of work sent to the database, counted by SQLAlchemy's events and by
    `hub.db.watching_prebuilt` (the prebuilt statements sent on the DBAPI cursor itself)."""

    statements: int = 0
    commits: int = 0
    rollbacks: int = 0
    pings: int = 0  # a pre-pinged pool's check at each checkout

    @property
    def total(self) -> int:
        """Round trips: every statement, commit, rollback and ping is one (psycopg opens a
        transaction with the first statement, so BEGIN costs none)."""
        return self.statements + self.commits + self.rollbacks + self.pings


@contextmanager
def round_trips(database: Database) -> Iterator[RoundTrips]:
    """Count what `database` sends while the block runs (any thread): through its transactions'
    engine, through the autocommit engine of its one-statement units (where a commit or a
    rollback sends nothing: only statements count), and as prebuilt statements on either."""
    from sqlalchemy import event

    from hub.db import watching_prebuilt

    counts = RoundTrips()
    engine, *autocommit = database.engines
    pools = {each.pool for each in database.engines}
    pre_ping = bool(getattr(engine.pool, "_pre_ping", False))
    lock = threading.Lock()

    def statement(*_: Any) -> None:
        with lock:
            counts.statements += 1

    def prebuilt(connection: Connection, *_: Any) -> None:
        if connection.engine.pool in pools:
            statement()

    def commit(*_: Any) -> None:
        with lock:
            counts.commits += 1

    def rollback(*_: Any) -> None:
        with lock:
            counts.rollbacks += 1

    def checkout(*_: Any) -> None:
        if pre_ping:
            with lock:
                counts.pings += 1

    hooks: list[tuple[Any, str, Any]] = [
        (engine, "before_cursor_execute", statement),
        (engine, "commit", commit),
        (engine, "rollback", rollback),
        (engine.pool, "checkout", checkout),
        *((each, "before_cursor_execute", statement) for each in autocommit),
    ]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        with watching_prebuilt(prebuilt):
            yield counts
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)
