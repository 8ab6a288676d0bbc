"""The database: one engine per process, and the transaction scopes the rest of the hub uses.

Services never commit. `Database.transaction()` is the one place a unit of work commits (or
rolls back on any exception); request handlers and job wrappers open it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Insert, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

T = TypeVar("T")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine tuned for the backend: SQLite in WAL mode with immediate write transactions,
    or a pooled Postgres connection."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _tune_sqlite(engine)
        return engine
    # No pre-ping: it cost a round trip per unit of work. A connection the server dropped fails
    # its unit of work once (a job retries; a request answers 500), and SQLAlchemy then throws
    # away every pooled connection of that age; pool_recycle keeps idle ones from going stale.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        # pysqlite's own transaction handling would start deferred transactions whose later
        # upgrade to a write lock fails with "database is locked"; we emit BEGIN ourselves.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


# SQLite lets one writer in at a time and makes the others poll with growing sleeps (busy
# timeout); threads of one process queue here instead, and the next writer starts the moment
# the last one commits. One lock per database file, shared by every engine on it.
_sqlite_writers: dict[str, threading.RLock] = {}
_sqlite_writers_guard = threading.Lock()


def _sqlite_writer(url: str) -> threading.RLock:
    with _sqlite_writers_guard:
        return _sqlite_writers.setdefault(url, threading.RLock())


class Database:
    """The engine and the two kinds of scope: a writing transaction and a read-only one."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.is_sqlite = url.startswith("sqlite")
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._reader = self.engine.execution_options(sqlite_begin="DEFERRED")
        self._writer: AbstractContextManager[Any] = (
            _sqlite_writer(url) if self.is_sqlite else nullcontext()
        )
        self._group = _GroupCommit(self)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back when it raises."""
        with self._writer, Session(self.engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A read-only scope: never takes SQLite's write lock."""
        with Session(self._reader, expire_on_commit=False) as session:
            with session.begin():
                yield session

    def run_batched(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in a committed transaction, like `transaction()`, but sharing its
        commit with other threads' work queued at the same moment (group commit).

        A commit costs more than a small insert (SQLite: one writer at a time; Postgres: a
        round trip and a WAL flush), so concurrent short writers such as webhooks arriving
        together are committed as one group; each caller returns only after the commit that
        holds its rows. `work` must touch nothing but the session: if any work in a group
        fails, the group is rolled back and each work runs again alone, so one caller's error
        never fails another's.
        """
        return self._group.run(work)

    def dispose(self) -> None:
        self.engine.dispose()


_MAX_GROUP = 64


@dataclass(eq=False)
class _Pending:
    work: Callable[[Session], Any]
    done: bool = False
    value: Any = None
    error: BaseException | None = None


class _GroupCommit:
    """Leader/follower group commit: the first waiting thread runs every queued work in one
    transaction while the others wait; whoever arrives meanwhile is in the next group."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.queue: list[_Pending] = []
        self.leading = False
        self.changed = threading.Condition()

    def run(self, work: Callable[[Session], T]) -> T:
        pending = _Pending(work)
        with self.changed:
            self.queue.append(pending)
            while not pending.done:
                if self.leading:
                    self.changed.wait()
                    continue
                self.leading = True
                group, self.queue = self.queue[:_MAX_GROUP], self.queue[_MAX_GROUP:]
                self.changed.release()
                try:
                    self._commit(group)
                finally:
                    self.changed.acquire()
                    self.leading = False
                    self.changed.notify_all()
        if pending.error is not None:
            raise pending.error
        return cast(T, pending.value)

    def _commit(self, group: list[_Pending]) -> None:
        try:
            try:
                with self.database.transaction() as session:
                    values = [pending.work(session) for pending in group]
            except Exception as exc:
                if len(group) == 1:
                    group[0].error = exc
                    group[0].done = True
                else:
                    for pending in group:
                        self._alone(pending)
            else:
                for pending, value in zip(group, values, strict=True):
                    pending.value = value
                    pending.done = True
        finally:
            for pending in group:
                if not pending.done:
                    pending.error = pending.error or RuntimeError("group commit interrupted")
                    pending.done = True

    def _alone(self, pending: _Pending) -> None:
        try:
            with self.database.transaction() as session:
                pending.value = pending.work(session)
        except Exception as exc:
            pending.error = exc
        pending.done = True


def insert_ignore(
    session: Session, model: type[Any], values: dict[str, Any], conflict_columns: list[str]
) -> bool:
    """`INSERT ... ON CONFLICT DO NOTHING`; True when the row was inserted.

    The database settles races between concurrent inserts of the same key, so callers never
    read-then-insert.
    """
    return (
        insert_ignore_returning(session, model, values, conflict_columns, conflict_columns[0])
        is not None
    )


def insert_ignore_returning(
    session: Session,
    model: type[Any],
    values: dict[str, Any],
    conflict_columns: list[str],
    returning: str,
) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING RETURNING returning`: the new row's `returning`
    column (its id, say), or None when a row with that key existed.

    A row comes back only when one was inserted. `rowcount` cannot tell: psycopg 3 reports -1
    for INSERT ... ON CONFLICT DO NOTHING, which made every duplicate look new on Postgres.
    """
    stmt = _insert_ignore_statement(
        session.get_bind().dialect.name, model.__table__, tuple(conflict_columns), returning
    )
    return session.execute(stmt, values).scalar()


@functools.cache
def _insert_ignore_statement(
    dialect: str, table: Table, conflict_columns: tuple[str, ...], returning: str
) -> Insert:
    # One statement per table and dialect, the values bound at execution: building it per call
    # (ORM-enabled, values inlined) cost more than the INSERT itself on the webhook path.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=list(conflict_columns))
        .returning(table.c[returning])
    )
