"""Flexport's wire against the Logistics API index: every request the provider sends and every
answer the simulator gives, its refusals, and its webhooks, validated (openapi-core and
jsonschema) against the fields, required flags and enums of the subset derived from
`flexport-logistics-index.json`. Provider and simulator are each checked against the index,
never against each other."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from connectors.base import NeedsInput, Permanent
from connectors.contracts import ContractLog
from connectors.flexport import FlexportProvider
from connectors.flexport.simulator import FlexportSimulator
from connectors.flexport.spec import CONTRACT, webhook_problems
from connectors.flexport.transformers import create_order_body, idempotency_key
from tests.connectors.flexport.conftest import ACCESS_TOKEN, Receiver, make_request

API = "/logistics/api/2024-07"
AUTH = {"Authorization": f"Bearer {ACCESS_TOKEN}"}


def _order_life(sim: FlexportSimulator, provider: FlexportProvider) -> None:
    """Every call the hub makes to Flexport, in the successes and refusals a seller meets."""
    shipped = provider.create_order(make_request("ord_1", ("SKU-A", 2), ("SKU-B", 1)))
    assert provider.create_order(make_request("ord_1", ("SKU-A", 2), ("SKU-B", 1))) == shipped
    provider.create_order(make_request("ord/2", country="DE"))  # a `/` in the external id
    sim.ship(shipped, [("SKU-A", 1)])
    assert provider.get_order(shipped).raw_status == "PARTIALLY_SHIPPED"
    with pytest.raises(Permanent, match="return needed"):
        provider.cancel_order(shipped)  # 422, then read: a return is needed
    cancelled = provider.create_order(make_request("ord_3"))
    provider.cancel_order(cancelled)
    provider.cancel_order(cancelled)  # cancelled again: the order
    with pytest.raises(Permanent):
        provider.cancel_order("404404")
    with pytest.raises(Permanent):
        provider.get_order("404404")
    with pytest.raises(NeedsInput, match="SKU not at Flexport"):
        provider.create_order(make_request("ord_4", ("NOT-THERE", 1)))
    sim.error_next_create("INVENTORY_ERR", retriable=True)
    failed = provider.create_order(make_request("ord_5"))
    assert provider.get_order(failed).raw_status == "ERROR"
    assert provider.create_order(make_request("ord_5")) == failed  # retried, not created
    with pytest.raises(Permanent):
        provider.retry_order(failed)  # 422: not in error any more
    sim.ship(shipped)
    page = provider.read_events(None)
    assert shipped in page.provider_order_ids
    assert page.next_cursor is not None
    provider.read_events(page.next_cursor)
    provider.subscribe("https://hub.example/webhooks/flexport")
    sim.access_token = "rotated-away"
    with pytest.raises(Permanent, match="401"):
        provider.get_order(shipped)


def test_every_call_the_provider_makes_fits_the_index(
    sim: FlexportSimulator, provider: FlexportProvider, log: ContractLog
) -> None:
    _order_life(sim, provider)
    assert log.problems == []
    assert log.operations() == {(op.method, op.path) for op in CONTRACT.operations}


def test_the_simulator_answered_every_documented_outcome_it_was_asked_for(
    sim: FlexportSimulator, provider: FlexportProvider, log: ContractLog
) -> None:
    _order_life(sim, provider)
    orders = "/logistics/api/{version}/orders"
    assert log.statuses("POST", orders) == {200}
    assert log.statuses("GET", f"{orders}/external_id/{{externalOrderId}}") == {200, 404}
    assert log.statuses("GET", f"{orders}/{{orderId}}") == {200, 401, 404}
    assert log.statuses("POST", f"{orders}/{{orderId}}/cancel") == {200, 404, 422}
    assert log.statuses("POST", f"{orders}/{{orderId}}/retry") == {200, 422}
    assert log.statuses("POST", "/logistics/api/{version}/webhooks") == {202}


def _fits(answer: httpx.Response) -> bool:
    """The simulator's answer, checked against the index directly (the request was not)."""
    request = answer.request
    problems = CONTRACT.response_problems(
        request.method, str(request.url), answer.status_code, answer.headers, answer.content
    )
    assert problems == [], problems
    return True


def test_refusals_are_problem_json_the_index_describes(
    http: TestClient, sim: FlexportSimulator
) -> None:
    # Address without address1: the simulator refuses what the index marks required.
    body = {"externalOrderId": "x", "address": {"city": "A", "countryCode": "US"}, "lineItems": []}
    raw = http.post(f"{API}/orders", json=body, headers=AUTH)
    assert raw.status_code == 400
    assert raw.headers["content-type"].startswith("application/problem+json")
    assert "address1" in raw.json()["detail"]
    assert _fits(raw)
    taken = create_order_body(make_request("dup"), {"SKU-A": sim.products["SKU-A"]}, None)
    first = http.post(f"{API}/orders", json=taken, headers=AUTH)
    assert first.status_code == 200
    again = http.post(f"{API}/orders", json=taken, headers=AUTH)
    assert again.status_code == 409
    assert _fits(again)
    key = {"idempotency-key": idempotency_key("dup", taken), **AUTH}
    renamed = {**taken, "externalOrderId": "dup-2"}
    replay = [http.post(f"{API}/orders", json=renamed, headers=key) for _ in range(2)]
    assert [r.headers.get("idempotent-replayed") for r in replay] == [None, "true"]
    assert replay[0].json() == replay[1].json()


def test_unknown_request_fields_are_refused_only_where_the_index_types_them(
    http: TestClient,
) -> None:
    body = {
        "externalOrderId": "typed",
        "address": {"address1": "1 Way", "city": "A", "countryCode": "US"},
        "lineItems": [{"logisticsSku": "D1", "quantity": "two"}],
    }
    answer = http.post(f"{API}/orders", json=body, headers=AUTH)
    assert answer.status_code == 400
    assert "quantity" in answer.json()["detail"]
    assert _fits(answer)


def test_every_webhook_the_simulator_sends_fits_the_event_schemas(
    sim: FlexportSimulator, provider: FlexportProvider, receiver: Receiver
) -> None:
    shipped = provider.create_order(make_request("ord_w", ("SKU-A", 1), ("SKU-B", 1)))
    sim.ship(shipped, [("SKU-A", 1)])
    sim.ship(shipped)
    cancelled = provider.create_order(make_request("ord_c"))
    provider.cancel_order(cancelled)
    sim.flush_webhooks()
    types = [json.loads(b)["logisticsEventType"] for b in receiver.bodies]
    assert types == ["Shipment.Shipped", "Shipment.Shipped", "Order.Shipped", "Order.Cancelled"]
    assert all(webhook_problems(body) == [] for body in receiver.bodies)
    assert receiver.rejected == 0


def test_the_event_schemas_catch_a_payload_without_the_order_id() -> None:
    body = {"logisticsEventType": "Order.Shipped", "id": "1", "externalOrderId": "x"}
    assert any("orderId" in problem for problem in webhook_problems(body))
