"""The `hub` command as an operator runs it: real subprocesses on a fresh SQLite file."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from hub.db import Database
from hub.jobs import queue

HUB = str(Path(sys.executable).with_name("hub"))
TABLES = {
    "orders",
    "order_lines",
    "order_events",
    "shipments",
    "shipment_lines",
    "inbound_events",
    "jobs",
    "job_attempts",
}


def environment(database: Path, **extra: str) -> dict[str, str]:
    """The caller's environment minus any hub or channel configuration, plus `extra`."""
    prefixes = ("HUB_", "DEPOP_", "TOPI_", "DELIVERR_", "ABOUTYOU_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(HUB_DATABASE_URL=f"sqlite:///{database}", HUB_LOG_FORMAT="json", **extra)
    return env


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def running(args: list[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`hub ARGS` in the background, its stderr in cwd/stderr.log; killed if still running."""
    with (cwd / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [HUB, *args], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def stopped_by_sigterm(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_migrate_creates_the_schema_on_a_fresh_sqlite_file_and_is_repeatable(
    tmp_path: Path,
) -> None:
    database = tmp_path / "fresh.db"
    env = environment(database)

    first = subprocess.run([HUB, "migrate"], env=env, cwd=tmp_path, capture_output=True)
    second = subprocess.run([HUB, "migrate"], env=env, cwd=tmp_path, capture_output=True)

    assert first.returncode == 0, first.stderr.decode()
    assert second.returncode == 0, second.stderr.decode()
    assert first.stdout.decode().strip() == "database is up to date"
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        assert TABLES <= set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert len(versions) == 1


def test_worker_exits_zero_on_sigterm(tmp_path: Path) -> None:
    database = tmp_path / "hub.db"
    env = environment(database)
    subprocess.run([HUB, "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True)
    log = tmp_path / "stderr.log"

    with running(["worker"], env, tmp_path) as worker:
        wait_for(lambda: b"hub.worker.started" in log.read_bytes(), "the worker to start")
        code = stopped_by_sigterm(worker)

    assert code == 0, log.read_text()
    assert "hub.worker.stopped" in log.read_text()


def _started_pids(log: Path) -> list[int]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [int(line["pid"]) for line in lines if line["event"] == "hub.worker.process_started"]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.postgres_only
def test_worker_processes_are_restarted_when_one_dies_and_all_stop_on_sigterm(
    tmp_path: Path, postgres_database: Database
) -> None:
    env = environment(tmp_path / "unused.db")
    env["HUB_DATABASE_URL"] = postgres_database.url
    log = tmp_path / "stderr.log"

    with running(["worker", "--processes", "2"], env, tmp_path) as supervisor:
        wait_for(lambda: log.read_text().count("hub.worker.started") == 2, "two workers", 120)
        first, second = _started_pids(log)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: len(_started_pids(log)) == 3, "the dead worker's replacement", 120)
        wait_for(lambda: log.read_text().count("hub.worker.started") == 3, "it to start", 120)
        with postgres_database.transaction() as session:
            queue.enqueue(session, "maintenance.stuck_orders", "from-the-test")
        wait_for(lambda: _state(postgres_database, "from-the-test") == "done", "the job", 60)
        code = stopped_by_sigterm(supervisor, timeout=120)

    assert code == 0, log.read_text()
    assert all(_gone(pid) for pid in _started_pids(log))
    assert log.read_text().count("hub.worker.stopped") == 2
    assert "hub.worker.process_died" in log.read_text()


def _state(database: Database, key: str) -> str | None:
    with database.reader() as session:
        found = queue.list_jobs(session, kind="maintenance.stuck_orders")
    return next((str(job.state) for job in found if job.idempotency_key == key), None)


def test_worker_refuses_more_than_one_thread_on_sqlite(tmp_path: Path) -> None:
    env = environment(tmp_path / "hub.db")

    result = subprocess.run(
        [HUB, "worker", "--concurrency", "2"], env=env, cwd=tmp_path, capture_output=True
    )

    assert result.returncode == 2
    assert "SQLite takes one worker thread" in result.stderr.decode()


def test_serve_migrates_answers_health_and_readiness_and_exits_zero_on_sigterm(
    tmp_path: Path,
) -> None:
    database = tmp_path / "new.db"
    port = free_port()
    log = tmp_path / "stderr.log"
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    with running(["serve", "--port", str(port)], environment(database), tmp_path) as server:
        wait_for(answers, "hub serve to answer /healthz")
        health = httpx.get(f"{base}/healthz")
        ready = httpx.get(f"{base}/readyz")
        found = re.search(r"shown once\):\s+(\S+)", log.read_text())
        assert found, log.read_text()
        with_token = httpx.get(
            f"{base}/admin/jobs", headers={"authorization": f"Bearer {found.group(1)}"}
        )
        without_token = httpx.get(f"{base}/admin/jobs")
        code = stopped_by_sigterm(server)

    assert health.json() == {"status": "ok"}
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert with_token.status_code == 200
    assert without_token.status_code == 401
    assert code == 0, log.read_text()
    assert database.exists(), "serve applied the migrations to a new database file"


def test_serve_with_its_port_taken_exits_with_a_clear_message_before_starting_anything(
    tmp_path: Path,
) -> None:
    database = tmp_path / "new.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = subprocess.run(
            [HUB, "serve", "--port", str(port)],
            env=environment(database),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr, result.stderr
    for started in ("hub.worker.started", "hub.scheduler.started", "hub.serve.starting"):
        assert started not in result.stderr, result.stderr
    assert not database.exists(), "serve migrated a database it could not serve"


def test_serve_with_a_metrics_port_serves_metrics_there_alone(tmp_path: Path) -> None:
    database = tmp_path / "new.db"
    port, metrics_port = free_port(), free_port()
    env = environment(database, HUB_METRICS_PORT=str(metrics_port), HUB_METRICS_TOKEN="m-token")

    def answers() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    with running(["serve", "--port", str(port)], env, tmp_path) as server:
        wait_for(answers, "hub serve to answer /healthz")
        on_api = httpx.get(f"http://127.0.0.1:{port}/metrics")
        unauthorised = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        scraped = httpx.get(
            f"http://127.0.0.1:{metrics_port}/metrics",
            headers={"authorization": "Bearer m-token"},
        )
        code = stopped_by_sigterm(server)

    assert on_api.status_code == 404
    assert unauthorised.status_code == 401
    assert scraped.status_code == 200
    assert "hub_orders" in scraped.text
    assert code == 0, (tmp_path / "stderr.log").read_text()


def free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports."""
    for _ in range(50):
        first = free_port()
        socks = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError("no run of free ports")


def test_simulate_serves_every_simulator_and_an_order_placed_on_one_reaches_the_hub(
    tmp_path: Path,
) -> None:
    """The README's quick start: `hub simulate`, a hub started with what it printed, and
    `hub simulate order CHANNEL` for each channel."""
    sims, hub = tmp_path / "sims", tmp_path / "hub"
    sims.mkdir()
    hub.mkdir()
    first, port = free_ports(4), free_port()
    base = f"http://127.0.0.1:{port}"
    env_file = sims / "sim.env"
    plain = environment(tmp_path / "unused.db")
    simulate = ["simulate", "--port", str(first), "--hub-url", base, "--env-file", str(env_file)]

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    with running(simulate, plain, sims) as simulators:
        wait_for(env_file.exists, "hub simulate to write its environment")
        given = dict(
            line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line
        )
        assert {"DEPOP_API_KEY", "TOPI_WEBHOOK_SECRETS", "DELIVERR_BASE_URL"} <= set(given)
        served = environment(
            hub / "hub.db",
            HUB_ADMIN_TOKENS="ops:tok",
            **{key: value.strip("'") for key, value in given.items()},
        )
        with running(["serve", "--port", str(port)], served, hub) as server:
            wait_for(answers, "hub serve to answer /healthz")
            placed = {
                channel: subprocess.run(
                    [HUB, "simulate", "--port", str(first), "order", channel],
                    env=plain,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                for channel in ("depop", "topi", "aboutyou")
            }
            provider = subprocess.run(
                [HUB, "simulate", "--port", str(first), "order", "deliverr"],
                env=plain,
                capture_output=True,
                text=True,
                timeout=60,
            )

            def orders() -> list[dict[str, str]]:
                found: list[dict[str, str]] = httpx.get(
                    f"{base}/admin/orders", headers={"authorization": "Bearer tok"}
                ).json()["data"]
                return found

            wait_for(lambda: len(orders()) == 3, "three orders in the hub")
            wait_for(lambda: all(o["status"] == "confirmed" for o in orders()), "orders confirmed")
            channels = {o["channel"] for o in orders()}
            assert stopped_by_sigterm(server) == 0
        assert stopped_by_sigterm(simulators) == 0

    for channel, result in placed.items():
        assert result.returncode == 0, (channel, result.stdout, result.stderr)
        assert "answered its webhook with 200" in result.stdout
    assert provider.returncode != 0 and "no channel with buyers" in provider.stderr
    assert channels == {"depop", "topi", "aboutyou"}
