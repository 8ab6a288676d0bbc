"""`hub flexport subscribe` and `hub flexport webhooks` against the simulator over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from connectors.flexport.client import SUBSCRIBED_EVENTS
from connectors.flexport.simulator import FlexportSimulator
from hub.cli import main
from hub.sim import _listening_socket, serve
from tests.connectors.flexport.conftest import ACCESS_TOKEN, WEBHOOK_TOKEN

HOOK_URL = "https://hub.example.com/webhooks/flexport"


@pytest.fixture
def served() -> Iterator[tuple[FlexportSimulator, dict[str, str]]]:
    sim = FlexportSimulator(ACCESS_TOKEN, webhook_token=WEBHOOK_TOKEN)
    server = serve(sim.app, _listening_socket())
    env = {
        "FLEXPORT_BASE_URL": server.url,
        "FLEXPORT_ACCESS_TOKEN": ACCESS_TOKEN,
        "FLEXPORT_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "FLEXPORT_WEBHOOK_TOKEN_HEADER": "X-Hook-Key",
        "FLEXPORT_WEBHOOK_URL": HOOK_URL,
    }
    yield sim, env
    server.stop()


def test_subscribe_creates_one_subscription_per_event_type_once(
    served: tuple[FlexportSimulator, dict[str, str]],
) -> None:
    sim, env = served
    first = CliRunner().invoke(main, ["flexport", "subscribe"], env=env)
    assert first.exit_code == 0, first.output
    assert f"created {len(SUBSCRIBED_EVENTS)} of {len(SUBSCRIBED_EVENTS)}" in first.output
    assert sorted(h["type"] for h in sim.webhooks) == sorted(SUBSCRIBED_EVENTS)
    assert all(
        (h["url"], h["method"], h["authMethod"], h["token"], h["tokenHeader"])
        == (HOOK_URL, "POST", "TOKEN", WEBHOOK_TOKEN, "X-Hook-Key")
        for h in sim.webhooks
    )

    again = CliRunner().invoke(main, ["flexport", "subscribe"], env=env)
    assert again.exit_code == 0, again.output
    assert "created 0 of" in again.output
    assert len(sim.webhooks) == len(SUBSCRIBED_EVENTS)
    listed = CliRunner().invoke(main, ["flexport", "webhooks"], env=env)
    assert listed.output.count(HOOK_URL) == len(SUBSCRIBED_EVENTS)


def test_subscribe_refuses_a_url_flexport_would_not_deliver_to(
    served: tuple[FlexportSimulator, dict[str, str]],
) -> None:
    sim, env = served
    plain = "http://hub.example.com/webhooks/flexport"
    result = CliRunner().invoke(main, ["flexport", "subscribe", "--url", plain], env=env)
    assert result.exit_code != 0
    assert "https://" in result.output
    assert sim.webhooks == []
