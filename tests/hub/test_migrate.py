"""`hub migrate` on several hosts at once: one migrates, the others wait and find it done."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from hub.migrate import ROOT, alembic_config
from tests.conftest import POSTGRES_URL

PROCESSES = 3

# Each process loads the hub (slow) first, then waits for the same go signal, so their
# upgrades start together rather than one after the other.
_MIGRATE = """
import sys, time
from pathlib import Path
from hub.migrate import upgrade
go = Path(sys.argv[2])
Path(sys.argv[3]).touch()
while not go.exists():
    time.sleep(0.01)
upgrade(sys.argv[1])
"""


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """An empty Postgres database of its own (no schema at all), dropped afterwards."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"Postgres at {POSTGRES_URL} is unreachable: {exc.__class__.__name__}")
    name = f"hub_migrate_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _current(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def _migrate_together(url: str, tmp_path: Path) -> list[subprocess.CompletedProcess[str]]:
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE, url, str(go), str(tmp_path / f"ready-{i}")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    while not all((tmp_path / f"ready-{i}").exists() for i in range(PROCESSES)):
        assert all(p.poll() is None for p in processes), "a process ended before the signal"
        time.sleep(0.05)
    go.touch()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def test_processes_migrating_a_fresh_postgres_database_at_once_all_succeed(
    fresh_postgres: str, tmp_path: Path
) -> None:
    results = _migrate_together(fresh_postgres, tmp_path)

    assert [r.returncode for r in results] == [0] * PROCESSES, [r.stderr[-2000:] for r in results]
    assert _current(fresh_postgres) == _head()


def test_processes_migrating_a_fresh_sqlite_database_at_once_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"

    results = _migrate_together(url, tmp_path)

    assert [r.returncode for r in results] == [0] * PROCESSES, [r.stderr[-2000:] for r in results]
    assert _current(url) == _head()
