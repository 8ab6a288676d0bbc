"""Deliverr's wire against Deliverr's own v1 description: the provider's requests, the
simulator's answers, its refusals and its webhooks, and what the description shows read by the
wire models.

The provider and the simulator are each checked against `connectors/deliverr/spec` (derived
from Deliverr's OpenAPI), never against each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.base import Address, FulfilmentLine, FulfilmentRequest, Permanent, Retriable
from connectors.contracts import ContractLog, iter_examples, watch
from connectors.deliverr import DeliverrProvider, DeliverrWebhooks
from connectors.deliverr.simulator import DeliverrSimulator
from connectors.deliverr.spec import CONTRACT, STATUS_WEBHOOK_SCHEMA, webhook_problems
from connectors.deliverr.transformers import (
    DeliverrErrorCode,
    ErrorBody,
    Order,
    StatusUpdateEvent,
    TokenResponse,
    create_order_body,
    idempotency_key,
)
from tests.connectors.deliverr.conftest import (
    ACCESS_TOKEN,
    BASE_URL,
    HUB_WEBHOOK_URL,
    REFRESH_TOKEN,
    WEBHOOK_TOKEN,
    MemoryTokenStore,
    Receiver,
    make_settings,
)

AUTH = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
ORDERS = "/orders/v1/order"


def request(order_id: str, *, country: str = "US", sku: str = "SKU-A") -> FulfilmentRequest:
    return FulfilmentRequest(
        order_id=order_id,
        channel="depop",
        channel_order_id=f"depop-{order_id}",
        placed_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        shipping_address=Address(
            name="Ada Lovelace",
            line1="1 Engine Way",
            city="Austin",
            region="TX" if country == "US" else None,
            postal_code="78701" if country == "US" else None,
            country_code=country,
        ),
        lines=(FulfilmentLine(line_id="line-1", sku=sku, quantity=2),),
        shipping_service="standard",
    )


@pytest.fixture
def receiver() -> Receiver:
    return Receiver(DeliverrWebhooks(make_settings()))


@pytest.fixture
def sim(receiver: Receiver) -> Iterator[DeliverrSimulator]:
    with TestClient(receiver.app(), base_url="https://hub.test") as hub:
        yield DeliverrSimulator(
            access_token=ACCESS_TOKEN,
            webhook_token=WEBHOOK_TOKEN,
            refresh_token=REFRESH_TOKEN,
            webhook_url=HUB_WEBHOOK_URL,
            webhook_client=hub,
            known_products={"SKU-A", "SKU-B"},
        )


@pytest.fixture
def http(sim: DeliverrSimulator) -> Iterator[TestClient]:
    with TestClient(sim.app, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def log(http: TestClient) -> ContractLog:
    return watch(http, CONTRACT, strict=True)


@pytest.fixture
def provider(http: TestClient, log: ContractLog) -> DeliverrProvider:
    return DeliverrProvider(make_settings(), http=http, token_store=MemoryTokenStore())


def _order_life(sim: DeliverrSimulator, provider: DeliverrProvider) -> None:
    """Every call the hub makes to Deliverr, in the successes and refusals a seller meets."""
    shipped = provider.create_order(request("ord_1"))
    assert provider.create_order(request("ord_1")) == shipped  # found, not created again
    provider.create_order(request("ord_2", country="DE"))
    sim.ship(shipped, [("SKU-A", 1)])
    assert provider.get_order(shipped).raw_status == "PARTIALLY_SHIPPED"
    with pytest.raises(Permanent):
        provider.cancel_order(shipped)  # 422, then read: a return is needed
    cancelled = provider.create_order(request("ord_3"))
    provider.cancel_order(cancelled)
    provider.cancel_order(cancelled)  # 204 again
    with pytest.raises(Permanent):
        provider.cancel_order("404404")  # 404
    with pytest.raises(Permanent):
        provider.get_order("404404")  # 404
    with pytest.raises(Permanent):
        provider.create_order(request("ord_4", sku="NEVER-INBOUNDED"))  # 400 with its type
    sim.set_error_for_next_create(DeliverrErrorCode.ORDER_SUBMITTED_TOO_EARLY)
    with pytest.raises(Retriable):
        provider.create_order(request("ord_5"))
    sim.expire_access_token()  # 401, renewal through the token endpoint, repeat
    sim.ship(shipped)
    assert provider.get_order_by_external_id("ord_1") is not None


def test_every_call_the_provider_makes_fits_deliverrs_description(
    sim: DeliverrSimulator, provider: DeliverrProvider, log: ContractLog
) -> None:
    _order_life(sim, provider)
    assert log.problems == []
    assert log.operations() == {(op.method, op.path) for op in CONTRACT.operations}


def test_the_simulator_answered_every_documented_outcome_it_was_asked_for(
    sim: DeliverrSimulator, provider: DeliverrProvider, log: ContractLog
) -> None:
    _order_life(sim, provider)
    assert log.statuses("POST", ORDERS) == {201, 400}
    assert log.statuses("GET", f"{ORDERS}/externalId/{{externalOrderId}}") == {200, 401, 404}
    assert log.statuses("GET", f"{ORDERS}/{{orderId}}") == {200, 404}
    assert log.statuses("POST", f"{ORDERS}/{{orderId}}/cancel") == {204, 404, 422}
    assert log.statuses("POST", "/oauth/v1/token") == {200}


def test_a_replayed_create_fits_the_description_too(
    http: TestClient, log: ContractLog, sim: DeliverrSimulator
) -> None:
    body = create_order_body(request("ord_9"), "Standard")
    headers = {**AUTH, "idempotency-key": idempotency_key("ord_9", body)}
    first = http.post(ORDERS, json=body, headers=headers)
    again = http.post(ORDERS, json=body, headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert log.problems == []


def _refusal(http: TestClient, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    answer = http.request(method, path, **kwargs)
    assert (
        CONTRACT.response_problems(
            method, str(answer.request.url), answer.status_code, answer.headers, answer.content
        )
        == []
    )
    body: dict[str, Any] = answer.json()
    body["status"] = answer.status_code
    return body


def _body(**changes: Any) -> dict[str, Any]:
    body = create_order_body(request("ord_x"), "Standard")
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        (_body(shiptoAddress=None), "ORDER_MISSING_SHIPPING_ADDRESS"),
        (_body(lineItems=None), "ORDER_CANNOT_BE_FULFILLED"),
        (_body(lineItems=[{"quantity": 1}]), "ORDER_MISSING_LINE_ITEM"),
        (
            _body(shiptoAddress={**_body()["shiptoAddress"], "countryCode": "USA"}),
            "ORDER_INVALID_COUNTRY_CODE",
        ),
        (
            _body(shiptoAddress={k: v for k, v in _body()["shiptoAddress"].items() if k != "city"}),
            "ORDER_MISSING_CITY",
        ),
        (_body(source=None), None),
        (_body(giftMessage="hi"), None),  # the body admits no other field
        (_body(lineItems=[{"externalProductId": "SKU-A", "quantity": 0}]), None),
        (_body(shiptoAddress={**_body()["shiptoAddress"], "name": "Al"}), None),
    ],
)
def test_the_simulator_refuses_a_create_the_description_does_not_admit(
    http: TestClient, sim: DeliverrSimulator, body: dict[str, Any], error_type: str | None
) -> None:
    refused = _refusal(http, "POST", ORDERS, json=body, headers=AUTH)

    assert (refused["status"], refused["code"], refused.get("type")) == (400, 400, error_type)
    assert sim.orders == {}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", ORDERS, {"json": _body(), "headers": {**AUTH, "idempotency-key": "key-1"}}, 400),
        ("POST", "/oauth/v1/token", {"data": {"grant_type": "password"}}, 400),
        # Not an order id: no such order (GetOrder and CancelOrder document no 400).
        ("GET", f"{ORDERS}/not-a-number", {"headers": AUTH}, 404),
        ("POST", f"{ORDERS}/abc/cancel", {"headers": AUTH}, 404),
    ],
)
def test_the_simulator_refuses_other_requests_outside_the_description(
    http: TestClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    refused = _refusal(http, method, path, **kwargs)

    assert (refused["status"], refused["code"]) == (status, status)


def test_every_webhook_the_simulator_sends_fits_the_described_event(
    sim: DeliverrSimulator, provider: DeliverrProvider, receiver: Receiver
) -> None:
    shipped = provider.create_order(request("ord_1"))
    cancelled = provider.create_order(request("ord_2"))
    provider.cancel_order(cancelled)
    sim.process(shipped)
    sim.ship(shipped, [("SKU-A", 1)])
    sim.ship(shipped)
    sim.mark_delivered(shipped)
    sim.flush_webhooks()

    bodies = [json.loads(hook.body) for hook in sim.sent_webhooks]
    assert [(b["orderId"], b["newStatus"]) for b in bodies] == [
        (shipped, "SHIPPED"),
        (shipped, "CREATED"),
        (cancelled, "CREATED"),
        (cancelled, "CANCELLED"),
    ]
    assert [webhook_problems(hook.body) for hook in sim.sent_webhooks] == [[]] * 4
    assert all("externalOrderId" not in body for body in bodies)
    assert receiver.rejected == 0
    assert [StatusUpdateEvent.model_validate(b).eventId for b in bodies] == receiver.event_ids


def test_the_webhook_schema_is_the_descriptions_event() -> None:
    assert (
        STATUS_WEBHOOK_SCHEMA["components"]["schemas"]["OrderStatusWebhookEvent"][
            "additionalProperties"
        ]
        is False
    )
    assert webhook_problems(
        {
            "eventId": "e",
            "eventTime": "2024-05-02T09:00:00Z",
            "type": "ORDER_STATUS_UPDATE",
            "updateType": "PARTIALLY_SHIPPED",
            "newStatus": "PARTIALLY_SHIPPED",
            "orderId": "1",
            "externalOrderId": "hub-1",
        }
    ) == [
        "payload.newStatus: 'PARTIALLY_SHIPPED' is not one of ['CREATED', 'SHIPPED', 'CANCELLED']",
        "payload.updateType: 'PARTIALLY_SHIPPED' is not one of ['CREATED', 'SHIPPED', 'CANCELLED']",
        "payload: Additional properties are not allowed ('externalOrderId' was unexpected)",
    ]


def test_the_simulators_answers_are_read_by_the_wire_models(http: TestClient) -> None:
    created = http.post(ORDERS, json=_body(), headers=AUTH).json()
    order = Order.model_validate(created)
    assert (order.orderId, order.status) == (created["orderId"], "CREATED")
    missing = http.get(f"{ORDERS}/404404", headers=AUTH).json()
    assert ErrorBody.model_validate(missing).code == 404
    grant = {"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN}
    tokens = http.post("/oauth/v1/token", data=grant).json()
    assert TokenResponse.model_validate(tokens).refresh_token == tokens["refresh_token"]


def test_the_descriptions_idempotency_key_example_is_a_key_the_provider_could_send() -> None:
    [example] = [
        value
        for where, value in iter_examples(CONTRACT.document)
        if where.endswith("IdempotencyHeaderType/example")
    ]
    body = create_order_body(request("ord_1"), "Standard")
    problems = CONTRACT.request_problems(
        "POST",
        f"{BASE_URL}{ORDERS}",
        {**AUTH, "content-type": "application/json", "idempotency-key": example},
        json.dumps(body).encode(),
    )
    assert problems == []
