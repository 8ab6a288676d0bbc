"""The contract machinery itself, on a small description written for these tests."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.testclient import TestClient

from connectors.contracts import (
    Contract,
    ContractViolation,
    MessageContract,
    enforce,
    payload_problems,
    published_contract,
    watch,
)

ERROR = {
    "type": "object",
    "required": ["errors"],
    "properties": {"errors": {"type": "array", "items": {"type": "string"}}},
}
JSON_ERROR = {
    "description": "",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Parcels", "version": "1"},
    "servers": [{"url": "https://api.example.com/v2"}],
    "security": [{"Bearer": []}],
    "paths": {
        "/parcels/": {
            "get": {
                "operationId": "listParcels",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 50},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Parcel"},
                                }
                            }
                        },
                    },
                    "400": JSON_ERROR,
                },
            }
        },
        "/parcels/{parcel_id}/ship/": {
            "post": {
                "operationId": "shipParcel",
                "parameters": [
                    {
                        "name": "parcel_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["tracking_number"],
                                "properties": {"tracking_number": {"type": "string"}},
                            }
                        }
                    },
                },
                "responses": {"200": {"description": "", "content": {}}, "422": JSON_ERROR},
            }
        },
    },
    "components": {
        "schemas": {
            "Error": ERROR,
            "Parcel": {
                "type": "object",
                "required": ["id", "status"],
                "properties": {
                    "id": {"type": "string"},
                    "status": {"type": "string", "enum": ["open", "shipped"]},
                },
            },
        },
        "securitySchemes": {"Bearer": {"type": "http", "scheme": "bearer"}},
    },
}

BASE = "https://api.example.com/v2"
AUTH = {"authorization": "Bearer t"}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(DOCUMENT, name="parcels")


def test_a_fitting_request_has_no_problems(contract: Contract) -> None:
    assert contract.request_problems("GET", f"{BASE}/parcels/?limit=5", AUTH, None) == []
    body = b'{"tracking_number": "RM1"}'
    assert contract.request_problems("POST", f"{BASE}/parcels/p1/ship/", AUTH | JSON, body) == []


def test_request_problems_name_each_field_and_parameter(contract: Contract) -> None:
    problems = contract.request_problems(
        "POST", f"{BASE}/parcels/p1/ship/", AUTH | JSON, b'{"tracking_number": 7}'
    )
    assert problems == ["body.tracking_number: 7 is not of type 'string'"]
    problems = contract.request_problems("GET", f"{BASE}/parcels/?limit=99", {}, None)
    assert "query parameter 'limit': 99 is greater than the maximum of 50" in problems
    assert any("Security" in p for p in problems)


def test_an_operation_outside_the_contract_is_a_problem(contract: Contract) -> None:
    assert contract.request_problems("DELETE", f"{BASE}/parcels/p1/ship/", AUTH, None) == [
        "no DELETE /v2/parcels/p1/ship/ in parcels"
    ]
    assert contract.operation("GET", f"{BASE}/parcels") is None


def test_response_problems(contract: Contract) -> None:
    url = f"{BASE}/parcels/"
    good = json.dumps([{"id": "p1", "status": "open"}]).encode()
    assert contract.response_problems("GET", url, 200, JSON, good) == []
    bad = json.dumps([{"id": "p1", "status": "lost"}]).encode()
    assert contract.response_problems("GET", url, 200, JSON, bad) == [
        "response body[0].status: 'lost' is not one of ['open', 'shipped']"
    ]
    assert contract.response_problems("GET", url, 404, JSON, b"{}") == [
        "404 is not an answer GET /parcels/ documents (it documents 200, 400)"
    ]
    # A failing server is not held to the description; a client treats it as transient.
    assert contract.response_problems("GET", url, 503, {}, b"<html>") == []
    ship = f"{BASE}/parcels/p1/ship/"
    assert contract.response_problems("POST", ship, 200, {}, b"") == []
    assert contract.response_problems("POST", ship, 200, JSON, b"{}") == [
        "documents no body, got 2 bytes"
    ]


def test_bad_input_status_is_what_the_operation_documents(contract: Contract) -> None:
    assert contract.bad_input_status("GET", f"{BASE}/parcels/") == 400
    assert contract.bad_input_status("POST", f"{BASE}/parcels/p1/ship/") == 422


def _server(answer: Any, status: int = 200) -> httpx.Client:
    app = FastAPI()

    @app.api_route("/v2/{rest:path}", methods=["GET", "POST"])
    def anything(rest: str) -> Response:
        if answer is None:
            return Response(status_code=status)
        return JSONResponse(answer, status_code=status)

    return TestClient(app, base_url="https://api.example.com")


def test_watch_logs_each_exchange_and_the_operations_exercised(contract: Contract) -> None:
    client = _server([{"id": "p1", "status": "open"}])
    log = watch(client, contract)
    client.get("/v2/parcels/", params={"limit": 5}, headers=AUTH)
    assert log.problems == []
    assert log.operations() == {("GET", "/parcels/")}
    assert log.statuses("GET", "/parcels/") == {200}


def test_strict_watch_raises_on_a_bad_request_before_it_is_sent(contract: Contract) -> None:
    client = _server(None)
    log = watch(client, contract, strict=True)
    with pytest.raises(ContractViolation) as raised:
        client.post("/v2/parcels/p1/ship/", json={}, headers=AUTH)
    assert raised.value.method == "POST"
    assert raised.value.path == "/v2/parcels/p1/ship/"
    assert raised.value.problems == ["body: 'tracking_number' is a required property"]
    assert log.exchanges[0].status is None  # never answered: it was not sent


def test_strict_watch_raises_on_an_answer_that_breaks_the_contract(contract: Contract) -> None:
    client = _server([{"id": 1}])
    watch(client, contract, strict=True)
    with pytest.raises(ContractViolation, match="200 answer to GET /v2/parcels/"):
        client.get("/v2/parcels/", headers=AUTH)


def test_lenient_watch_only_records(contract: Contract) -> None:
    client = _server([{"id": 1}])
    log = watch(client, contract, strict=False)
    assert client.get("/v2/parcels/", headers=AUTH).status_code == 200
    assert log.problems == [
        "GET /v2/parcels/: response body[0].id: 1 is not of type 'string'",
        "GET /v2/parcels/: response body[0]: 'status' is a required property",
    ]


@pytest.fixture
def guarded(contract: Contract) -> Iterator[TestClient]:
    app = FastAPI()
    enforce(
        app,
        contract,
        lambda status, problems: JSONResponse({"errors": problems}, status_code=status),
        refusers={
            "/parcels/": lambda status, problems: JSONResponse(
                {"error": "invalid_request"}, status_code=status
            )
        },
    )

    @app.post("/v2/parcels/{parcel_id}/ship/")
    def ship(parcel_id: str, request: Request) -> Response:
        if request.headers.get("authorization") != "Bearer t":
            return JSONResponse({"errors": ["unauthorized"]}, status_code=401)
        return Response(status_code=200)

    @app.get("/v2/parcels/")
    def parcels() -> list[dict[str, str]]:
        return []

    @app.get("/_sim/state")
    def state(limit: str = "") -> dict[str, str]:
        return {"limit": limit}

    with TestClient(app, base_url="https://api.example.com") as client:
        yield client


def test_enforce_refuses_what_does_not_fit_with_the_documented_status(guarded: TestClient) -> None:
    refused = guarded.post("/v2/parcels/p1/ship/", json={"tracking_number": 5}, headers=AUTH)
    assert refused.status_code == 422
    assert refused.json() == {"errors": ["body.tracking_number: 5 is not of type 'string'"]}
    fine = guarded.post("/v2/parcels/p1/ship/", json={"tracking_number": "RM1"}, headers=AUTH)
    assert fine.status_code == 200


def test_enforce_uses_an_operations_own_error_format(guarded: TestClient) -> None:
    refused = guarded.get("/v2/parcels/", params={"limit": 0}, headers=AUTH)
    assert (refused.status_code, refused.json()) == (400, {"error": "invalid_request"})


def test_enforce_leaves_credentials_and_control_routes_to_the_app(guarded: TestClient) -> None:
    unauthenticated = guarded.post("/v2/parcels/p1/ship/", json={"tracking_number": "RM1"})
    assert unauthenticated.status_code == 401
    assert guarded.get("/_sim/state", params={"limit": "x"}).json() == {"limit": "x"}
    assert guarded.get("/v2/elsewhere/").status_code == 404


MESSAGES = MessageContract(
    {
        "asyncapi": "3.0.0",
        "info": {"title": "events", "version": "1"},
        "components": {
            "messages": {
                "parcelShipped": {
                    "x-event-type": "parcel.shipped",
                    "payload": {"$ref": "#/components/schemas/Envelope"},
                }
            },
            "schemas": {
                "Envelope": {
                    "type": "object",
                    "required": ["id", "created_at", "data"],
                    "properties": {
                        "id": {"type": "string"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "data": {"$ref": "#/components/schemas/Parcel"},
                    },
                },
                "Parcel": DOCUMENT["components"]["schemas"]["Parcel"],
            },
        },
    }
)


def test_message_payloads_are_checked_with_their_references_resolved() -> None:
    assert MESSAGES.message_for("x-event-type", "parcel.shipped") == "parcelShipped"
    good = {"id": "e1", "created_at": "2025-01-01T00:00:00Z", "data": {"id": "p", "status": "open"}}
    assert MESSAGES.payload_problems("parcelShipped", json.dumps(good)) == []
    bad = {"id": "e1", "created_at": "yesterday", "data": {"id": "p"}}
    assert MESSAGES.payload_problems("parcelShipped", bad) == [
        "payload.created_at: 'yesterday' is not a 'date-time'",
        "payload.data: 'status' is a required property",
    ]
    assert payload_problems({"type": "object"}, b"{not json") == [
        "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    ]


def test_a_connector_publishes_its_contract_as_CONTRACT_in_its_spec_module(
    contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert published_contract("no_such_connector") is None
    spec = types.ModuleType("connectors.parcels.spec")
    monkeypatch.setitem(sys.modules, "connectors.parcels", types.ModuleType("connectors.parcels"))
    monkeypatch.setitem(sys.modules, "connectors.parcels.spec", spec)
    assert published_contract("parcels") is None  # not ready: no CONTRACT yet
    monkeypatch.setattr(spec, "CONTRACT", contract, raising=False)
    assert published_contract("parcels") is contract
