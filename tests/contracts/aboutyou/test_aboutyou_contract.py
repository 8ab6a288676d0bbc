"""ABOUT YOU's wire against its contract subset (`connectors/aboutyou/spec/`), derived from the
rebuilt Sellers Center reference: the client's requests and the answers it reads, the
simulator's refusals and webhooks, and the documented examples, each checked against the
description and never against each other."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.aboutyou import AboutYouWebhooks
from connectors.aboutyou.client import (
    ORDERS_LIMIT,
    RESULT_LIMITS,
    RESULTS,
    SUBMIT,
    SUBMIT_LIMITS,
    AboutYouChannel,
    Operation,
)
from connectors.aboutyou.simulator import BODIES, AboutYouSimulator
from connectors.aboutyou.spec import CONTRACT
from connectors.aboutyou.transformers import (
    BATCH_STATUSES,
    EVENT_TYPES,
    FULFILLMENT_TYPES,
    ITEM_STATUSES,
    ORDER_STATUSES,
    BatchResult,
    OrdersPage,
    cancel_body,
    ship_body,
    ship_item,
    stocks_body,
)
from connectors.base import EventKind, ListingNotFound, Pending, Permanent, Retriable
from connectors.contracts import (
    ContractLog,
    ContractViolation,
    iter_examples,
    payload_problems,
    published_contract,
    watch,
)
from hub.migrate import upgrade
from hub.sim import wire_simulators
from tests.connectors.aboutyou.factories import (
    API_KEY,
    HOST,
    WEBHOOK_KEY,
    FakeTime,
    LimiterLog,
    channel_for,
    order_view,
    shipment,
)
from tests.harness import all_settings, in_process

OPERATIONS = {(op.method, op.path) for op in CONTRACT.operations}
SCHEMAS = CONTRACT.document["components"]["schemas"]
AUTH = {"X-API-Key": API_KEY}


def watched(sim: AboutYouSimulator, **kwargs: Any) -> tuple[AboutYouChannel, ContractLog]:
    """The real channel against the simulator, every exchange checked strictly."""
    channel = channel_for(sim, **kwargs)
    return channel, watch(channel.client.http, CONTRACT, strict=True)


def test_the_subset_covers_exactly_what_the_client_calls_and_the_simulator_serves() -> None:
    called = {(method, path) for method, path in SUBMIT.values()}
    called |= {("GET", path) for path in RESULTS.values()}
    called.add(("GET", "/api/v1/orders/"))
    assert OPERATIONS == called
    served = {
        (method, route.path)  # type: ignore[attr-defined]
        for route in AboutYouSimulator(API_KEY, WEBHOOK_KEY).app.routes
        if not route.path.startswith("/_sim")  # type: ignore[attr-defined]
        for method in getattr(route, "methods", ()) or ()
    }
    results = {(m, p) for m, p in OPERATIONS if p.startswith("/api/v1/results/")}
    assert OPERATIONS - results <= served
    assert ("GET", "/api/v1/results/{kind}") in served


def test_the_subset_names_its_source_and_keeps_the_confidence_tags() -> None:
    origin = CONTRACT.derived_from
    assert origin["file"] == "aboutyou-sellers-center-api.yml"
    order = SCHEMAS["GetOrderSchema"]["properties"]
    assert order["cost_with_tax"]["x-confidence"] == "doc"
    assert order["currency_code"]["x-confidence"] == "doc-example"
    assert SCHEMAS["Pagination"]["properties"]["pages"]["x-confidence"] == "third-party"
    assert SCHEMAS["ReturnOrderResultsResponseSchema"]["x-confidence"] == "inferred"
    decided = [p["path"] for p in CONTRACT.document["info"]["x-derived-patches"]]
    assert "/components/schemas/OrderItemSchema/properties/return_tracking_key" in decided


# -- the client's every call ------------------------------------------------------------------


def test_every_call_and_every_answer_the_client_reads_fits_the_contract() -> None:
    sim = AboutYouSimulator(API_KEY, WEBHOOK_KEY)
    channel, log = watched(sim)
    number = sim.create_order("SKU-1", "SKU-2", "SKU-3")
    first, second, third = sim.item_ids(number)
    sim.add_product("SKU-1")

    channel.fetch_order(number)
    start = datetime.now(UTC) - timedelta(days=1)
    assert len(list(channel.list_orders(start, start + timedelta(days=2)))) == 1
    channel.push_tracking(order_view(sim, number, [shipment([first])]), "shp-1")
    channel.mark_returned(order_view(sim, number), [str(first)])
    channel.cancel(order_view(sim, number, shipped=[first]), "out of stock")
    channel.update_listing("SKU-1", 4)
    with pytest.raises(ListingNotFound):
        channel.update_listing("NOT-LISTED", 4)
    sim.pending_polls = 4
    with pytest.raises(Pending) as waiting:
        channel.update_listing("SKU-1", 5)
    sim.expire_batch(waiting.value.resume["batch_request_id"])
    sim.pending_polls = 1
    channel.update_listing("SKU-1", 5, resume=waiting.value.resume)  # 404, then sent again
    with pytest.raises(Permanent):
        channel_for(sim, api_key="wrong").fetch_order(number)

    assert log.problems == []
    assert log.operations() == OPERATIONS
    assert log.statuses("GET", "/api/v1/results/stocks") == {200, 404}
    assert {second, third} <= {
        i["id"] for i in sim.order(number)["order_items"] if i["status"] == "cancelled"
    }


def test_wrong_keys_and_rate_limits_are_answered_as_documented() -> None:
    time = FakeTime()
    epoch = datetime(2025, 9, 18, tzinfo=UTC)
    sim = AboutYouSimulator(
        API_KEY,
        WEBHOOK_KEY,
        rate_limits=True,
        clock=lambda: epoch + timedelta(seconds=time.now),
    )
    number = sim.create_order("SKU-1")
    wrong, wrong_log = watched(sim, api_key="wrong", limiter=LimiterLog())
    with pytest.raises(Permanent):
        wrong.fetch_order(number)
    hasty, log = watched(sim, time=time, limiter=LimiterLog())
    with pytest.raises(Retriable):
        for _ in range(101):
            hasty.fetch_order(number)

    assert wrong_log.problems == log.problems == []
    assert wrong_log.statuses("GET", "/api/v1/orders/") == {401}
    assert log.statuses("GET", "/api/v1/orders/") == {200, 429}


# -- the simulator refuses what the contract refuses -------------------------------------------


def ship(**changes: Any) -> dict[str, Any]:
    item = {
        "order_items": [5000],
        "carrier_key": "DHL",
        "shipment_tracking_key": "T",
        "return_tracking_key": "R",
    }
    return {"items": [{**item, **changes}]}


SOON = {"valid_at": "soon"}
BAD_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/v1/orders/ship", {"json": {"items": []}}),
    ("POST", "/api/v1/orders/ship", {"json": ship(return_tracking_key="")}),
    ("POST", "/api/v1/orders/ship", {"json": ship(shipment_tracking_key="T" * 256)}),
    ("POST", "/api/v1/orders/ship", {"json": ship(order_items=["5000"])}),
    ("POST", "/api/v1/orders/ship", {"json": {"items": [{"order_items": [5000]}]}}),
    ("POST", "/api/v1/orders/cancel", {"json": {"items": [{"id": 0}]}}),
    ("POST", "/api/v1/orders/cancel", {"json": {}}),
    ("POST", "/api/v1/orders/return", {"json": {"items": [{"order_items": [1]}]}}),
    ("PUT", "/api/v1/products/stocks", {"json": {"items": [{"sku": "A", "quantity": -1}]}}),
    ("PUT", "/api/v1/products/stocks", {"json": {"items": [{"sku": "A", "quantity": 10**6 + 1}]}}),
    ("PUT", "/api/v1/products/stocks", {"json": {"items": [{"sku": "S" * 121, "quantity": 1}]}}),
    ("PUT", "/api/v1/products/stocks", {"json": {"items": [{"sku": "A"}] * 1001}}),
    ("PUT", "/api/v1/products/stocks", {"json": {"items": [{"sku": "A", "quantity": 1, **SOON}]}}),
    ("GET", "/api/v1/orders/", {"params": {"page": "first"}}),
    ("GET", "/api/v1/orders/", {"params": {"per_page": 0}}),
    ("GET", "/api/v1/orders/", {"params": {"order_status": "lost"}}),
    ("GET", "/api/v1/orders/", {"params": {"orders_from": "yesterday"}}),
    ("GET", "/api/v1/results/ship-orders", {}),
    ("GET", "/api/v1/results/cancel-orders", {"params": {"batch_request_id": "not-a-uuid"}}),
]


@pytest.mark.parametrize(("method", "path", "request_kwargs"), BAD_REQUESTS)
def test_the_simulator_refuses_what_the_contract_refuses_in_about_yous_form(
    method: str, path: str, request_kwargs: dict[str, Any]
) -> None:
    sim = AboutYouSimulator(API_KEY, WEBHOOK_KEY)
    with TestClient(sim.app, base_url=HOST) as api:
        response = api.request(method, path, headers=AUTH, **request_kwargs)
    assert response.status_code == 400
    assert set(response.json()) == {"message"}
    problems = CONTRACT.response_problems(
        method, str(response.url), 400, response.headers, response.content
    )
    assert problems == []
    assert sim.batches == {}


def test_a_request_the_contract_takes_is_taken() -> None:
    sim = AboutYouSimulator(API_KEY, WEBHOOK_KEY)
    with TestClient(sim.app, base_url=HOST) as api:
        log = watch(api, CONTRACT, strict=True)
        api.post("/api/v1/orders/ship", json=ship(), headers=AUTH)
        api.put(
            "/api/v1/products/stocks",
            json={"items": [{"sku": "A", "quantity": 1, "valid_at": None}]},
            headers=AUTH,
        )
        params = {"batch_request_id": str(uuid.uuid4())}
        api.get("/api/v1/results/stocks", params=params, headers=AUTH)
    assert log.problems == []
    assert [e.status for e in log.exchanges] == [200, 200, 404]


def test_an_order_is_not_served_on_a_path_the_contract_does_not_document() -> None:
    sim = AboutYouSimulator(API_KEY, WEBHOOK_KEY)
    number = sim.create_order("SKU-1")
    assert CONTRACT.operation("GET", f"{HOST}/api/v1/orders/{number}") is None
    with TestClient(sim.app, base_url=HOST) as api:
        assert api.get(f"/api/v1/orders/{number}", headers=AUTH).status_code in (404, 405)


# -- webhooks ---------------------------------------------------------------------------------


def test_every_webhook_the_simulator_sends_has_the_documented_shape() -> None:
    sim = AboutYouSimulator(API_KEY, WEBHOOK_KEY)
    channel = channel_for(sim)
    number = sim.create_order("SKU-1", "SKU-2", prices={"SKU-1": Decimal("19.99")})
    first, second = sim.item_ids(number)
    sim.cancel_items(number, [second])
    channel.push_tracking(order_view(sim, number, [shipment([first])]), "shp-1")
    channel.mark_returned(order_view(sim, number), [str(first)])
    sim.create_order("SKU-3", fulfillment_type="fulfillment_by_marketplace")

    receiver = AboutYouWebhooks(SecretStr(WEBHOOK_KEY))
    sent = [json.loads(w.body)["event"] for w in sim.sent_webhooks]
    assert sent == [
        "order.created",
        "order_items.cancelled",
        "order_items.shipped",
        "order_items.returned",
        "order.created",
    ]
    for webhook in sim.sent_webhooks:
        event = json.loads(webhook.body)["event"]
        assert CONTRACT.webhook_problems(event, webhook.body) == [], event
        parsed = receiver.parse(webhook.body, receiver.identify({}, webhook.body))
        assert parsed.kind is not EventKind.IGNORED or "fulfillment_by_marketplace" in parsed.note


def test_the_webhook_check_catches_a_payload_off_the_documented_shape() -> None:
    body = json.dumps({"id": 0, "event": "order.created", "message": {"order_items": "x"}})
    problems = CONTRACT.webhook_problems("order.created", body.encode())
    assert any("id" in p for p in problems)
    assert any("order_items" in p for p in problems)


def test_the_connector_reads_exactly_the_documented_events() -> None:
    assert set(EVENT_TYPES) == set(CONTRACT.document["webhooks"])


# -- documented examples ----------------------------------------------------------------------


def _same_keys(example: Any, built: Any) -> None:
    """`built` (what the connector sends) has the example's structure: same keys, nested."""
    if isinstance(example, dict):
        assert isinstance(built, dict)
        assert set(built) == set(example)
        for key in example:
            _same_keys(example[key], built[key])
    elif isinstance(example, list):
        assert isinstance(built, list) and built
        _same_keys(example[0], built[0])


def _ship(example: Any) -> None:
    BODIES["ship"].model_validate_json(json.dumps(example))
    built = ship_body([ship_item([1, 2], carrier_key="DHL", tracking_key="T", return_key="R")])
    _same_keys(example, built)


def _cancel(example: Any) -> None:
    BODIES["cancel"].model_validate_json(json.dumps(example))
    _same_keys(example, cancel_body([1, 2]))


def _stocks(example: Any) -> None:
    BODIES["stocks"].model_validate_json(json.dumps(example))
    _same_keys(example, stocks_body("SKU", 5, datetime(2025, 1, 1, tzinfo=UTC)))


def _order_created(example: Any) -> None:
    receiver = AboutYouWebhooks(SecretStr(WEBHOOK_KEY))
    body = json.dumps(example).encode()
    event = receiver.parse(body, receiver.identify({}, body))
    assert event.kind is EventKind.ORDER_PLACED
    assert event.order is not None
    assert event.order.total_amount == Decimal("0.01")  # 1 in the smallest unit


EXAMPLES: dict[str, tuple[Any, Callable[[Any], None]]] = {
    "#/components/schemas/ShipmentRequestSchema/example": (
        SCHEMAS["ShipmentRequestSchema"],
        _ship,
    ),
    "#/components/schemas/CancelRequestSchema/example": (SCHEMAS["CancelRequestSchema"], _cancel),
    "#/components/schemas/UpdateStockSchema/example": (SCHEMAS["UpdateStockSchema"], _stocks),
    "#/webhooks/order.created/post/requestBody/content/application/json/example": (
        {"$ref": "#/components/schemas/OrderCreatedWebhookSchema"},
        _order_created,
    ),
}


def documented_examples() -> Iterator[tuple[str, Any]]:
    yield from iter_examples(CONTRACT.document)


def test_every_documented_example_has_a_check() -> None:
    assert {where for where, _ in documented_examples()} == set(EXAMPLES)


@pytest.mark.parametrize(("where", "example"), list(documented_examples()))
def test_documented_examples_fit_their_schema_and_parse_through_the_wire_models(
    where: str, example: Any
) -> None:
    schema, parse = EXAMPLES[where]
    assert payload_problems(CONTRACT.schema_document(schema), example) == []
    parse(example)


def test_a_documented_batch_result_parses_through_the_wire_model() -> None:
    # The only rendered results example (the price page's) has the shared batch result shape.
    example = {
        "batchRequestId": "123e4567-e89b-12d3-a456-426614174000",
        "status": "completed",
        "items": [{"requestItem": {"sku": "my_sku_1"}, "success": True, "errors": ["x"]}],
    }
    schema = {"$ref": "#/components/schemas/StockResultsResponseSchema"}
    assert any("quantity" in p for p in payload_problems(CONTRACT.schema_document(schema), example))
    result = BatchResult.model_validate(example)
    assert result.items[0].errors == ["x"]


# -- the connector's maps and limits against the subset -----------------------------------------


def _enum(name: str) -> set[str]:
    return set(SCHEMAS[name]["enum"])


def test_every_status_the_subset_lists_is_mapped() -> None:
    assert set(ORDER_STATUSES) == _enum("OrderStatus")
    assert set(ITEM_STATUSES) == _enum("OrderItemStatus")
    assert set(BATCH_STATUSES) == _enum("RequestStatus")
    assert set(FULFILLMENT_TYPES) == _enum("FulfillmentTypes")


def test_the_declared_rate_limits_are_the_subsets() -> None:
    limits = [ORDERS_LIMIT, *SUBMIT_LIMITS.values(), *RESULT_LIMITS.values()]
    declared = {limit.key: limit for limit in limits}
    for op in CONTRACT.operations:
        documented = CONTRACT.document["paths"][op.path][op.method.lower()]["x-rate-limit"]
        limit = declared.pop(f"aboutyou:{op.method} {op.path}")
        assert f"{limit.requests}/min" == documented and limit.per_seconds == 60.0
    assert declared == {}


def test_a_documented_order_page_parses_through_the_wire_model() -> None:
    sim = AboutYouSimulator(API_KEY, WEBHOOK_KEY)
    sim.create_order("SKU-1", collection_point={"key": "PS-1", "type": "parcel_shop"})
    with TestClient(sim.app, base_url=HOST) as api:
        response = api.get("/api/v1/orders/", headers=AUTH)
    problems = CONTRACT.response_problems(
        "GET", str(response.url), 200, response.headers, response.content
    )
    assert problems == []
    page = OrdersPage.model_validate(response.json())
    assert page.items[0].shipping_collection_point_key == "PS-1"


def test_the_demo_and_the_harness_watch_every_about_you_call(tmp_path: Path) -> None:
    assert published_contract("aboutyou") is CONTRACT
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(url)
    wired = wire_simulators(all_settings(url), in_process)
    try:
        channel = wired.runtime.connectors.channel("aboutyou")
        assert isinstance(channel, AboutYouChannel)
        with pytest.raises(ContractViolation):
            channel.client.submit(Operation.SHIP, {"items": []})
        assert wired.simulators["aboutyou"].calls == []  # refused before it was sent
    finally:
        wired.close()
