"""The ABOUT YOU simulator's own rules, and the whole connector loop through its webhooks."""

from __future__ import annotations

import uuid
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
    assert first == {"batchRequestId": batch_id, "status": "pending", "items": []}
    result: dict[str, Any] = api.get(f"/api/v1/results/{kind}", params=params, headers=AUTH).json()
    assert result["status"] == "completed"
    return result


def test_api_calls_without_the_key_are_401(api: TestClient) -> None:
    assert api.get("/api/v1/orders/").status_code == 401
    response = api.post("/api/v1/orders/ship", json=ship_group([1]), headers={"X-API-Key": "x"})
    assert response.status_code == 401
    assert response.json() == {"message": "Invalid or missing API key."}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"shipment_tracking_key": ""}, "items[0].shipment_tracking_key: '' should be non-empty"),
        ({"return_tracking_key": "R" * 256}, "body.items[0].return_tracking_key: "),
        ({"order_items": []}, "body.items[0].order_items: [] should be non-empty"),
        ({"order_items": ["a"]}, "body.items[0].order_items[0]: 'a' is not of type 'integer'"),
        ({"order_items": [0]}, "body.items[0].order_items[0]: 0 is less than the minimum of 1"),
    ],
)
def test_ship_bodies_that_break_the_contract_are_400_naming_the_field(
    api: TestClient, sim: AboutYouSimulator, changes: dict[str, Any], problem: str
) -> None:
    (item,) = sim.item_ids(sim.create_order("SKU-1"))
    response = api.post("/api/v1/orders/ship", json=ship_group([item], **changes), headers=AUTH)
    assert response.status_code == 400
    assert problem in response.json()["message"]
    assert sim.batches == {}


def test_a_body_that_is_not_json_is_400_with_a_message(api: TestClient) -> None:
    response = api.post("/api/v1/orders/cancel", content=b"{nope", headers=AUTH)
    assert response.status_code == 400
    assert set(response.json()) == {"message"}


def test_keys_of_exactly_255_characters_are_taken(api: TestClient, sim: AboutYouSimulator) -> None:
    (item,) = sim.item_ids(sim.create_order("SKU-1"))
    body = ship_group([item], shipment_tracking_key="T" * 255, return_tracking_key="R")
    response = api.post("/api/v1/orders/ship", json=body, headers=AUTH)
    assert response.status_code == 200
    assert set(response.json()) == {"batchRequestId"}


def test_a_batch_changes_the_items_only_once_processed(
    api: TestClient, sim: AboutYouSimulator
) -> None:
    number = sim.create_order("SKU-1")
    (item,) = sim.item_ids(number)
    batch = api.post("/api/v1/orders/ship", json=ship_group([item]), headers=AUTH).json()
    assert sim.order(number)["order_items"][0]["status"] == "open"

    result = completed(api, "ship-orders", batch["batchRequestId"])

    assert result["items"] == [
        {"requestItem": ship_group([item])["items"][0], "success": True, "errors": []}
    ]
    shipped = sim.order(number)["order_items"][0]
    assert (shipped["status"], shipped["return_tracking_key"]) == ("shipped", "R-1")


def test_unknown_and_twice_shipped_items_fail_with_messages(
    api: TestClient, sim: AboutYouSimulator
) -> None:
    (item,) = sim.item_ids(sim.create_order("SKU-1"))
    first = api.post("/api/v1/orders/ship", json=ship_group([item]), headers=AUTH).json()
    completed(api, "ship-orders", first["batchRequestId"])
    again = api.post("/api/v1/orders/ship", json=ship_group([item, 1]), headers=AUTH).json()

    (outcome,) = completed(api, "ship-orders", again["batchRequestId"])["items"]
    assert outcome["success"] is False
    assert outcome["errors"] == [
        f"Order item {item} is shipped and cannot be shipped.",
        "Order item 1 does not exist.",
    ]


def test_an_identical_payload_in_flight_gets_the_same_batch(
    api: TestClient, sim: AboutYouSimulator
) -> None:
    (item,) = sim.item_ids(sim.create_order("SKU-1"))
    first = api.post("/api/v1/orders/ship", json=ship_group([item]), headers=AUTH).json()
    again = api.post("/api/v1/orders/ship", json=ship_group([item]), headers=AUTH).json()
    ups = ship_group([item], carrier_key="UPS")
    other = api.post("/api/v1/orders/ship", json=ups, headers=AUTH)
    assert first == again
    assert other.json() != first
    completed(api, "ship-orders", first["batchRequestId"])
    later = api.post("/api/v1/orders/ship", json=ship_group([item]), headers=AUTH).json()
    assert later != first  # no longer in flight


def test_results_of_unknown_batches_or_the_wrong_kind_are_404(
    api: TestClient, sim: AboutYouSimulator
) -> None:
    (item,) = sim.item_ids(sim.create_order("SKU-1"))
    batch = api.post("/api/v1/orders/cancel", json={"items": [{"id": item}]}, headers=AUTH).json()
    params = {"batch_request_id": batch["batchRequestId"]}
    assert api.get("/api/v1/results/ship-orders", params=params, headers=AUTH).status_code == 404
    missing = {"batch_request_id": str(uuid.uuid4())}
    assert api.get("/api/v1/results/cancel-orders", params=missing, headers=AUTH).status_code == 404
    not_an_id = {"batch_request_id": "nope"}
    response = api.get("/api/v1/results/cancel-orders", params=not_an_id, headers=AUTH)
    assert response.status_code == 400
    assert completed(api, "cancel-orders", batch["batchRequestId"])["items"][0]["success"]
    sim.expire_batch(batch["batchRequestId"])
    assert api.get("/api/v1/results/cancel-orders", params=params, headers=AUTH).status_code == 404


def test_orders_are_listed_by_number_status_and_creation_time(
    api: TestClient, sim: AboutYouSimulator
) -> None:
    first, second = sim.create_order("SKU-1"), sim.create_order("SKU-2")
    sim.cancel_items(second, sim.item_ids(second))

    def numbers(**params: Any) -> list[str]:
        page = api.get("/api/v1/orders/", params=params, headers=AUTH).json()
        return [order["order_number"] for order in page["items"]]

    assert numbers(order_number=first) == [first]
    assert numbers(order_status="cancelled") == [second]
    assert numbers(orders_from="2999-01-01T00:00:00Z") == []
    page = api.get("/api/v1/orders/", params={"per_page": 1, "page": 2}, headers=AUTH).json()
    assert page["pagination"] == {"per_page": 1, "page": 2, "pages": 2}
    assert "id" not in page["items"][0]


def test_page_size_over_100_is_400(api: TestClient) -> None:
    response = api.get("/api/v1/orders/", params={"per_page": 101}, headers=AUTH)
    assert response.status_code == 400
    assert "per_page" in response.json()["message"]


def test_order_status_is_mixed_while_items_differ(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1", "SKU-2")
    sim.cancel_items(number, sim.item_ids(number)[:1])
    assert sim.order(number)["status"] == "mixed"
    sim.cancel_items(number, sim.item_ids(number)[1:])
    assert sim.order(number)["status"] == "cancelled"


def test_rate_limits_answer_429_with_the_headers(sim: AboutYouSimulator) -> None:
    now = datetime(2025, 9, 18, tzinfo=UTC)
    sim.rate_limits = True
    sim.clock = lambda: now
    with TestClient(sim.app, base_url=HOST) as api:
        for n in range(100):
            response = api.get("/api/v1/orders/", headers=AUTH)
            assert response.headers["X-RateLimit-Remaining"] == str(99 - n)
        refused = api.get("/api/v1/orders/", headers=AUTH)
        assert api.get("/api/v1/results/stocks", headers=AUTH).status_code == 400  # its own
    assert refused.status_code == 429
    assert refused.json() == {"message": "Too Many Requests"}
    assert refused.headers["Retry-After"] == "60"
    assert refused.headers["X-RateLimit-Limit"] == "100"


def test_control_route_places_an_order_and_sends_order_created(
    api: TestClient, sim: AboutYouSimulator
) -> None:
    response = api.post("/_sim/orders", json={"skus": ["SKU-1", "SKU-1"]})
    number = response.json()["order_number"]
    assert len(sim.item_ids(number)) == 2
    webhook = sim.sent_webhooks[-1]
    assert webhook.headers["X-API-Key"] == WEBHOOK_KEY
    assert b'"event":"order.created"' in webhook.body
    assert sim.calls == []  # control routes are not API calls


def test_returning_an_unshipped_item_is_refused_by_the_driver(sim: AboutYouSimulator) -> None:
    number = sim.create_order("SKU-1")
    with pytest.raises(ValueError):
        sim.return_items(number, sim.item_ids(number))


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
    number = sim.create_order("SKU-1", "SKU-2")
    first, second = sim.item_ids(number)

    assert sim.cancel_items(number, [second]) == 200
    view = order_view(sim, number, [shipment([first])])
    channel_for(sim).push_tracking(view, "shp-1")

    kinds = [(e.kind, e.channel_order_id, e.line_ids) for e in inbox.events.values()]
    assert kinds == [
        (EventKind.ORDER_PLACED, number, ()),
        (EventKind.LINES_CANCELLED, None, (str(second),)),
        (EventKind.ORDER_NOTICE, None, (str(first),)),
    ]
    placed = next(iter(inbox.events.values())).order
    assert placed is not None
    assert [line.channel_line_id for line in placed.lines] == [str(first), str(second)]
    assert sim.order(number)["status"] == "mixed"


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
