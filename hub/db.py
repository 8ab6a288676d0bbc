"""The database: one engine per process, and the transaction scopes the rest of the hub uses.

Services never commit. `Database.transaction()` is the one place a unit of work commits (or
rolls back on any exception); request handlers and job wrappers open it.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from psycopg import pq
from psycopg.types.json import Json
from sqlalchemy import Insert, Select, String, Table, any_, bindparam, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, configure_mappers, instrumentation
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import ColumnElement, TextClause
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
        # Connections of their own, always in autocommit, so a checkout switches nothing and a
        # checkin has no transaction to roll back (no connection is opened until one is used).
        # No cap beyond the pool: each worker thread keeps one (`pinned`), so a cap would leave
        # the threads past it waiting for a connection that is never handed back.
        self._autocommit = (
            create_engine(
                url,
                isolation_level="AUTOCOMMIT",
                pool_reset_on_return=None,
                pool_size=pool_size,
                max_overflow=-1,
                pool_recycle=1800,
            )
            if self.is_postgres
            else self.engine
        )
        self._writer: AbstractContextManager[Any] = (
            _sqlite_writer(url) if self.is_sqlite else nullcontext()
        )
        self._group = _GroupCommit(self)
        self._pins = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back when it raises."""
        with self._writer, Session(self.engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    @contextmanager
    def connect(self, *, one_statement: bool = False) -> Iterator[Connection]:
        """A unit of work on a plain Core connection, without an ORM session: for prebuilt
        statements run often enough that the session's own bookkeeping (identity map, flush,
        events) costs more than the SQL, such as the job engine's claim and finish. Commits
        when the block ends, rolls back when it raises; on SQLite it queues for the writer.

        With `one_statement` (a block that sends exactly one statement) Postgres runs it in
        autocommit: a single statement is a transaction of its own, as atomic and as durable,
        without the BEGIN and COMMIT round trips around it."""
        if one_statement and self.is_postgres:
            pin: _Pin | None = getattr(self._pins, "pin", None)
            if pin is None:
                with self._autocommit.connect() as connection:
                    yield connection
                return
            connection = pin.take()
            try:
                yield connection
            except BaseException:
                pin.settle(failed=True)
                raise
            pin.settle(failed=False)
            return
        with self._writer, self.engine.begin() as connection:
            yield connection

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Keep one autocommit connection for this thread while the block runs, for its
        one-statement units (`connect(one_statement=True)`): a worker thread claims and finishes
        a job on it without two pool checkouts and checkins per job, which cost more CPU than
        the job engine's own code. A connection found lost (invalidated, or left inside a
        statement by an exception) is replaced at the next unit, and one older than the pool's
        recycle age is handed back and a fresh one taken, as the pool would. Reentrant: an inner
        block keeps the outer one's connection. A thread holds its connection for the whole
        block: the autocommit pool has no overflow cap, so any number of threads may be pinned
        (each is one Postgres connection, within the server's `max_connections`)."""
        if not self.is_postgres or getattr(self._pins, "pin", None) is not None:
            yield
            return
        pin = self._pins.pin = _Pin(self._autocommit)
        try:
            yield
        finally:
            del self._pins.pin
            pin.close()

    @contextmanager
    def read_one(self) -> Iterator[Connection]:
        """A plain connection for one read-only statement. On Postgres it is the statement
        alone in autocommit, on the thread's pinned connection when it has one: a statement
        reads one snapshot by itself, so a BEGIN and a COMMIT around it, and an ORM session,
        would add two round trips and more CPU than the read. On SQLite it is a reader
        transaction's connection (never the write lock)."""
        if self.is_postgres:
            with self.connect(one_statement=True) as connection:
                yield connection
            return
        with self._reader.begin() as connection:
            yield connection

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

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine this database sends through: the transactions' one and, on Postgres,
        the autocommit one of the one-statement units; for instruments that watch them all."""
        if self._autocommit is self.engine:
            return (self.engine,)
        return (self.engine, self._autocommit)

    def dispose(self) -> None:
        self.engine.dispose()
        self._autocommit.dispose()


_RECYCLE_SECONDS = 1800  # the pools' pool_recycle


class _Pin:
    """One thread's kept autocommit connection (`Database.pinned`), opened on first use."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Connection | None = None
        self.opened = 0.0

    def take(self) -> Connection:
        connection = self.connection
        if connection is not None and (
            connection.invalidated or time.monotonic() - self.opened > _RECYCLE_SECONDS
        ):
            self.close()
            connection = None
        if connection is None:
            connection = self.connection = self.engine.connect()
            self.opened = time.monotonic()
        return connection

    def settle(self, *, failed: bool) -> None:
        """After a unit: end SQLAlchemy's own transaction marker as a checkin would
        (autocommit: nothing to undo). After one that `failed`, drop the connection unless it
        is idle, outside any statement (a failed statement in autocommit leaves it so; one
        interrupted mid-way does not), so the next unit never inherits a half-read result; a
        unit that ended normally read its statement's result whole (psycopg fetches it all)."""
        connection = self.connection
        if connection is None or connection.invalidated:
            return
        if connection.in_transaction():
            connection.rollback()
        if not failed:
            return
        driver = connection.connection.driver_connection
        if driver is None or driver.info.transaction_status != pq.TransactionStatus.IDLE:
            connection.invalidate()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


_MAX_GROUP = 64


def _taken() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class _Pending:
    work: Callable[[Session], Any]
    done: bool = False
    value: Any = None
    error: BaseException | None = None
    # Held until its caller has something to do: its work is done, or the lead is its.
    turn: threading.Lock = field(default_factory=_taken)


class _GroupCommit:
    """Leader/follower group commit: a caller that finds nobody leading runs every queued work
    (its own first) in one transaction while the others wait; whoever arrives meanwhile is in
    the next group, whose first caller is handed the lead when that commit ends.

    Each waiting thread is woken once, when its work is done or the lead is its: waking every
    waiter at every commit (one condition for all) had a dozen threads take the GIL in turn
    only to wait again, which cost more CPU than the inserts of the group."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.queue: list[_Pending] = []
        self.leading = False
        self.guard = threading.Lock()

    def run(self, work: Callable[[Session], T]) -> T:
        pending = _Pending(work)
        with self.guard:
            self.queue.append(pending)
            lead = not self.leading
            self.leading = True
        if not lead:
            pending.turn.acquire()
        if not pending.done:
            # The lead is this caller's, and its work heads the queue: nobody else takes from
            # the queue while someone leads.
            with self.guard:
                group, self.queue = self.queue[:_MAX_GROUP], self.queue[_MAX_GROUP:]
            try:
                self._commit(group)
            finally:
                with self.guard:
                    following = self.queue[0] if self.queue else None
                    self.leading = following is not None
                if following is not None:
                    following.turn.release()
                for other in group:
                    if other is not pending:
                        other.turn.release()
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


def one_of(session: Session, column: Mapped[str], values: Sequence[str]) -> ColumnElement[bool]:
    """`column IN values`. On Postgres it is `column = ANY(:array)`: one parameter however many
    values, so a page's look-up has the same text every time and psycopg parses it once, where
    an IN of 200 parameters is rendered and parsed afresh for each page. SQLite has no arrays."""
    if session.get_bind().dialect.name != "postgresql":
        return column.in_(values)
    return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))


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


def insert_ignore_prebuilt(
    table: Table, columns: Sequence[str], conflict_columns: Sequence[str], returning: str
) -> Prebuilt:
    """`INSERT ... ON CONFLICT DO NOTHING RETURNING returning` of `columns`, every one bound,
    compiled once: for an insert made for every webhook, where SQLAlchemy's work per execution
    cost as much CPU as the database's. The rows it returns are the new row's, or none.

    Postgres' construct is used for both backends: SQLite compiles the same ON CONFLICT."""
    return Prebuilt(
        postgresql.insert(table)
        .values({name: bindparam(name) for name in columns})
        .on_conflict_do_nothing(index_elements=list(conflict_columns))
        .returning(table.c[returning])
    )


# Told of each statement a `Prebuilt` sends on the DBAPI cursor itself (on Postgres), which
# SQLAlchemy's engine events never see: for instruments such as the benchmarks' count of round
# trips. A tuple, replaced whole, so a statement sent meanwhile reads one consistent set; empty
# unless someone watches, which costs each statement one test of it.
PrebuiltListener = Callable[[Connection, str, Mapping[str, Any]], None]
_prebuilt_listeners: tuple[PrebuiltListener, ...] = ()
_prebuilt_listeners_guard = threading.Lock()


@contextmanager
def watching_prebuilt(listener: PrebuiltListener) -> Iterator[None]:
    """Call `listener(connection, sql, params)` before each statement any `Prebuilt` sends on
    the DBAPI cursor while the block runs, from whichever thread sends it. Elsewhere than on
    Postgres a `Prebuilt` runs through SQLAlchemy, whose `before_cursor_execute` event sees it,
    and `listener` is not called, so a count of both never counts a statement twice."""
    global _prebuilt_listeners
    with _prebuilt_listeners_guard:
        _prebuilt_listeners = (*_prebuilt_listeners, listener)
    try:
        yield
    finally:
        with _prebuilt_listeners_guard:
            kept = list(_prebuilt_listeners)
            kept.remove(listener)
            _prebuilt_listeners = tuple(kept)


class Prebuilt:
    """A Core statement compiled once, for the few statements run so often that SQLAlchemy's
    per-execution work (cache key, execution context, bind and result processing: about
    0.1 ms of CPU each) costs more than the database does, such as the job engine's claim and
    finish. On Postgres the SQL is sent as it was compiled on the DBAPI cursor of the Core
    connection given (same transaction, same pool); elsewhere it runs as the statement.

    Values are bound as given, so only plain ones fit: aware UTC datetimes, numbers, strings,
    bytes, and for a JSON column whatever `json.dumps` takes (sent as JSON, as SQLAlchemy
    would); returned datetimes come back in UTC, as `hub.types.UTCDateTime` gives them."""

    def __init__(self, statement: UpdateBase | TextClause | Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, dict[str, Any], frozenset[str]]] = {}
        # Of the rows returned on Postgres: column names, and the indexes of time columns.
        self._shape: tuple[tuple[str, ...], list[int]] | None = None

    def _sql(self, connection: Connection) -> tuple[str, dict[str, Any], frozenset[str]]:
        dialect = connection.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            # The statement's own constants (literal binds such as a state's name) are bound
            # once here; the caller's values complete them at each execution.
            fixed = {
                name: bind.effective_value
                for bind, name in compiled.bind_names.items()
                if not bind.required
            }
            as_json = frozenset(
                name
                for bind, name in compiled.bind_names.items()
                if isinstance(bind.type, sqltypes.JSON)
            )
            found = self._compiled[dialect.name] = (str(compiled), fixed, as_json)
        return found

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run it with `values`; the rows it returns, each a dict by column name."""
        if connection.dialect.name != "postgresql":
            result = connection.execute(self.statement, values)
            return [dict(row._mapping) for row in result] if result.returns_rows else []
        sql, fixed, as_json = self._sql(connection)
        params = {**fixed, **values}
        for name in as_json:
            if params.get(name) is not None:
                params[name] = Json(params[name])
        pooled = connection.connection
        driver = pooled.driver_connection
        assert driver is not None
        try:
            # One cursor per driver connection, kept beside it and reused: creating one costs
            # as much CPU as a simple statement's own client side. A connection is used by
            # one thread at a time, so its cursor is too.
            cursor = pooled.info.get(_CURSOR)
            if cursor is None or cursor.connection is not driver or cursor.closed:
                cursor = pooled.info[_CURSOR] = driver.cursor()
            if _prebuilt_listeners:
                for listener in _prebuilt_listeners:
                    listener(connection, sql, params)
            cursor.execute(sql, params)
            if cursor.pgresult is None or cursor.pgresult.nfields == 0:
                return []
            # The statement's shape is fixed, so its columns are looked at once: their names,
            # and which hold times (converted to UTC; the rest are taken as they come).
            shape = self._shape
            if shape is None:
                columns = cursor.description or ()
                times = [n for n, column in enumerate(columns) if column.type_code in _TIME_OIDS]
                shape = self._shape = (tuple(column.name for column in columns), times)
            names, times = shape
            rows = cursor.fetchall()
            if times:
                rows = [_utc_at(row, times) for row in rows]
            return [dict(zip(names, row, strict=True)) for row in rows]
        except connection.dialect.loaded_dbapi.Error as exc:
            # As SQLAlchemy would: a lost connection is invalidated (the pool drops it) and the
            # error raised as its DBAPIError subclass, so callers see the usual exceptions.
            lost = connection.dialect.is_disconnect(exc, driver, None)
            if lost:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                sql,
                params,
                exc,
                connection.dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=connection.dialect,
            ) from exc


_CURSOR = "hub.prebuilt_cursor"
_TIME_OIDS = frozenset((1114, 1184))  # timestamp, timestamptz


def _utc_at(row: tuple[Any, ...], times: list[int]) -> list[Any]:
    """`row` with its values at `times` (datetimes, or None) in UTC."""
    values = list(row)
    for n in times:
        value = values[n]
        if isinstance(value, datetime):
            values[n] = value.astimezone(UTC)
    return values


M = TypeVar("M")


def from_row(model: type[M], row: Mapping[Any, Any]) -> M:
    """An instance of the table model `model` from a row read with Core, without the model's
    validating `__init__` or the ORM's loading (the row is typed already): for reads that
    only look at the values. It is attached to no session."""
    instance = cast(M, model.model_construct(**row))  # type: ignore[attr-defined]
    _manager(cast(Hashable, model)).setup_instance(instance)
    return instance


@functools.cache
def _manager(model: Hashable) -> Any:
    configure_mappers()  # attribute instrumentation is complete only once mappers are
    return instrumentation.manager_of_class(cast(type[Any], model))
