"""The `hub` command: serve, worker, scheduler, migrate, reconcile, stock import."""

from __future__ import annotations

import csv
import functools
import json
import secrets
import signal
import socket
import sys
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click
import structlog
from pydantic import SecretStr

from hub.config import Settings
from hub.logging import configure_logging

if TYPE_CHECKING:
    from fastapi import FastAPI

log = structlog.get_logger("hub.cli")


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.hub.log_format, settings.hub.log_level)
    return settings


def _wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT."""
    stop = threading.Event()

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    # A timed wait: the main thread must wake now and then for the handler to run.
    while not stop.wait(1.0):
        continue


def _already_stopping(_signum: int, _frame: FrameType | None) -> None:
    """A signal after uvicorn's graceful shutdown: nothing is left to stop."""


@click.group()
def main() -> None:
    """Multi-channel order hub."""


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port, or a clear exit when another process holds the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # Lets a restart take the port while the last run's connections linger (TIME_WAIT); a
    # process still listening on it keeps it all the same.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            " (is another hub or program using the port?)"
        ) from None
    return sock


class _BackgroundServer:
    """A uvicorn server on a socket of its own, in a daemon thread.

    Off the main thread uvicorn installs no signal handlers: the process's own SIGTERM handling
    stops this one when it is done."""

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        import uvicorn

        self._server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="metrics-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Do not run the job worker in this process.")
@click.option("--no-scheduler", is_flag=True, help="Do not run the scheduler in this process.")
def serve(host: str, port: int, no_worker: bool, no_scheduler: bool) -> None:
    """Apply pending migrations, then serve the API (plus worker and scheduler by default)."""
    import uvicorn

    from hub.app import create_app, create_metrics_app
    from hub.migrate import upgrade
    from hub.wiring import build_runtime

    settings = _settings()
    # The ports first: a hub that cannot serve must not migrate, work or schedule meanwhile.
    api_socket = _listen(host, port)
    metrics_port = settings.hub.metrics_port
    metrics_socket = _listen(host, metrics_port) if metrics_port is not None else None
    if not settings.hub.admin_tokens:
        token = secrets.token_urlsafe(32)
        settings.hub.admin_tokens = [SecretStr(token)]
        click.echo(
            f"No HUB_ADMIN_TOKENS set. Admin token for this run (shown once):\n  {token}",
            err=True,
        )
    upgrade(settings.hub.database_url)
    runtime = build_runtime(settings)
    app = create_app(runtime, worker=not no_worker, scheduler=not no_scheduler)
    log.info(
        "hub.serve.starting",
        host=host,
        port=port,
        metrics_port=metrics_port,
        channels=sorted(runtime.connectors.channels),
        providers=sorted(runtime.connectors.providers),
    )
    metrics_server = (
        _BackgroundServer(create_metrics_app(runtime), metrics_socket)
        if metrics_socket is not None
        else None
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again against the
    # handler it found; a handler that ignores it lets `serve` exit 0 as the contract says.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _already_stopping)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    try:
        server.run(sockets=[api_socket])
    finally:
        if metrics_server is not None:
            metrics_server.stop()


@main.command()
@click.option("--concurrency", default=None, type=int, help="Worker threads (default 1).")
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes, each with --concurrency threads, supervised by this one.",
)
@click.option(
    "--metrics-port",
    default=None,
    type=int,
    help="Serve this worker's Prometheus counters (jobs run, their times) on this port "
    "(process i of --processes on this port + i).",
)
def worker(concurrency: int | None, processes: int, metrics_port: int | None) -> None:
    """Run jobs until SIGTERM; the jobs in hand are finished before exit."""
    from hub.jobs.worker import Supervisor

    settings = _settings()
    threads = concurrency or settings.hub.worker_concurrency
    if settings.hub.is_sqlite and (threads > 1 or processes > 1):
        raise click.UsageError("SQLite takes one worker thread; use Postgres for more")
    if processes == 1:
        _worker_process(threads, metrics_port, 0)
        return
    Supervisor(functools.partial(_worker_process, threads, metrics_port), processes).run()


def _worker_process(threads: int, metrics_port: int | None, index: int) -> None:
    """One worker process: `threads` threads until SIGTERM."""
    from hub.app import create_worker_metrics_app
    from hub.jobs.worker import Worker
    from hub.wiring import build_runtime

    runtime = build_runtime(_settings())
    metrics_server = None
    if metrics_port is not None:
        # The job counters live in this process; the API's /metrics has the database figures.
        # On every interface, as before; HUB_METRICS_TOKEN guards it as it guards the API's.
        metrics_server = _BackgroundServer(
            create_worker_metrics_app(runtime), _listen("0.0.0.0", metrics_port + index)
        )
    running = Worker(runtime, threads)
    running.start()
    _wait_for_signal()
    running.stop()
    if metrics_server is not None:
        metrics_server.stop()


@main.command()
def scheduler() -> None:
    """Run the scheduler until SIGTERM; any number may run, one leads."""
    from hub.jobs.scheduler import Scheduler
    from hub.wiring import build_runtime

    settings = _settings()
    running = Scheduler(build_runtime(settings))
    running.start()
    _wait_for_signal()
    running.stop()


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from hub.migrate import upgrade  # alembic is slow to import; only these commands need it

    settings = _settings()
    upgrade(settings.hub.database_url)
    click.echo("database is up to date")


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} needs a UTC offset, e.g. 2026-11-23T00:00:00Z")
    return parsed


@main.command()
@click.argument("channel")
@click.option("--from", "window_from", default=None, help="ISO 8601 start (default: watermark).")
@click.option("--to", "window_to", default=None, help="ISO 8601 end (default: now).")
def reconcile(channel: str, window_from: str | None, window_to: str | None) -> None:
    """Reconcile CHANNEL now, in this process, and print what the run found."""
    from hub import tasks  # noqa: F401
    from hub.jobs.worker import Worker
    from hub.reconcile import repository as runs
    from hub.reconcile import service
    from hub.wiring import build_runtime

    settings = _settings()
    runtime = build_runtime(settings)
    if not runtime.connectors.has_channel(channel):
        raise click.UsageError(f"channel connection {channel!r} is not configured")
    try:
        with runtime.db.transaction() as session:
            run = service.start_run(
                session,
                runtime.settings,
                channel,
                window_from=_parse_time(window_from),
                window_to=_parse_time(window_to),
            )
            assert run is not None, "a run without a key is always new"
            run_id = run.id
    except service.InvalidWindow as exc:
        raise click.BadParameter(str(exc)) from None
    Worker(runtime).drain()
    with runtime.db.reader() as session:
        done = runs.get(session, run_id)
        assert done is not None
        click.echo(
            json.dumps(
                {
                    "run_id": done.id,
                    "state": done.state,
                    "seen": done.seen,
                    "created": done.created,
                    "updated": done.updated,
                    "mismatches": done.mismatches,
                    "error": done.error,
                },
                indent=2,
            )
        )
    if done.state != "done":
        sys.exit(1)


@main.group()
def stock() -> None:
    """Stock figures."""


@stock.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def stock_import(path: Path) -> None:
    """Set on_hand from a CSV with columns `sku,on_hand` (all rows or none)."""
    from hub.inventory import service as inventory
    from hub.wiring import build_runtime

    settings = _settings()
    runtime = build_runtime(settings)
    rows: list[tuple[str, int]] = []
    seen: set[str] = set()
    # utf-8-sig: spreadsheets often save a byte-order mark before the header.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"sku", "on_hand"} <= set(reader.fieldnames):
            raise click.UsageError("the CSV needs a header with the columns sku,on_hand")
        for number, row in enumerate(reader, start=2):
            sku = (row.get("sku") or "").strip()
            try:
                on_hand = int((row.get("on_hand") or "").strip())
            except ValueError:
                raise click.UsageError(f"line {number}: on_hand is not a whole number") from None
            if not sku or len(sku) > 128 or on_hand < 0:
                raise click.UsageError(
                    f"line {number}: needs a SKU (at most 128 characters) and on_hand >= 0"
                )
            if sku in seen:
                raise click.UsageError(f"line {number}: SKU {sku!r} appears more than once")
            seen.add(sku)
            rows.append((sku, on_hand))
    try:
        with runtime.db.transaction() as session:
            inventory.set_on_hand_many(session, rows, note=f"import {path.name}")
    except inventory.StockBelowReserved as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"imported {len(rows)} SKUs")


SIMULATE_PORT = 8101


@main.group(invoke_without_command=True)
@click.option(
    "--port",
    default=SIMULATE_PORT,
    show_default=True,
    type=int,
    help="The first simulator's port; each connector in the catalogue takes the next one.",
)
@click.option(
    "--hub-url",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Where the simulators send their webhooks.",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the environment to this file (the hub reads `.env` from its directory).",
)
@click.pass_context
def simulate(ctx: click.Context, port: int, hub_url: str, env_file: Path | None) -> None:
    """Serve a simulator of every connector over HTTP and print the environment that points a
    hub at them; `hub simulate order CHANNEL` then places a signed order."""
    ctx.obj = {"port": port}
    if ctx.invoked_subcommand is not None:
        return
    from hub.sim import environment, serve_simulators, simulator_ports

    configure_logging(None, "warning")
    ports = simulator_ports(port)
    settings, simulators, stops = serve_simulators(ports)
    try:
        for name, simulator in simulators.items():
            simulator.webhook_url = f"{hub_url.rstrip('/')}/webhooks/{name}"
        env = environment(settings)
        # Single-quoted: a shell's `source` and the hub's `.env` reader both take it as it is.
        text = "".join(f"{key}='{value}'\n" for key, value in sorted(env.items()))
        if env_file is not None:
            env_file.write_text(text)
        for name in simulators:
            click.echo(f"# {name} simulated at http://127.0.0.1:{ports[name]}", err=True)
        click.echo(text, nl=False)
        click.echo(
            f"# webhooks go to {hub_url}; run the hub with the variables above, then:\n"
            "#   hub simulate order depop   (or topi, aboutyou)\n# Ctrl-C stops the simulators.",
            err=True,
        )
        _wait_for_signal()
    finally:
        for stop in reversed(stops):
            stop()


@simulate.command("order")
@click.argument("channel")
@click.option("--sku", default="SIM-TEE-01", show_default=True)
@click.option("--quantity", default=1, show_default=True, type=click.IntRange(1, 100))
@click.option("--url", default=None, help="The channel simulator's URL (default: its port).")
@click.pass_context
def simulate_order(
    ctx: click.Context, channel: str, sku: str, quantity: int, url: str | None
) -> None:
    """Place a signed order on CHANNEL's running simulator; it sends the webhook to the hub."""
    import httpx

    from hub.sim import simulator_ports

    ports = simulator_ports(ctx.obj["port"])
    if url is None and channel not in ports:
        raise click.UsageError(f"no connector named {channel!r}; known: {', '.join(ports)}")
    base = url or f"http://127.0.0.1:{ports[channel]}"
    try:
        response = httpx.post(
            f"{base.rstrip('/')}/_sim/place-order",
            params={"sku": sku, "quantity": quantity},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"no simulator answered at {base} ({type(exc).__name__}); is `hub simulate` running?"
        ) from None
    answer = response.json()
    if response.status_code != 200:
        raise click.ClickException(f"{channel}: {answer.get('detail', response.text)}")
    status = answer.get("webhook_status")
    click.echo(
        f"{channel} order {answer['order_id']} placed ({quantity} x {sku}); "
        + (f"the hub answered its webhook with {status}" if status else "its webhook got no answer")
    )
    if status != 200:
        sys.exit(1)


def _connector_commands() -> None:
    """Each catalogued connector's own commands, as `hub <connector> ...`."""
    from connectors.catalog import CONNECTORS

    for connector in CONNECTORS:
        if connector.commands is not None:
            main.add_command(connector.commands())


_connector_commands()


@main.command()
def demo() -> None:
    """Play a few orders through the whole hub with every channel simulated in-process."""
    from hub.demo import run_demo

    # Progress and the report go to stdout; only the hub's warnings and errors reach the log.
    configure_logging(None, "warning")
    sys.exit(run_demo())


@main.group()
def secrets_group() -> None:
    """Keys that seal connection secrets at rest (HUB_SECRET_KEY)."""


main.add_command(secrets_group, name="secrets")


@secrets_group.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new key for HUB_SECRET_KEY."""
    from hub.secrets import generate_key

    click.echo(generate_key())


@secrets_group.command("rotate")
def secrets_rotate() -> None:
    """Seal every stored secret again with the first key of HUB_SECRET_KEY, in one transaction.

    To rotate: put the new key first and keep the old one after it
    (HUB_SECRET_KEY=new,old), restart the hub's processes, run this, then drop the old key.
    """
    from hub.connections.service import rotate
    from hub.db import Database
    from hub.migrate import upgrade
    from hub.secrets import SecretKeyMissing, UnreadableSecret, box_for

    settings = _settings()
    upgrade(settings.hub.database_url)
    db = Database(settings.hub.database_url)
    try:
        with db.transaction() as session:
            connections, credentials = rotate(session, box_for(settings.hub))
    except (SecretKeyMissing, UnreadableSecret) as exc:
        raise click.ClickException(f"{exc}; nothing was changed") from None
    finally:
        db.dispose()
    click.echo(f"resealed {connections} connections and {credentials} stored credentials")
