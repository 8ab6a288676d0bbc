"""What a contract keeps between checks changes no verdict: every problem it finds, for valid
and invalid requests and answers, is what openapi-core finds validating afresh, its path
finder, schema validators and description reads rebuilt for the one request."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import openapi_core
import pytest
from jsonschema_path import SchemaPath
from openapi_core.datatypes import RequestParameters
from openapi_core.deserializing.media_types import media_type_deserializers
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.validation.request import validators as request_validators
from openapi_core.validation.request.exceptions import MissingRequestBody
from openapi_core.validation.response import validators as response_validators
from werkzeug.datastructures import Headers, ImmutableMultiDict

from connectors import contracts
from connectors.contracts import (
    Contract,
    _content_type,
    _describe,
    _WireResponse,
    published_contract,
)
from connectors.deliverr.samples import CREATE_ORDER as ORDER
from connectors.deliverr.samples import CREATED
from connectors.deliverr.spec import CONTRACT as DELIVERR
from connectors.depop.spec import CONTRACT as DEPOP
from tests.contracts.test_contracts import DOCUMENT

PARCELS_DOCUMENT = copy.deepcopy(DOCUMENT)
PARCELS_DOCUMENT["paths"]["/parcels/{parcel_id}/ship/"]["post"]["parameters"].append(
    {"name": "x-request-id", "in": "header", "required": True, "schema": {"type": "string"}}
)
PARCELS = Contract(PARCELS_DOCUMENT, name="parcels")


class _FreshRequest:
    """A request as openapi-core reads it, naming no path template: openapi-core finds the
    operation from the URL itself."""

    def __init__(
        self, host_url: str, url: str, method: str, headers: Mapping[str, str], body: bytes | None
    ) -> None:
        parts = urlsplit(url)
        self.host_url = host_url
        self.path = parts.path
        self.method = method.lower()
        self.body = body
        self.content_type = _content_type(headers)
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(parts.query, keep_blank_values=True)),
            header=Headers(list(headers.items())),
            cookie=ImmutableMultiDict(),
        )


def _version(contract: Contract) -> str:
    return "V30" if str(contract.document["openapi"]).startswith("3.0") else "V31"


def _extra(contract: Contract) -> dict[str, Any]:
    """The vendor media types read as JSON, as `Contract` reads them."""
    return {
        media: contracts._json_or_raw
        for media in contracts._media_types(contract.document)
        if media not in media_type_deserializers
    }


def fresh_request_verdict(
    contract: Contract, method: str, url: str, headers: Mapping[str, str], body: bytes | None
) -> tuple[list[str], list[str]]:
    """(problems, security problems) from openapi-core's validators built for this request."""
    spec = SchemaPath.from_dict(copy.deepcopy(contract.document))
    version = _version(contract)
    host = contract._host_for(urlsplit(url).path)

    def errors(name: str, **options: Any) -> list[str]:
        validator = getattr(request_validators, f"{version}Request{name}Validator")(spec, **options)
        request = _FreshRequest(host, url, method, headers, body or None)
        return [
            line
            for error in validator.iter_errors(request)
            if not isinstance(error, MissingRequestBody)
            for line in _describe(error)
        ]

    problems = errors("Parameters") + errors(
        "Body", extra_media_type_deserializers=_extra(contract)
    )
    return problems, errors("Security")


def fresh_response_verdict(
    contract: Contract, method: str, url: str, status: int, body: bytes
) -> list[str]:
    spec = SchemaPath.from_dict(copy.deepcopy(contract.document))
    validator = getattr(response_validators, f"{_version(contract)}ResponseValidator")(
        spec, extra_media_type_deserializers=_extra(contract)
    )
    request = _FreshRequest(contract._host_for(urlsplit(url).path), url, method, {}, None)
    response = _WireResponse(status, {"content-type": "application/json"}, body)
    return [line for e in validator.iter_errors(request, response) for line in _describe(e)]


KEY = "ea7fcc9d-803c-4849-bfe4-7839c45bbcc3"
JSON = {"content-type": "application/json"}
DELIVERR_AUTH = {**JSON, "authorization": "Bearer t", "idempotency-key": KEY}
ORDERS = "https://api.deliverr.com/orders/v1/order"
DEPOP_API = "https://partnerapi.depop.com/api/v1"
PARCEL_URL = "https://api.example.com/v2/parcels/p1/ship/"
SHIP = {"authorization": "Bearer t", "x-request-id": "r1", **JSON}
BAD_ORDER = {**ORDER, "lineItems": [{"externalProductId": "SKU-A", "quantity": "two"}]}
NO_ADDRESS = {k: v for k, v in ORDER.items() if k != "shiptoAddress"}

REQUESTS: dict[str, tuple[Contract, str, str, dict[str, str], bytes | None]] = {
    "deliverr valid create": (DELIVERR, "POST", ORDERS, DELIVERR_AUTH, json.dumps(ORDER).encode()),
    "deliverr bad body": (DELIVERR, "POST", ORDERS, DELIVERR_AUTH, json.dumps(BAD_ORDER).encode()),
    "deliverr body missing a field": (
        DELIVERR,
        "POST",
        ORDERS,
        DELIVERR_AUTH,
        json.dumps(NO_ADDRESS).encode(),
    ),
    "deliverr body not json": (DELIVERR, "POST", ORDERS, DELIVERR_AUTH, b"{not json"),
    "deliverr bad header": (
        DELIVERR,
        "POST",
        ORDERS,
        {**DELIVERR_AUTH, "idempotency-key": "nope"},
        json.dumps(ORDER).encode(),
    ),
    "depop valid list": (
        DEPOP,
        "GET",
        f"{DEPOP_API}/orders/?limit=20",
        {"authorization": "Bearer k"},
        None,
    ),
    "depop bad query param": (
        DEPOP,
        "GET",
        f"{DEPOP_API}/orders/?limit=999&from=yesterday",
        {"authorization": "Bearer k"},
        None,
    ),
    "depop query param not a number": (
        DEPOP,
        "GET",
        f"{DEPOP_API}/orders/?limit=many",
        {"authorization": "Bearer k"},
        None,
    ),
    "depop valid ship": (
        DEPOP,
        "POST",
        f"{DEPOP_API}/orders/4000001/parcels/670de183/mark-as-shipped/",
        {"authorization": "Bearer k", **JSON},
        b'{"tracking_number":"RM1GB","carrier":"Royal Mail"}',
    ),
    "depop ship with a bad body": (
        DEPOP,
        "POST",
        f"{DEPOP_API}/orders/4000001/parcels/670de183/mark-as-shipped/",
        {"authorization": "Bearer k", **JSON},
        b'{"tracking_number": 7}',
    ),
    "parcels valid ship": (PARCELS, "POST", PARCEL_URL, SHIP, b'{"tracking_number": "T1"}'),
    "parcels missing required header": (
        PARCELS,
        "POST",
        PARCEL_URL,
        {k: v for k, v in SHIP.items() if k != "x-request-id"},
        b'{"tracking_number": "T1"}',
    ),
    "parcels without credentials": (
        PARCELS,
        "POST",
        PARCEL_URL,
        {k: v for k, v in SHIP.items() if k != "authorization"},
        b'{"tracking_number": "T1"}',
    ),
    "parcels bad body and query": (
        PARCELS,
        "POST",
        PARCEL_URL + "?limit=0",
        SHIP,
        b'{"tracking_number": 7}',
    ),
}


@pytest.mark.parametrize("case", REQUESTS)
def test_a_reused_check_finds_what_a_fresh_openapi_core_check_finds(case: str) -> None:
    contract, method, url, headers, body = REQUESTS[case]
    problems, security = fresh_request_verdict(contract, method, url, headers, body)
    for _ in range(2):  # the second time from what the first kept
        check = contract.check_request(method, url, headers, body)
        assert (list(check.problems), list(check.security)) == (problems, security)
    valid = case.endswith(("valid create", "valid list", "valid ship"))
    assert valid == (not problems and not security), (problems, security)


ANSWERS: dict[str, tuple[int, dict[str, Any]]] = {
    "created": (201, CREATED),
    "created without shipments": (201, {k: v for k, v in CREATED.items() if k != "shipments"}),
    "created with an unknown status": (201, {**CREATED, "status": "MAYBE"}),
    "refused": (422, {"code": "X"}),
}


@pytest.mark.parametrize("case", ANSWERS)
def test_a_reused_answer_check_finds_what_a_fresh_openapi_core_check_finds(case: str) -> None:
    status, answer = ANSWERS[case]
    body = json.dumps(answer).encode()
    expected = fresh_response_verdict(DELIVERR, "POST", ORDERS, status, body)
    for _ in range(2):
        assert DELIVERR.response_problems("POST", ORDERS, status, JSON, body) == expected
    assert (case == "created") == (not expected), expected


def test_the_reused_parts_are_the_ones_openapi_core_calls() -> None:
    """The reuse rides on how openapi-core 0.23 calls its path finder and schema validator
    factory; if a new version stops calling them, or calls them differently, this fails
    rather than the contracts quietly doing the work again or judging differently."""
    assert openapi_core.__version__ == contracts.OPENAPI_CORE_VERSION
    contract = Contract(PARCELS_DOCUMENT, name="parcels")
    contract.check_request("POST", PARCEL_URL, SHIP, b'{"tracking_number": "T1"}')
    for validator in (contract._parameters, contract._body, contract._security):
        assert isinstance(validator.path_finder, contracts._OperationFinder)
        assert list(validator.path_finder._found) == [
            ("post", "https://api.example.com/v2/parcels/{parcel_id}/ship/")
        ]
    assert contract._body.schema_validators_factory._built
    assert contract._parameters.schema_validators_factory._built


CONNECTORS = ("aboutyou", "deliverr", "depop", "flexport", "topi")


@pytest.mark.parametrize("connector", CONNECTORS)
def test_every_operation_is_found_by_its_template_as_openapi_core_finds_it_by_its_url(
    connector: str,
) -> None:
    """Naming the path template the contract matched finds, for every operation behind every
    server, the operation and path variables openapi-core finds from the URL alone."""
    contract = published_contract(connector)
    assert contract is not None
    fresh = APICallPathFinder(SchemaPath.from_dict(copy.deepcopy(contract.document)))
    reused = contract._parameters.path_finder
    for host, prefix in contract._servers:
        for operation in contract.operations:
            path = prefix + re.sub(r"\{([^}/]+)\}", r"v-\1", operation.path)
            route = contract._route(operation.method, path)
            assert route is not None and route.operation == operation, path
            expected = fresh.find(operation.method.lower(), urljoin(host, path))
            found = reused.find(operation.method.lower(), urljoin(host, route.path_pattern))
            assert found.operation.parts == expected.operation.parts, path
            assert route.variables == (expected.path_result.variables or {}), path
