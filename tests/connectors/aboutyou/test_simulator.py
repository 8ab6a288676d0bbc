"""The ABOUT YOU simulator's own rules, and the whole connector loop through its webhooks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.aboutyou import AboutYouWebhooks
from connectors.aboutyou.simulator import AboutYouSimulator
from connectors.base import ChannelEvent, EventKind, Unauthenticated

from .factories import API_KEY, HOST, WEBHOOK_KEY, channel_for, order_view, shipment

AUTH = {"X-API-Key": API_KEY}


@pytest.fixture
def sim() -> AboutYouSimulator:
    return AboutYouSimulator(API_KEY, WEBHOOK_KEY)


@pytest.fixture
def api(sim: AboutYouSimulator) -> Iterator[TestClient]:
    with TestClient(sim.app, base_url=HOST) as client:
        yield client


def ship_group(item_ids: list[Any], **changes: Any) -> dict[str, Any]:
    group = {
        "order_items": item_ids,
        "carrier_key": "DHL",
        "shipment_tracking_key": "T-1",
        "return_tracking_key": "R-1",
    }
    return {"items": [{**group, **changes}]}


def completed(api: TestClient, kind: str, batch_id: str) -> dict[str, Any]:
    params = {"batch_request_id": batch_id}
    first = api.get(f"/api/v1/results/{kind}", params=params, headers=AUTH).json()
    assert first["status"] == "pending"
    result: dict[str, Any] = api.get(f"/api/v1/results/{kind}", params=params, headers=AUTH).json()
    assert result["status"] == "completed"
    return result


def test_api_calls_without_the_key_are_401(api: TestClient) -> None:
    assert api.get("/api/v1/orders/").status_code == 401
    response = api.post("/api/v1/orders/ship", json=ship_group([1]), headers={"X-API-Key": "x"})
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthenticated."}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"shipment_tracking_key": ""}, "items.0.shipment_tracking_key"),
        ({"return_tracking_key": "R" * 256}, "items.0.return_tracking_key"),
        ({"carrier_key": "PIGEON"}, "items.0.carrier_key"),
        ({"order_items": []}, "items.0.order_items"),
        ({"order_items": ["a"]}, "items.0.order_items"),
    ],
)
def test_invalid_ship_bodies_are_422_with_the_field(
    api: TestClient, sim: AboutYouSimulator, changes: dict[str, Any], field: str
) -> None:
    (item,) = sim.item_ids(sim.create_order("SKU-1"))
    response = api.post("/api/v1/orders/ship", json=ship_group([item], **changes), headers=AUTH)
    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert sim.order(sim.item_orders[item])["order_items"][0]["status"] == "open"


def test_keys_of_exactly_255_characters_are_accepted(
    api: TestClient, sim: AboutYouSimulator
) -> None:
    (item,) = sim.item_ids(sim.create_order("SKU-1"))
    body = ship_group([item], shipment_tracking_key="T" * 255, return_tracking_key="R")
    assert api.post("/api/v1/orders/ship", json=body, headers=AUTH).status_code == 202


def test_empty_ship_body_is_422(api: TestClient) -> None:
    response = api.post("/api/v1/orders/ship", json={"items": []}, headers=AUTH)
    assert response.status_code == 422
    assert "items" in response.json()["errors"]


def test_unknown_and_twice_shipped_items_fail_per_item(
    api: TestClient, sim: AboutYouSimulator
) -> None:
    (item,) = sim.item_ids(sim.create_order("SKU-1"))
    first = api.post("/api/v1/orders/ship", json=ship_group([item]), headers=AUTH).json()
    again = api.post("/api/v1/orders/ship", json=ship_group([item, 1]), headers=AUTH).json()

    assert completed(api, "ship-orders", first["batch_request_id"])["items"] == [
        {"order_item_id": item, "success": True}
    ]
    outcomes = completed(api, "ship-orders", again["batch_request_id"])["items"]
    assert [(o["order_item_id"], o["error_code"]) for o in outcomes] == [
        (item, "already_shipped"),
        (1, "not_found"),
    ]


def test_results_of_unknown_batches_or_the_wrong_kind_are_404(
    api: TestClient, sim: AboutYouSimulator
) -> None:
    (item,) = sim.item_ids(sim.create_order("SKU-1"))
    batch = api.post("/api/v1/orders/cancel", json={"items": [{"id": item}]}, headers=AUTH).json()
    params = {"batch_request_id": batch["batch_request_id"]}
    assert api.get("/api/v1/results/ship-orders", params=params, headers=AUTH).status_code == 404
    missing = {"batch_request_id": "nope"}
    assert api.get("/api/v1/results/cancel-orders", params=missing, headers=AUTH).status_code == 404
    assert completed(api, "cancel-orders", batch["batch_request_id"])["items"][0]["success"]


def test_page_size_over_100_is_422(api: TestClient) -> None:
    response = api.get("/api/v1/orders/", params={"per_page": 101}, headers=AUTH)
    assert response.status_code == 422
    assert "per_page" in response.json()["errors"]


def test_control_route_places_an_order_and_sends_order_created(
    api: TestClient, sim: AboutYouSimulator
) -> None:
    response = api.post("/_sim/orders", json={"skus": ["SKU-1", "SKU-1"]})
    order_id = response.json()["id"]
    assert len(sim.item_ids(order_id)) == 2
    webhook = sim.sent_webhooks[-1]
    assert webhook.headers["X-API-Key"] == WEBHOOK_KEY
    assert b'"event":"order.created"' in webhook.body
    assert sim.calls == []  # control routes are not API calls


def test_returning_an_unshipped_item_is_refused_by_the_driver(sim: AboutYouSimulator) -> None:
    order_id = sim.create_order("SKU-1")
    with pytest.raises(ValueError):
        sim.return_items(order_id, sim.item_ids(order_id))


# -- the loop through a stand-in for the hub's webhook endpoint ---------------------------------


class Inbox:
    """A minimal stand-in for the hub's receipt: authenticate, dedupe on the id, store."""

    def __init__(self, key: str) -> None:
        self.receiver = AboutYouWebhooks(SecretStr(key))
        self.events: dict[str, ChannelEvent] = {}
        self.app = FastAPI()
        self.app.post("/webhooks/aboutyou")(self.receive)

    async def receive(self, request: Request) -> JSONResponse:
        body = await request.body()
        try:
            self.receiver.authenticate(request.headers, body, datetime.now(UTC))
        except Unauthenticated as exc:
            return JSONResponse({"error": "unauthenticated", "detail": str(exc)}, 401)
        identity = self.receiver.identify(request.headers, body)
        if identity.external_id in self.events:
            return JSONResponse({"status": "duplicate", "event_id": identity.external_id})
        self.events[identity.external_id] = self.receiver.parse(body, identity)
        return JSONResponse({"status": "accepted", "event_id": identity.external_id})


def wired(key: str) -> tuple[AboutYouSimulator, Inbox]:
    inbox = Inbox(key)
    client = TestClient(inbox.app, base_url="https://hub.test")
    sim = AboutYouSimulator(
        API_KEY,
        WEBHOOK_KEY,
        webhook_url="https://hub.test/webhooks/aboutyou",
        webhook_client=client,
    )
    return sim, inbox


def test_order_cancel_ship_loop_produces_the_expected_events() -> None:
    sim, inbox = wired(WEBHOOK_KEY)
    order_id = sim.create_order("SKU-1", "SKU-2")
    first, second = sim.item_ids(order_id)

    assert sim.cancel_items(order_id, [second]) == 200
    view = order_view(sim, order_id, [shipment([first])])
    channel_for(sim).push_tracking(view, "shp-1")

    kinds = [(e.kind, e.channel_order_id, e.line_ids) for e in inbox.events.values()]
    assert kinds == [
        (EventKind.ORDER_PLACED, str(order_id), ()),
        (EventKind.LINES_CANCELLED, str(order_id), (str(second),)),
        (EventKind.ORDER_NOTICE, str(order_id), (str(first),)),
    ]
    placed = next(iter(inbox.events.values())).order
    assert placed is not None
    assert [line.channel_line_id for line in placed.lines] == [str(first), str(second)]
    assert sim.order(order_id)["status"] == "shipped"


def test_redelivered_webhook_is_a_duplicate() -> None:
    sim, inbox = wired(WEBHOOK_KEY)
    sim.create_order("SKU-1")
    original = sim.sent_webhooks[-1]
    assert sim.deliver(original.body, original.headers) == 200
    assert len(inbox.events) == 1


def test_webhook_with_the_wrong_key_is_401_and_nothing_is_stored() -> None:
    sim, inbox = wired("a-different-key")
    sim.create_order("SKU-1")
    assert sim.sent_webhooks[-1].status == 401
    assert inbox.events == {}


def test_webhook_without_a_key_is_401_and_nothing_is_stored() -> None:
    sim, inbox = wired(WEBHOOK_KEY)
    assert sim.deliver(sim.webhook_body("order.created", {}), {}) == 401
    assert inbox.events == {}
