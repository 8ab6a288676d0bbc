"""Authenticated webhooks whose envelope no column holds (an id or type too long, a NUL, a lone
surrogate) are stored failed and answered 2xx, on both backends; unauthenticated ones are still
refused. Driven through the hub app with the fake channel's signing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from hub.db import Database
from tests.fake_channel import order_json, signed
from tests.harness import Hub, make_hub


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, fake=True)
    yield h
    h.close()


def envelope(event_id: str, event_type: str = "order.new", order_id: str = "A-1") -> bytes:
    # json.dumps escapes a lone surrogate and a NUL as \\u sequences, as a channel's JSON would.
    return json.dumps(
        {"id": event_id, "type": event_type, "order": order_json(order_id, ("SKU-1", 1))}
    ).encode()


def deliveries(hub: Hub, **params: Any) -> list[dict[str, Any]]:
    response = hub.admin("GET", "/admin/webhooks/deliveries", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


@pytest.mark.parametrize(
    ("event_id", "event_type", "why"),
    [
        pytest.param("e" * 161, "order.new", "event id over 160 characters", id="long-id"),
        pytest.param("evt-1", "t" * 65, "event type over 64 characters", id="long-type"),
        pytest.param("evt\x00-1", "order.new", "event id holds a NUL character", id="nul-id"),
        pytest.param("evt-\ud800", "order.new", "event id is not valid Unicode", id="surrogate-id"),
        pytest.param(
            "evt-1", "order.\udfff", "event type is not valid Unicode", id="surrogate-type"
        ),
    ],
)
def test_authenticated_webhook_whose_envelope_no_column_holds_is_stored_failed(
    hub: Hub, event_id: str, event_type: str, why: str
) -> None:
    body = envelope(event_id, event_type)

    response = hub.client.post("/webhooks/fake", content=body, headers=signed(body))

    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["status"] == "accepted"
    event = hub.admin("GET", f"/admin/events/{receipt['event_id']}").json()
    assert event["status"] == "failed"
    assert why in event["error"]
    assert event["body"] == body.decode()
    [failed] = deliveries(hub, outcome="failed")
    assert (failed["event_id"], failed["channel"]) == (receipt["event_id"], "fake")
    assert why in failed["reason"]
    again = hub.client.post("/webhooks/fake", content=body, headers=signed(body))
    assert again.json() == {"status": "duplicate", "event_id": receipt["event_id"]}
    assert hub.admin("GET", "/admin/jobs").json()["data"] == [], "a failed event waits"


def test_event_with_an_overlong_id_is_replayed_into_its_order(hub: Hub) -> None:
    body = envelope("e" * 500, order_id="LONG-1")
    receipt = hub.client.post("/webhooks/fake", content=body, headers=signed(body)).json()

    replay = hub.admin("POST", f"/admin/events/{receipt['event_id']}/replay")
    assert replay.status_code == 202, replay.text
    hub.drain()

    assert hub.order("fake", "LONG-1")["status"] == "confirmed"
    event = hub.admin("GET", f"/admin/events/{receipt['event_id']}").json()
    assert (event["status"], event["order_id"]) == ("processed", hub.order("fake", "LONG-1")["id"])


def test_unsigned_webhook_with_an_unstorable_id_is_still_refused(hub: Hub) -> None:
    body = envelope("evt\x00-1")

    response = hub.client.post("/webhooks/fake", content=body)

    assert response.status_code == 401
    assert hub.admin("GET", "/admin/events").json()["data"] == []
    assert [d["outcome"] for d in deliveries(hub)] == ["rejected"]


def test_a_database_away_is_not_a_refused_envelope_the_delivery_fails_and_comes_again(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from hub.inbox import service

    real_insert = service._insert
    calls: list[int] = []

    def connection_lost_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(service, "_insert", connection_lost_once)
    body = envelope("evt-9")

    # Not stored as failed: the error reaches the channel (a 5xx), which sends it again.
    with pytest.raises(OperationalError):
        hub.client.post("/webhooks/fake", content=body, headers=signed(body))
    assert deliveries(hub, outcome="failed") == []

    again = hub.client.post("/webhooks/fake", content=body, headers=signed(body))
    assert again.status_code == 200, again.text
    event = hub.admin("GET", f"/admin/events/{again.json()['event_id']}").json()
    assert event["status"] != "failed"
