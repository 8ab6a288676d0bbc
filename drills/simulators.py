"""The drill's simulators process: every catalogued connector's simulator served over HTTP, its
webhooks spread across the hub's API processes and retried as a channel retries them, with
`Chaos` fault rates set at start (here) or at run time (`PUT /_sim/chaos` on each simulator).

    python -m drills.simulators --hub-ports 8201,8202 --env-file drill.env --error-rate 0.05

It writes the environment that points a hub at the simulators to `--env-file`, then serves
until SIGTERM.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import click
import httpx

from connectors.simulation import Chaos
from hub.cli import _wait_for_signal
from hub.logging import configure_logging
from hub.sim import environment, serve_simulators

# Attempts per webhook: a channel keeps retrying an answer-less delivery (an API process
# killed under it); twenty at 0.2 s outlast a restart.
WEBHOOK_ATTEMPTS = 20


class SpreadTransport(httpx.BaseTransport):
    """Sends each request to the next of `ports` on the same host, round robin: the load
    balancer in front of several API processes."""

    def __init__(self, ports: list[int]) -> None:
        self._inner = httpx.HTTPTransport()
        self._ports = itertools.cycle(ports)
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            port = next(self._ports)
        request.url = request.url.copy_with(port=port)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@click.command()
@click.option("--hub-ports", required=True, help="The API processes' ports, comma-separated.")
@click.option("--env-file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--error-rate", default=0.0, show_default=True, help="500s, not processed.")
@click.option("--throttle-rate", default=0.0, show_default=True, help="429s with Retry-After.")
@click.option("--hang-rate", default=0.0, show_default=True, help="Held, then processed.")
@click.option("--hang-seconds", default=15.0, show_default=True)
@click.option("--reset-rate", default=0.0, show_default=True, help="Processed, then dropped.")
def main(
    hub_ports: str,
    env_file: Path,
    error_rate: float,
    throttle_rate: float,
    hang_rate: float,
    hang_seconds: float,
    reset_rate: float,
) -> None:
    """Serve every simulator for a drill, with fault injection."""
    configure_logging("json", "warning")
    ports = [int(p) for p in hub_ports.split(",")]
    chaos = Chaos(
        error_rate=error_rate,
        throttle_rate=throttle_rate,
        hang_rate=hang_rate,
        hang_seconds=hang_seconds,
        reset_rate=reset_rate,
    )
    settings, simulators, stops = serve_simulators()
    client = httpx.Client(transport=SpreadTransport(ports), timeout=10.0)
    try:
        for name, simulator in simulators.items():
            simulator.webhook_url = f"http://127.0.0.1:{ports[0]}/webhooks/{name}"
            simulator.webhook_client = client
            simulator.webhook_attempts = WEBHOOK_ATTEMPTS
            simulator.chaos = chaos
        env = environment(settings)
        env |= {
            f"DRILL_SIM_{name.upper()}": f"http://127.0.0.1:{_port(s)}"
            for name, s in settings.items()
        }
        text = "".join(f"{key}={value}\n" for key, value in sorted(env.items()))
        # Written whole, then renamed: the runner waits for the file and must not read half.
        partial = env_file.with_suffix(".partial")
        partial.write_text(text)
        partial.rename(env_file)
        _wait_for_signal()
    finally:
        for stop in reversed(stops):
            stop()
        client.close()


def _port(settings: object) -> int:
    base: str = getattr(settings, "base_url")  # noqa: B009  (every connector's settings have one)
    return httpx.URL(base).port or 80


if __name__ == "__main__":
    main()
