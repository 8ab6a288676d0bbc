"""Applying the Alembic migrations from inside the hub (`hub migrate`, `hub serve`, tests).

Several hosts may start `hub serve` at once with a new migration: without a lock each would
apply it and all but one would fail midway (a table or version row already there). So every
upgrade first takes a lock the database's users share (a Postgres advisory lock, or a lock
file beside an SQLite database); the others wait, then find the schema at head and do nothing.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config

from alembic import command

ROOT = Path(__file__).resolve().parent.parent

# The advisory lock's key: any fixed 64-bit number no other part of the hub uses.
MIGRATION_LOCK_KEY = 0x6875625F6D6967  # "hub_mig"


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest schema; a no-op when it is there already.
    Waits while another process migrates the same database."""
    with migration_lock(url):
        command.upgrade(alembic_config(url), "head")


@contextmanager
def migration_lock(url: str) -> Iterator[None]:
    """Hold the database's migration lock for the block, waiting as long as another holds it."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        with _advisory_lock(url):
            yield
    elif parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        with _file_lock(Path(f"{parsed.database}.migrate.lock")):
            yield
    else:
        yield  # an in-memory database has one user


@contextmanager
def _advisory_lock(url: str) -> Iterator[None]:
    # A session lock on a connection of its own, in autocommit: it outlives Alembic's own
    # transactions, and a process that dies mid-migration drops it with its connection.
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_lock(MIGRATION_LOCK_KEY)))
            try:
                yield
            finally:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(MIGRATION_LOCK_KEY)))
    finally:
        engine.dispose()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
