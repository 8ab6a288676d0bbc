"""Chaos over real HTTP: each fault a drill injects reaches a client as that fault, and the
faults that let the call through ("hang", "reset") leave it taken into account."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from connectors.depop import CONNECTOR as DEPOP
from connectors.simulation import Chaos, SimulatorBase
from hub.sim import _listening_socket, serve


@pytest.fixture
def served() -> Iterator[tuple[SimulatorBase, httpx.Client]]:
    sock = _listening_socket()
    host, port = sock.getsockname()[:2]
    simulator = DEPOP.simulator(DEPOP.simulated(f"http://{host}:{port}"))
    running = serve(simulator.app, sock)
    client = httpx.Client(base_url=running.url, timeout=5)
    yield simulator, client
    client.close()
    running.stop()


def test_error_and_throttle_answer_without_processing(
    served: tuple[SimulatorBase, httpx.Client],
) -> None:
    simulator, client = served
    simulator.chaos = Chaos(error_rate=1)
    assert client.get("/status").status_code == 500
    simulator.chaos = Chaos(throttle_rate=1, retry_after=7)
    throttled = client.get("/status")
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "7")
    assert simulator.calls == []
    assert simulator.faults_injected == {"error": 1, "throttle": 1}


def test_reset_drops_the_answer_of_a_call_that_took_effect(
    served: tuple[SimulatorBase, httpx.Client],
) -> None:
    simulator, client = served
    simulator.chaos = Chaos(reset_rate=1)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/status")
    assert [(c.path, c.status) for c in simulator.calls] == [("/status", 200)]


def test_a_hang_outlasts_the_client_then_the_call_takes_effect(
    served: tuple[SimulatorBase, httpx.Client],
) -> None:
    simulator, client = served
    simulator.chaos = Chaos(hang_rate=1, hang_seconds=0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/status", timeout=0.05)
    deadline = time.monotonic() + 10
    while not simulator.calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [c.path for c in simulator.calls] == ["/status"]


def test_rates_are_set_at_run_time_through_the_control_route(
    served: tuple[SimulatorBase, httpx.Client],
) -> None:
    simulator, client = served
    answer = client.put("/_sim/chaos", json={"error_rate": 1})
    assert answer.json()["chaos"]["error_rate"] == 1
    assert client.get("/status").status_code == 500
    client.put("/_sim/chaos", json={})
    assert client.get("/status").status_code == 200
    assert client.get("/_sim/chaos").json()["injected"] == {"error": 1}
    assert client.put("/_sim/chaos", json={"error_rate": 2}).status_code == 422
