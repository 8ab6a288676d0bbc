"""Adding a connector is its package plus one line in the catalogue: nothing else in the hub
names it, yet its settings are read, its webhooks verified, its orders driven by the
capabilities it declares, and it is reconciled on schedule and simulated like the others."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.catalog import CONNECTORS
from hub.db import Database
from hub.jobs.registry import all_schedules
from hub.reconcile.tasks import reconcile_schedule_name
from tests import fake_channel
from tests.fake_channel import FakeChannel, FakeSimulator, order_json
from tests.harness import Hub, make_hub

HUB = Path(__file__).resolve().parents[2] / "hub"


@pytest.fixture
def catalogued(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FAKE_WEBHOOK_SECRET", fake_channel.SECRET)
    CONNECTORS.append(fake_channel.CONNECTOR)  # the one line
    try:
        yield
    finally:
        CONNECTORS.remove(fake_channel.CONNECTOR)


@pytest.fixture
def hub(catalogued: None, database: Database) -> Iterator[Hub]:
    h = make_hub(database)
    yield h
    h.close()


# Modules that may name a real connector: the demo tells stories about them, and the API's
# examples and one docstring show them. Logic anywhere else must ask the catalogue instead.
MAY_NAME = {
    "admin/openapi.py",
    "config.py",
    "demo.py",
    "fulfilment/endpoints.py",
    "orders/schemas.py",
    "connections/schemas.py",
}


def test_the_hub_names_no_connector_in_its_logic() -> None:
    names = [f'"{connector.name}"' for connector in CONNECTORS]
    named = {
        str(path.relative_to(HUB))
        for path in HUB.rglob("*.py")
        if any(name in path.read_text() for name in names)
    }
    assert named <= MAY_NAME, sorted(named - MAY_NAME)


def test_a_catalogued_channel_takes_orders_end_to_end(hub: Hub) -> None:
    channel = hub.runtime.connectors.channel("fake")
    assert isinstance(channel, FakeChannel)
    simulator = hub.wired.simulator("fake", FakeSimulator)
    hub.set_stock("SKU-F", 2)

    assert simulator.place("evt-1", order_json("F-1", ("SKU-F", 1))) == 200
    hub.drain()

    order = hub.order("fake", "F-1")
    # The fake channel declares acknowledge and accept: both were called before it confirmed.
    assert [c for c, _ in channel.calls] == ["acknowledge", "accept"]
    assert order["status"] == "confirmed"
    assert order["fulfilment_provider"] == "deliverr"
    assert hub.stock("SKU-F")["reserved"] == 1


def test_a_catalogued_channel_is_reconciled_on_schedule(hub: Hub) -> None:
    names = {schedule.name for schedule in all_schedules(hub.runtime)}
    assert reconcile_schedule_name("fake") in names


def test_a_wrongly_signed_webhook_of_a_catalogued_channel_is_refused(hub: Hub) -> None:
    body = fake_channel.webhook("evt-2", "order.new", order_json("F-2", ("SKU-F", 1)))
    headers = {**fake_channel.signed(body), "x-fake-signature": "0" * 64}
    assert hub.client.post("/webhooks/fake", content=body, headers=headers).status_code == 401
