"""topi's wire against topi's own description: the client's requests, the simulator's answers,
its refusals and its webhooks, and the description's examples read by the wire models.

The client and the simulator are each checked against `connectors/topi/spec` (derived from
topi's Seller API OpenAPI), never against each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.base import FlowNotSupported, Permanent
from connectors.contracts import ContractLog, iter_examples, payload_problems, watch
from connectors.topi import TopiChannel, TopiWebhooks
from connectors.topi.simulator import API_HOST, SimLine, TopiSimulator
from connectors.topi.spec import CONTRACT, ORDER_WEBHOOK_SCHEMA, token_path, webhook_problems
from connectors.topi.transformers import (
    ShipmentUnit,
    WireError,
    WireOrdersPage,
    WireToken,
    parse_order,
    shipment_body,
    to_channel_order,
)
from tests.connectors.topi.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    WEBHOOK_SECRET,
    WebhookSink,
    make_settings,
    shipment,
    view_of,
)

TOKEN_URL = f"https://identity.topi.eu{token_path(CONTRACT.document)}"
GOA = "application/vnd.goa.error"


@pytest.fixture
def sink() -> WebhookSink:
    return WebhookSink(TopiWebhooks([WEBHOOK_SECRET]))


@pytest.fixture
def sim(sink: WebhookSink) -> Iterator[TopiSimulator]:
    with TestClient(sink.app(), base_url="https://hub.example") as hub:
        yield TopiSimulator(
            CLIENT_ID,
            CLIENT_SECRET,
            WEBHOOK_SECRET,
            webhook_url="https://hub.example/webhooks/topi",
            webhook_client=hub,
        )


@pytest.fixture
def http(sim: TopiSimulator) -> Iterator[TestClient]:
    with TestClient(sim.app, base_url=API_HOST) as client:
        yield client


@pytest.fixture
def log(http: TestClient) -> ContractLog:
    return watch(http, CONTRACT, strict=True)


@pytest.fixture
def channel(http: TestClient, log: ContractLog) -> TopiChannel:
    return TopiChannel(make_settings(), http=http)


def _order_life(sim: TopiSimulator, channel: TopiChannel) -> None:
    """Every call the hub makes to topi, in the successes and refusals a seller meets."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    oid = sim.create_order([SimLine("LAPTOP", 2), SimLine("CHARGER", 1, "pay_now")])
    order = channel.fetch_order(oid)
    view = view_of(order)
    channel.acknowledge(view)
    channel.acknowledge(view)  # repeated: topi answers 422, the order shows it took effect
    channel.accept(view)
    first = shipment("s1", ("LAPTOP", 1, ("SN-1",)))
    channel.push_tracking(view_of(order, (first,)), "s1")
    second = shipment("s2", ("LAPTOP", 1, ("SN-2",)), ("CHARGER", 1, ()))
    pushed = replace(first, pushed_to_channel=True)
    channel.push_tracking(view_of(order, (pushed, second)), "s2")
    with pytest.raises(Permanent):
        channel.reject(view, "too late")  # confirmed: topi answers 422
    sim.expire_tokens()  # the next call is answered 401 and the token renewed
    other = sim.create_order([SimLine("GONE", 1)])
    channel.reject(view_of(channel.fetch_order(other)), "unknown SKU")
    with pytest.raises(Permanent):
        channel.fetch_order("00000000-0000-4000-8000-000000000000")  # 404
    with pytest.raises(Permanent):
        stranger = shipment("s3", ("NOT-ORDERED", 1, ()))
        channel.push_tracking(view_of(order, (stranger,)), "s3")  # no such unit: 400
    assert len(list(channel.list_orders(start, datetime.now(UTC) + timedelta(minutes=1)))) == 2
    with pytest.raises(FlowNotSupported):
        channel.cancel(view, "customer asked")


def test_every_call_the_client_makes_fits_topis_description(
    sim: TopiSimulator, channel: TopiChannel, log: ContractLog
) -> None:
    _order_life(sim, channel)
    assert log.problems == []
    assert log.operations() == {(op.method, op.path) for op in CONTRACT.operations}


def test_the_simulator_answered_every_documented_outcome_it_was_asked_for(
    sim: TopiSimulator, channel: TopiChannel, log: ContractLog
) -> None:
    _order_life(sim, channel)
    assert log.statuses("POST", "/v1/orders/{id}/acknowledge") == {200, 422}
    assert log.statuses("POST", "/v1/orders/{id}/reject") == {200, 422}
    assert log.statuses("GET", "/v1/orders/{id}") == {200, 401, 404}
    assert log.statuses("POST", "/v1/shipment") == {200, 400}
    assert log.statuses("POST", "/oauth2/token") == {200}


def test_a_goa_error_answer_is_read_as_json_and_checked_against_error() -> None:
    url = f"{API_HOST}/v1/orders/abc"
    good = {"name": "n", "id": "1", "message": "m", "temporary": False, "timeout": False}
    body = json.dumps({**good, "fault": False}).encode()
    assert CONTRACT.response_problems("GET", url, 404, {"content-type": GOA}, body) == []
    assert CONTRACT.response_problems(
        "GET", url, 404, {"content-type": GOA}, json.dumps(good).encode()
    ) == ["response body: 'fault' is a required property"]


def _token(http: TestClient) -> str:
    answer = http.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "scope": "client"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    token: str = answer.json()["access_token"]
    return token


def _refusal(http: TestClient, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    answer = http.request(method, url, **kwargs)
    assert (
        CONTRACT.response_problems(
            method, str(answer.request.url), answer.status_code, answer.headers, answer.content
        )
        == []
    )
    body: dict[str, Any] = answer.json()
    body["status"] = answer.status_code
    body["content_type"] = answer.headers["content-type"]
    return body


@pytest.mark.parametrize(
    ("method", "path", "body", "params"),
    [
        ("POST", "/v1/shipment", {"order_id": "abc"}, None),
        (
            "POST",
            "/v1/shipment",
            {"order_id": "abc", "serial_numbers": [{"serial_number": ""}]},
            None,
        ),
        (
            "POST",
            "/v1/shipment",
            {
                "order_id": "abc",
                "serial_numbers": [
                    {
                        "seller_product_reference": {"source": "", "reference": "A"},
                        "serial_number": "",
                    }
                ],
            },
            None,
        ),
        (
            "POST",
            "/v1/shipment",
            {"order_id": "abc", "serial_numbers": [], "metadata": {"note": "x" * 401}},
            None,
        ),
        ("GET", "/v1/orders/paginated", None, {"sort_order": "sideways"}),
        ("GET", "/v1/orders/paginated", None, {"limit": "many"}),
        ("GET", "/v1/orders/not_a%20topi_id", None, None),
        ("POST", "/v1/orders/not_a%20topi_id/accept", None, None),
    ],
)
def test_the_simulator_refuses_what_the_description_does_not_admit_with_a_goa_400(
    http: TestClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    params: dict[str, str] | None,
) -> None:
    headers = {"Authorization": f"Bearer {_token(http)}"}
    refused = _refusal(http, method, path, json=body, params=params, headers=headers)
    assert refused["status"] == 400
    assert refused["content_type"] == GOA
    assert WireError.model_validate(refused).name == "bad_request"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "client_credentials"}, "invalid_scope"),
        ({"grant_type": "client_credentials", "scope": "seller-order:read"}, "invalid_scope"),
        ({"grant_type": "password", "scope": "client"}, "unsupported_grant_type"),
    ],
)
def test_the_token_endpoint_refuses_other_grants_the_oauth2_way(
    http: TestClient, form: dict[str, str], error: str
) -> None:
    refused = _refusal(http, "POST", TOKEN_URL, data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    assert (refused["status"], refused["error"]) == (400, error)


def test_every_webhook_the_simulator_sends_fits_the_described_order_payload(
    sim: TopiSimulator, channel: TopiChannel, sink: WebhookSink
) -> None:
    shipped = sim.create_order([SimLine("LAPTOP", 1, "pay_now")])
    channel.accept(view_of(channel.fetch_order(shipped)))
    view = view_of(channel.fetch_order(shipped), (shipment("s1", ("LAPTOP", 1, ())),))
    channel.push_tracking(view, "s1")
    sim.cancel_order(sim.create_order([SimLine("LAPTOP", 1)]))
    sent = [json.loads(hook.body) for hook in sim.sent_webhooks]
    assert [body["status"] for body in sent] == ["created", "completed", "created", "canceled"]
    assert [webhook_problems(hook.body) for hook in sim.sent_webhooks] == [[]] * 4
    assert len(sink.events) == 4


def test_the_webhook_schema_refuses_what_topi_would_not_send() -> None:
    assert webhook_problems({"id": "a b", "status": "shipped"}) == [
        "payload.id: 'a b' does not match '^[0-9A-Za-z\\\\-]+$'",
        "payload.status: 'shipped' is not one of ['created', 'completed', 'canceled']",
        "payload: 'assets' is a required property",
        "payload: 'offer_id' is a required property",
        "payload: 'seller_offer_reference' is a required property",
    ]


# -- the description's examples, read by the wire models --------------------------------------


def _examples(pointer_suffix: str) -> list[Any]:
    return [
        value for where, value in iter_examples(CONTRACT.document) if where.endswith(pointer_suffix)
    ]


@pytest.mark.parametrize(
    "suffix",
    [
        "/components/schemas/FullOrderResult/example",
        "/paths//v1/orders/{id}/get/responses/200/content/application/json/example",
    ],
)
def test_full_order_examples_parse_into_canonical_orders(suffix: str) -> None:
    [example] = _examples(suffix)
    order = to_channel_order(parse_order(example), None)
    assert order.channel_order_id == example["id"]
    assert order.lines  # every asset becomes a line, with or without a SKU


@pytest.mark.parametrize(
    "suffix",
    [
        "/components/schemas/OrderResult/example",
        "/paths//v1/orders/{id}/accept/post/responses/200/content/application/json/example",
        "/paths//v1/orders/{id}/acknowledge/post/responses/200/content/application/json/example",
        "/paths//v1/orders/{id}/reject/post/responses/200/content/application/json/example",
    ],
)
def test_order_result_examples_parse(suffix: str) -> None:
    [example] = _examples(suffix)
    assert parse_order(example).id == example["id"]


def test_paginated_examples_parse() -> None:
    examples = _examples("/components/schemas/OrdersSummaryPaginated/example") + _examples(
        "/paths//v1/orders/paginated/get/responses/200/content/application/json/example"
    )
    assert len(examples) == 2
    for example in examples:
        assert WireOrdersPage.model_validate(example).orders


def test_error_example_parses() -> None:
    [example] = _examples("/components/schemas/Error/example")
    assert WireError.model_validate(example).message == example["message"]


def test_the_clients_shipment_body_matches_the_documented_request_example() -> None:
    [example] = _examples("/paths//v1/shipment/post/requestBody/content/application/json/example")
    [entry] = example["serial_numbers"]
    reference = entry["seller_product_reference"]
    unit = ShipmentUnit(reference["source"], reference["reference"], entry["serial_number"])
    documented = replace(
        shipment("s1", tracking_url=example["tracking_url"]),
        carrier=None,
        tracking_numbers=(example["metadata"]["tracking_number"],),
    )
    assert shipment_body(example["order_id"], [unit], documented) == example


def test_the_token_answer_the_simulator_gives_is_read_by_the_wire_model(
    http: TestClient,
) -> None:
    answer = http.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "scope": "client"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert (
        CONTRACT.response_problems(
            "POST", TOKEN_URL, answer.status_code, answer.headers, answer.content
        )
        == []
    )
    assert WireToken.model_validate(answer.json()).expires_in == 7200


def test_webhook_schema_carries_the_descriptions_asset_schema() -> None:
    assert ORDER_WEBHOOK_SCHEMA["components"]["schemas"]["Asset"]["required"] == [
        "id",
        "product_id",
        "title",
        "seller_product_references",
        "status",
    ]
    [asset] = _examples("/components/schemas/Asset/example")
    document = {
        "id": "739b63c2",
        "offer_id": "o",
        "seller_offer_reference": "r",
        "status": "created",
        "assets": [asset],
    }
    assert payload_problems(ORDER_WEBHOOK_SCHEMA, document) == []
