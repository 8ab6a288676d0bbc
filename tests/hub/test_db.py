"""The database scopes: a worker thread's kept connection (`Database.pinned`)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hub.db import Database, Prebuilt, watching_prebuilt

_BACKEND = Prebuilt(text("SELECT pg_backend_pid() AS pid"))


def _pid(database: Database) -> int:
    with database.connect(one_statement=True) as connection:
        return int(_BACKEND.rows(connection, {})[0]["pid"])


def test_a_pinned_thread_keeps_one_connection_for_its_units(
    postgres_database: Database,
) -> None:
    with postgres_database.pinned():
        first = _pid(postgres_database)
        assert [_pid(postgres_database) for _ in range(3)] == [first] * 3


def test_a_pinned_connection_the_server_dropped_fails_one_unit_then_is_replaced(
    postgres_database: Database,
) -> None:
    with postgres_database.pinned():
        lost = _pid(postgres_database)
        with postgres_database.transaction() as session:
            session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lost})
        with pytest.raises(DBAPIError) as failed:
            _pid(postgres_database)
        assert failed.value.connection_invalidated
        assert _pid(postgres_database) not in (lost, None)


def test_a_unit_interrupted_mid_statement_does_not_hand_its_connection_on(
    postgres_database: Database,
) -> None:
    with postgres_database.pinned():
        with pytest.raises(KeyboardInterrupt):
            with postgres_database.connect(one_statement=True) as connection:
                driver = connection.connection.driver_connection
                assert driver is not None
                interrupted = driver.info.backend_pid
                # A result left unread: the connection is inside a statement, not idle.
                driver.pgconn.send_query(b"SELECT pg_sleep(0.05)")
                raise KeyboardInterrupt
        assert _pid(postgres_database) != interrupted


def test_more_pinned_threads_than_the_pool_holds_each_get_a_connection(postgres_url: str) -> None:
    """A worker process may run more threads than the pool's size: each keeps one connection,
    and none waits for one the others never hand back."""
    database = Database(postgres_url, pool_size=1)
    pinned = threading.Barrier(4, timeout=10)
    pids: list[int] = []

    def thread() -> None:
        with database.pinned():
            pids.append(_pid(database))
            pinned.wait()  # all four hold their connection at once
            pids.append(_pid(database))

    try:
        threads = [threading.Thread(target=thread) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert not any(t.is_alive() for t in threads)
        assert len(pids) == 8 and len(set(pids)) == 4
    finally:
        database.dispose()


def test_a_prebuilt_statement_sent_on_the_cursor_is_shown_to_whoever_watches(
    postgres_database: Database,
) -> None:
    """Postgres only: elsewhere a `Prebuilt` runs through SQLAlchemy, whose own events see it."""
    seen: list[tuple[str, dict[str, object]]] = []
    with postgres_database.pinned():
        with watching_prebuilt(lambda _, sql, params: seen.append((sql, dict(params)))):
            pid = _pid(postgres_database)
        _pid(postgres_database)
    assert pid and seen == [("SELECT pg_backend_pid() AS pid", {})]
