"""The hub wired to a simulator of every catalogued connector: for `hub demo`, `hub simulate`,
the tests and the benchmarks.

Nothing is mocked. Each simulator is its connector's own fake of the external API (a FastAPI
app); the hub's real connectors call it over httpx, it posts its signed webhooks to the hub's
real app, and the hub's real worker runs the jobs.

Two ways to carry the calls:
- `serve_simulated_hub`: every simulator and the hub itself served over HTTP on loopback ports,
  the connectors using their own production HTTP clients (`hub demo`, `hub simulate`);
- `wire_simulators`: the caller says how an httpx client reaches an app (the tests pass an
  in-process transport; this module imports no test client).
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import httpx
import uvicorn
from pydantic import SecretStr
from starlette.types import ASGIApp

from connectors.catalog import CONNECTORS, by_name
from connectors.connector import ConnectorSettings
from connectors.contracts import published_contract, watch
from connectors.ratelimit import NoRateLimit
from connectors.simulation import SimulatorBase
from hub.app import create_app
from hub.config import HubSettings, Settings
from hub.db import Database
from hub.fulfilment.service import POLL
from hub.jobs.worker import run_one, worker_name
from hub.runtime import Runtime
from hub.types import utcnow
from hub.wiring import build_runtime

# An httpx client that reaches `app`, with `base_url` as its base.
ClientFor = Callable[[ASGIApp, str], httpx.Client]

Sim = TypeVar("Sim", bound=SimulatorBase)


def _no_wait(_seconds: float) -> None:
    """A simulator answers at once: a connector polling it need not wait between polls."""


@dataclass
class SimulatedHub:
    """The hub's runtime and app, and a simulator of every configured connector."""

    runtime: Runtime
    client: httpx.Client  # reaches the hub's app: webhooks and the admin API
    admin_token: str
    simulators: dict[str, SimulatorBase]
    closers: list[Callable[[], None]] = field(default_factory=list)
    # How connectors reach simulators (by connector or connection key), kept so another
    # account can be added; set by `wire_simulators`.
    http: dict[str, httpx.Client] = field(default_factory=dict)
    client_for: ClientFor | None = None
    hub_url: str = ""

    def add_account(self, system: str, name: str) -> tuple[SimulatorBase, ConnectorSettings]:
        """A second (third, ...) account on `system`: its own simulator with fresh
        credentials, reached by the connection `system/name` once that is created (the
        settings returned are what to create it with), posting its webhooks to that
        connection's URL. The simulator is kept under the connection's key."""
        if self.client_for is None:
            raise RuntimeError("accounts are added to a hub wired by wire_simulators")
        connector = by_name()[system]
        settings = connector.simulated(f"https://{name}.{system}.test")
        simulator = connector.simulator(settings)
        key = f"{system}/{name}"
        client = _watched(system, self.client_for(simulator.app, _base_url(settings)))
        self.http[key] = client
        self.closers.append(client.close)
        simulator.webhook_url = f"{self.hub_url}/webhooks/{system}/{name}"
        simulator.webhook_client = self.client
        self.simulators[key] = simulator
        return simulator, settings

    def simulator(self, name: str, kind: type[Sim]) -> Sim:
        """The simulator of connector `name`, typed."""
        found = self.simulators[name]
        if not isinstance(found, kind):
            raise TypeError(f"{name} is simulated by {type(found).__name__}, not {kind.__name__}")
        return found

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the admin API; the decoded JSON answer (raises on an error status)."""
        response = self.client.request(
            method, path, headers={"authorization": f"Bearer {self.admin_token}"}, **kwargs
        )
        response.raise_for_status()
        return response.json()

    def settle(self, *, patience: float = 2.0) -> int:
        """Run jobs in this thread until none is due and none comes due within `patience`
        seconds (retries back off in milliseconds here); how many ran."""
        name = worker_name()
        ran = 0
        while True:
            if run_one(self.runtime, name):
                ran += 1
                continue
            queued = self.admin("GET", "/admin/jobs", params={"state": "queued", "limit": 500})
            due = [_parse_time(job["run_at"]) for job in queued["data"]]
            if not due or (min(due) - utcnow()).total_seconds() > patience:
                return ran
            time.sleep(0.005)

    def poll_fulfilment(self, order_id: str) -> None:
        """Queue a status poll of the order at its provider, as the scheduled poll does, now
        instead of hours later (a provider that sends no webhook for a partial shipment)."""
        with self.runtime.db.transaction() as session:
            POLL.enqueue(session, order_id, None, "sim", uuid.uuid4().hex)

    def order(self, channel: str, channel_order_id: str) -> dict[str, Any] | None:
        """The admin API's detail of a channel's order, or None when the hub has none."""
        found = self.admin(
            "GET",
            "/admin/orders",
            params={"channel": channel, "channel_order_id": channel_order_id},
        )["data"]
        if not found:
            return None
        detail: dict[str, Any] = self.admin("GET", f"/admin/orders/{found[0]['id']}")
        return detail

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.runtime.db.dispose()


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def fast_hub_settings(database_url: str, admin_token: str, **overrides: Any) -> HubSettings:
    """HUB_* settings for a simulated run: retries back off in milliseconds, not minutes."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "admin_tokens": [SecretStr(admin_token)],
        "job_backoff_base": 0.01,
        "job_max_backoff_seconds": 0.05,
        "worker_poll_seconds": 0.01,
        **overrides,
    }
    return HubSettings(**values)


def wire_simulators(
    settings: Settings,
    client_for: ClientFor,
    *,
    db: Database | None = None,
    admin_token: str = "",
    hub_url: str = "http://hub.test",
) -> SimulatedHub:
    """The hub over `settings`, each configured connector pointed at a simulator built with
    the same credentials, each simulator posting its webhooks to the hub's app; `client_for`
    says how a client reaches an app."""
    simulators = {
        connector.name: connector.simulator(settings.connectors[connector.name])
        for connector in CONNECTORS
        if settings.connectors[connector.name].configured
    }
    clients = {
        name: _watched(name, client_for(sim.app, _base_url(settings.connectors[name])))
        for name, sim in simulators.items()
    }
    runtime = build_runtime(settings, db=db, http=clients, sleep=_no_wait, limiter=NoRateLimit())
    client = client_for(create_app(runtime), hub_url)
    for name, sim in simulators.items():
        sim.webhook_url = f"{hub_url}/webhooks/{name}"
        sim.webhook_client = client
    closers = [client.close, *(c.close for c in clients.values())]
    return SimulatedHub(
        runtime,
        client,
        admin_token,
        dict(simulators),
        closers,
        http=clients,
        client_for=client_for,
        hub_url=hub_url,
    )


def _watched(name: str, client: httpx.Client) -> httpx.Client:
    """`client`, its every request and answer checked against the contract connector `name`
    publishes (its vendor's description); a call that breaks it fails loudly."""
    contract = published_contract(name)
    if contract is not None:
        watch(client, contract, strict=True)
    return client


def _base_url(settings: ConnectorSettings) -> str:
    base: str = getattr(settings, "base_url")  # noqa: B009  (every connector's settings have one)
    return base


# -- over HTTP ----------------------------------------------------------------------------------


@dataclass
class Served:
    """An app served by uvicorn in a background thread on a loopback port."""

    url: str
    stop: Callable[[], None]


def _listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it, a response's second write waits for the
    # client's delayed ACK (40 ms on Linux) on every request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


def serve(app: ASGIApp, sock: socket.socket) -> Served:
    """Serve `app` on the bound `sock` until `stop()`."""
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="hub-sim-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("a simulated server did not start")
        time.sleep(0.005)
    host, port = sock.getsockname()[:2]

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        sock.close()

    return Served(f"http://{host}:{port}", stop)


def serve_simulators(
    ports: Mapping[str, int] | None = None,
) -> tuple[dict[str, ConnectorSettings], dict[str, SimulatorBase], list[Callable[[], None]]]:
    """Every catalogued connector simulated with fresh credentials and served over HTTP on
    loopback: the settings that reach each one, the simulators, and what stops them. `ports`
    pins a simulator's port (absent or 0: any free one)."""
    settings: dict[str, ConnectorSettings] = {}
    simulators: dict[str, SimulatorBase] = {}
    stops: list[Callable[[], None]] = []
    try:
        for connector in CONNECTORS:
            sock = _listening_socket(port=(ports or {}).get(connector.name, 0))
            host, port = sock.getsockname()[:2]
            settings[connector.name] = connector.simulated(f"http://{host}:{port}")
            simulators[connector.name] = connector.simulator(settings[connector.name])
            stops.append(serve(simulators[connector.name].app, sock).stop)
    except BaseException:
        for stop in reversed(stops):
            stop()
        raise
    return settings, simulators, stops


def simulator_ports(first: int) -> dict[str, int]:
    """Fixed ports for `hub simulate`: the catalogue's connectors take `first`, `first + 1`...
    in order, so `hub simulate order` finds a simulator without being told where it is."""
    return {connector.name: first + i for i, connector in enumerate(CONNECTORS)}


def environment(settings: Mapping[str, ConnectorSettings]) -> dict[str, str]:
    """The environment variables that give a hub `settings` (each connector's own prefix):
    what `hub simulate` prints for the hub it points at the simulators."""
    found: dict[str, str] = {}
    for connector_settings in settings.values():
        config = getattr(type(connector_settings), "model_config", {})
        prefix = str(config.get("env_prefix", ""))
        for name, value in connector_settings.model_dump().items():
            if value is None:
                continue
            items = value if isinstance(value, list) else [value]
            text = ",".join(
                v.get_secret_value() if isinstance(v, SecretStr) else _plain(v) for v in items
            )
            found[f"{prefix}{name}".upper()] = text
    return found


def _plain(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else str(value)


def serve_simulated_hub(database_url: str, **hub_overrides: Any) -> SimulatedHub:
    """Every catalogued connector simulated and served over HTTP, and the hub (over
    `database_url`, already migrated) served too and configured against them, its connectors
    using their own HTTP clients; the simulators post their webhooks to it."""
    admin_token = secrets.token_urlsafe(24)
    given, simulators, closers = serve_simulators()
    try:
        settings = Settings(fast_hub_settings(database_url, admin_token, **hub_overrides), **given)
        clients = {
            name: _watched(name, httpx.Client(base_url=_base_url(given[name]), timeout=30))
            for name in given
        }
        closers.extend(client.close for client in clients.values())
        runtime = build_runtime(settings, http=clients, sleep=_no_wait, limiter=NoRateLimit())
        served = serve(create_app(runtime), _listening_socket())
        closers.append(served.stop)
        client = httpx.Client(base_url=served.url, timeout=30)
        closers.append(client.close)
        for name, simulator in simulators.items():
            simulator.webhook_url = f"{served.url}/webhooks/{name}"
            simulator.webhook_client = client
    except BaseException:
        for close in reversed(closers):
            close()
        raise
    return SimulatedHub(runtime, client, admin_token, simulators, closers)


@contextmanager
def fresh_simulated_hub(**hub_overrides: Any) -> Iterator[SimulatedHub]:
    """A simulated hub served over HTTP on a new SQLite file in a temporary directory."""
    import tempfile
    from pathlib import Path

    from hub.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="hub-sim-") as workdir:
        url = f"sqlite:///{Path(workdir) / 'hub.db'}"
        upgrade(url)
        hub = serve_simulated_hub(url, **hub_overrides)
        try:
            yield hub
        finally:
            hub.close()
