"""The OpenAPI document at /docs: complete, honest about errors, with an example per model,
and every example a valid instance of its model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from tests.harness import Hub

from .conftest import ok

# The public surface of CONTRACT.md: every one must be documented, by exactly these paths.
CONTRACT = [
    ("post", "/webhooks/{channel}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/admin/orders"),
    ("get", "/admin/orders/{order_id}"),
    ("post", "/admin/orders/{order_id}/cancel"),
    ("post", "/admin/orders/{order_id}/reject"),
    ("post", "/admin/orders/{order_id}/retry-fulfilment"),
    ("post", "/admin/orders/{order_id}/shipments"),
    ("get", "/admin/jobs"),
    ("post", "/admin/jobs/{job_id}/retry"),
    ("post", "/admin/jobs/retry-dead"),
    ("get", "/admin/events"),
    ("post", "/admin/events/{event_id}/replay"),
    ("get", "/admin/stock/{sku}"),
    ("put", "/admin/stock/{sku}"),
    ("get", "/admin/routing-rules"),
    ("post", "/admin/routing-rules"),
    ("post", "/admin/reconcile/{channel}"),
    ("get", "/admin/reconcile/runs/{run_id}"),
    ("get", "/admin/state-machine"),
]
ORDER_FILTERS = {
    "channel",
    "channel_order_id",
    "status",
    "needs_attention",
    "sku",
    "cursor",
    "limit",
}


@pytest.fixture
def document(hub: Hub) -> dict[str, Any]:
    return dict(ok(hub.client.get("/openapi.json")))


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def models_by_name() -> dict[str, list[type[BaseModel]]]:
    found: dict[str, list[type[BaseModel]]] = {}
    pending: list[type[BaseModel]] = [BaseModel]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            if sub.__module__.startswith("hub."):
                found.setdefault(sub.__name__, []).append(sub)
    return found


def test_every_contract_endpoint_is_documented(document: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in operations(document)}

    assert set(CONTRACT) <= documented, set(CONTRACT) - documented
    orders = document["paths"]["/admin/orders"]["get"]
    assert {p["name"] for p in orders["parameters"]} >= ORDER_FILTERS
    detail = document["components"]["schemas"]["OrderDetail"]["properties"]
    assert {"history", "jobs", "events", "lines", "shipments"} <= set(detail)


def test_every_admin_operation_needs_the_bearer_token_and_says_so(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["admin_token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["admin_token"]["description"],
    }
    for method, path, operation in operations(document):
        if path.startswith("/admin"):
            assert operation.get("security") == [{"admin_token": []}], (method, path)
            assert "401" in operation["responses"], (method, path)
            if method != "get":
                assert "403" in operation["responses"], (method, path)


def test_every_error_is_documented_as_the_one_error_shape(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= set(operation["responses"]), (method, path)


def test_every_model_has_an_example_that_is_a_valid_instance_of_it(
    document: dict[str, Any],
) -> None:
    models = models_by_name()
    for name, schema in document["components"]["schemas"].items():
        if schema.get("type") != "object":
            continue  # enums: their values are the example
        assert "example" in schema, name
        example = schema["example"]
        assert set(schema.get("required", [])) <= set(example), name
        assert set(example) <= set(schema["properties"]), name
        candidates = models.get(name) or models.get(schema.get("title", ""), [])
        assert candidates, f"no model named {name}"
        problems: list[str] = []
        for model in candidates:
            try:
                model.model_validate(example)
                break
            except ValidationError as exc:
                problems.append(str(exc))
        else:
            pytest.fail(f"the example of {name} does not fit it: {problems}")


def test_docs_page_is_served(hub: Hub) -> None:
    response = hub.client.get("/docs")

    assert response.status_code == 200
    assert "swagger" in response.text.lower()
