"""The console's views of what went wrong at intake and of an order's flags."""

from __future__ import annotations

import json

from tests.fake_channel import order_json, signed
from tests.harness import Hub
from tests.hub.console.conftest import page, sign_in


def test_webhook_failed_at_intake_is_listed_with_its_reason_and_a_replay(hub: Hub) -> None:
    body = json.dumps(
        {"id": "evt\x00-1", "type": "order.new", "order": order_json("A-1", ("SKU-1", 1))}
    ).encode()
    receipt = hub.client.post("/webhooks/fake", content=body, headers=signed(body)).json()
    sign_in(hub)

    shown = page(hub, "/console/webhooks")

    assert f"/console/events/{receipt['event_id']}/replay" in shown.text
    assert "event id holds a NUL character" in shown.text
