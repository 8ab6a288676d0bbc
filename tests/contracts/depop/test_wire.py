"""Depop's wire against Depop's own description (Seller API OpenAPI 3.1, webhooks AsyncAPI).

The client is watched (every request and answer validated) while it drives the simulator
through every operation it calls; the simulator is driven through every operation it serves,
and refuses what the description refuses; the description's examples parse through the wire
models; every webhook, the documented examples and those the simulator sends, fits the
AsyncAPI payload schema and is read by the webhook reader.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.base import (
    EventKind,
    ListingNotFound,
    OrderLineView,
    OrderView,
    Permanent,
    Retriable,
    ShipmentLineView,
    ShipmentView,
)
from connectors.contracts import ContractLog, ContractViolation, watch
from connectors.depop import DepopChannel, DepopSettings
from connectors.depop.simulator import HOST, TOKEN_PATH, DepopSimulator
from connectors.depop.spec import CONTRACT, WEBHOOKS
from connectors.depop.transformers import (
    DepopTokenResponse,
    parse_errors,
    parse_oauth_error,
    parse_order,
    parse_orders_page,
    parse_product,
    restock_body,
    to_channel_order,
)
from connectors.depop.webhooks import DepopWebhooks
from connectors.signatures import sign_timestamped_hex

API_KEY, SECRET = "depop-contract-key", "depop-contract-secret"
CLIENT = ("depop-app", "depop-app-secret")
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

# What DepopClient calls; the simulator serves these and the rest of the contract.
CLIENT_OPERATIONS = {
    ("GET", "/api/v1/orders/"),
    ("GET", "/api/v1/orders/{purchase_id}/"),
    ("POST", "/api/v1/orders/{purchase_id}/parcels/{parcel_id}/mark-as-shipped/"),
    ("POST", "/api/v1/orders/{purchase_id}/refund/"),
    ("GET", "/api/v1/products/by-sku/{sku}/"),
    ("PUT", "/api/v1/products/by-sku/{sku}/"),
    ("PATCH", "/api/v1/products/by-sku/{sku}/"),
    ("POST", "/api/v1/products/by-sku/{sku}/mark-as-sold/"),
    ("POST", "/api/v1/oauth2/access-token/"),
}
SIMULATOR_OPERATIONS = {(op.method, op.path) for op in CONTRACT.operations}


def _example(method: str, path: str, status: str) -> Any:
    answer = CONTRACT.document["paths"][path][method.lower()]["responses"][status]
    return answer["content"]["application/json"]["example"]


# -- the description's examples through the wire models -------------------------------------


def test_documented_order_parses_into_the_canonical_order() -> None:
    order = to_channel_order(parse_order(_example("GET", "/api/v1/orders/{purchase_id}/", "200")))
    assert order.channel_order_id == "123456"
    assert order.total_amount == Decimal("50.99")
    assert order.shipping_address is not None
    assert order.shipping_address.phone == "07123456789"
    assert [line.parcel_ref for line in order.lines] == ["6e3538ca-6653-3c25-bf0a-a2be876b17e4"]


def test_documented_orders_page_and_its_schema_example_parse() -> None:
    page = parse_orders_page(_example("GET", "/api/v1/orders/", "200"))
    assert (page.meta.cursor, page.meta.has_more, page.data) == ("123456789", False, [])
    # The schema's own example leaves out name-less fields (no address2, no description).
    schema_example = CONTRACT.document["components"]["schemas"]["OrdersPage"]["properties"]
    data = schema_example["data"]["example"]
    orders = [to_channel_order(parse_order(item)) for item in data]
    assert orders[0].lines[0].unit_price == Decimal("25.99")


def test_documented_product_parses_and_its_restock_put_fits_the_contract() -> None:
    raw = _example("GET", "/api/v1/products/by-sku/{sku}/", "200")
    product = parse_product(raw)
    assert (product.status, product.quantity) == ("STATUS_ONSALE", 1)
    body = json.dumps(restock_body(raw, 3)).encode()
    url = f"{HOST}/api/v1/products/by-sku/ABC-12345-S-BL/"
    headers = {"authorization": "Bearer k", "content-type": "application/json"}
    assert CONTRACT.request_problems("PUT", url, headers, body) == []


def test_documented_errors_parse() -> None:
    codes: dict[str, list[str]] = {}
    for name, answer in CONTRACT.document["components"]["responses"].items():
        example = answer["content"]["application/json"].get("example")
        if example is not None:
            parsed = parse_errors(json.dumps(example).encode())
            assert parsed is not None, name
            codes[name] = [error.code for error in parsed.errors]
    assert codes["BadRequest"] == ["bad-request"]
    assert codes["Forbidden"] == ["insufficient_scope"]
    assert codes["TooManyRequests"] == ["too_many_requests"]


def test_documented_token_answers_parse() -> None:
    token = DepopTokenResponse.model_validate(_example("POST", TOKEN_PATH, "200"))
    assert token.expires_in == 3600
    answers = CONTRACT.document["paths"][TOKEN_PATH]["post"]["responses"]["400"]
    examples = answers["content"]["application/json"]["examples"]
    errors = {
        name: parse_oauth_error(json.dumps(e["value"]).encode()) for name, e in examples.items()
    }
    assert errors["invalid_refresh_token"] is not None
    assert errors["invalid_refresh_token"].error == "invalid_grant"


WEBHOOK_KINDS = {
    "newOrder": EventKind.ORDER_PLACED,
    "orderRefunded": EventKind.ORDER_CHANGED,
    "productLiked": EventKind.IGNORED,
    "productUnliked": EventKind.IGNORED,
}


def _read(body: bytes, now: datetime = NOW) -> Any:
    receiver = DepopWebhooks(
        DepopSettings(api_key=SecretStr(API_KEY), webhook_secret=SecretStr(SECRET))
    )
    timestamp = str(int(now.timestamp()))
    headers = {
        "x-depop-timestamp": timestamp,
        "x-depop-signature": sign_timestamped_hex(secret=SECRET, timestamp=timestamp, body=body),
    }
    receiver.authenticate(headers, body, now)
    return receiver.parse(body, receiver.identify(headers, body))


@pytest.mark.parametrize("name", sorted(WEBHOOK_KINDS))
def test_documented_webhook_fits_the_asyncapi_payload_and_is_read(name: str) -> None:
    hook = CONTRACT.document["webhooks"][name]["post"]
    example = hook["requestBody"]["content"]["application/json"]["example"]
    message = WEBHOOKS.message_for("x-event-type", example["event_type"])
    assert message == name
    body = json.dumps(example).encode()
    assert WEBHOOKS.payload_problems(name, body) == []
    assert CONTRACT.webhook_problems(name, body) == []
    event = _read(body)
    assert event.kind == WEBHOOK_KINDS[name]
    if name == "newOrder":
        assert event.order.shipping_address.country_code == "GB"
        assert event.order.placed_at == datetime(2025, 1, 1, tzinfo=UTC)
        assert event.order.attributes["fee_amount"] == "5.00"


def test_every_webhook_the_simulator_sends_fits_the_asyncapi_payload() -> None:
    sim = DepopSimulator(api_key=API_KEY, webhook_secret=SECRET, clock=lambda: NOW)
    sim.add_product("A", quantity=3)
    sim.add_product("B", quantity=3)
    first = sim.purchase("A", "B", tax="2.10")
    sim.refund(first, items_refund_amount="5.00")
    sim.cancel(sim.purchase("A", depop_shipping={"shipping_provider_id": "MY_HERMES"}))
    sim.like("B")
    sim.like("B", unlike=True)
    kinds = []
    for sent in sim.sent_webhooks:
        envelope = json.loads(sent.body)
        message = WEBHOOKS.message_for("x-event-type", envelope["event_type"])
        assert message is not None
        assert WEBHOOKS.payload_problems(message, sent.body) == [], envelope["event_type"]
        kinds.append(_read(sent.body).kind)
    assert kinds == [
        EventKind.ORDER_PLACED,
        EventKind.ORDER_CHANGED,
        EventKind.ORDER_PLACED,
        EventKind.ORDER_CHANGED,
        EventKind.IGNORED,
        EventKind.IGNORED,
    ]


# -- the client, watched, against the simulator ----------------------------------------------


class Wire:
    def __init__(self, sim: DepopSimulator, channel: DepopChannel, log: ContractLog) -> None:
        self.sim, self.channel, self.log = sim, channel, log


def _wire(settings: DepopSettings, sim: DepopSimulator) -> Iterator[Wire]:
    with TestClient(sim.app, base_url=HOST) as http:
        log = watch(http, CONTRACT, strict=True)
        yield Wire(sim, DepopChannel(settings, http=http), log)


@pytest.fixture
def sim() -> DepopSimulator:
    return DepopSimulator(api_key=API_KEY, webhook_secret=SECRET, oauth_client=CLIENT)


@pytest.fixture
def wire(sim: DepopSimulator) -> Iterator[Wire]:
    settings = DepopSettings(
        base_url=HOST, api_key=SecretStr(API_KEY), webhook_secret=SecretStr(SECRET)
    )
    yield from _wire(settings, sim)


@pytest.fixture
def oauth_wire(sim: DepopSimulator) -> Iterator[Wire]:
    settings = DepopSettings(
        base_url=HOST,
        webhook_secret=SecretStr(SECRET),
        client_id=CLIENT[0],
        client_secret=SecretStr(CLIENT[1]),
        refresh_token=SecretStr(sim.grant()),
    )
    yield from _wire(settings, sim)


def _view(wire: Wire, purchase_id: str, *shipments: ShipmentView, shipped: int = 0) -> OrderView:
    fetched = wire.channel.fetch_order(purchase_id)
    return OrderView(
        order_id=f"hub-{purchase_id}",
        channel="depop",
        channel_order_id=purchase_id,
        currency=fetched.currency,
        lines=tuple(
            OrderLineView(
                line_id=f"L{line.channel_line_id}",
                channel_line_id=line.channel_line_id,
                sku=line.sku,
                quantity=1,
                shipped_quantity=shipped,
                unit_price=line.unit_price,
                parcel_ref=line.parcel_ref,
            )
            for line in fetched.lines
        ),
        shipments=shipments,
    )


def _shipment(line_ids: list[str]) -> ShipmentView:
    return ShipmentView(
        shipment_id="S1",
        carrier="Royal Mail",
        tracking_numbers=("RM1GB", "RM2GB"),
        tracking_url=None,
        shipped_at=None,
        lines=tuple(ShipmentLineView(channel_line_id=i, sku=None, quantity=1) for i in line_ids),
        pushed_to_channel=False,
    )


def _exercise(wire: Wire) -> None:
    """Every call the channel makes, with the answers Depop documents for them."""
    sim, channel = wire.sim, wire.channel
    sim.add_product("TEE", quantity=2)
    sim.add_product("CAP", quantity=1)
    channel.update_listing("TEE", 5)  # GET, PATCH
    channel.update_listing("CAP", 0)  # mark-as-sold
    channel.update_listing("CAP", 2)  # GET, PUT (restock)
    with pytest.raises(ListingNotFound):
        channel.update_listing("NOPE", 1)  # 404 on GET
    shipped = sim.purchase("TEE")
    refunded = sim.purchase("TEE", "CAP")
    assert {
        o.channel_order_id
        for o in channel.list_orders(NOW - timedelta(days=1), datetime.now(UTC) + timedelta(days=1))
    } >= {shipped, refunded}
    order = _view(
        wire, shipped, _shipment([str(sim.orders[shipped]["line_items"][0]["purchase_item_id"])])
    )
    channel.push_tracking(order, "S1")
    channel.push_tracking(order, "S1")  # a repeat: Depop's 400, read as already marked
    channel.cancel(_view(wire, refunded), "out of stock")  # full refund
    with pytest.raises(Permanent, match="validation"):
        channel.client.refund(refunded, items_refund_amount=Decimal("1.00"))  # 422
    sim.fail_next(1, 429)
    with pytest.raises(Retriable, match="429"):
        channel.fetch_order(shipped)


def test_every_call_of_the_api_key_client_fits_the_contract(wire: Wire) -> None:
    _exercise(wire)
    assert wire.log.problems == []
    assert wire.log.operations() == CLIENT_OPERATIONS - {("POST", TOKEN_PATH)}
    assert wire.log.statuses("GET", "/api/v1/products/by-sku/{sku}/") == {200, 404}
    assert 422 in wire.log.statuses("POST", "/api/v1/orders/{purchase_id}/refund/")
    assert 400 in wire.log.statuses(
        "POST", "/api/v1/orders/{purchase_id}/parcels/{parcel_id}/mark-as-shipped/"
    )


def test_every_call_of_the_oauth_client_fits_the_contract(oauth_wire: Wire) -> None:
    _exercise(oauth_wire)
    assert oauth_wire.log.problems == []
    assert oauth_wire.log.operations() == CLIENT_OPERATIONS


def test_a_client_request_that_breaks_the_contract_is_stopped_before_it_is_sent(
    wire: Wire,
) -> None:
    wire.sim.add_product("TEE")
    before = len(wire.sim.calls)
    with pytest.raises(ContractViolation, match="body.quantity"):
        wire.channel.client._call("PATCH", "/api/v1/products/by-sku/TEE/", json={"quantity": "5"})
    assert len(wire.sim.calls) == before


# -- the simulator, on its own ----------------------------------------------------------------


@pytest.fixture
def raw(sim: DepopSimulator) -> Iterator[tuple[TestClient, ContractLog]]:
    with TestClient(sim.app, base_url=HOST) as http:
        yield http, watch(http, CONTRACT, strict=False)


AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_the_simulator_serves_every_operation_of_its_contract(
    sim: DepopSimulator, raw: tuple[TestClient, ContractLog]
) -> None:
    http, log = raw
    sim.add_product("TEE", quantity=3)
    http.post("/api/v1/products/by-sku/TEE/purchase/", headers=AUTH)
    purchase_id = next(iter(sim.orders))
    parcel = sim.orders[purchase_id]["line_items"][0]["parcel_id"]
    http.get("/api/v1/orders/", params={"limit": 1}, headers=AUTH)
    http.get(f"/api/v1/orders/{purchase_id}/", headers=AUTH)
    assert http.get("/api/v1/shop/", headers=AUTH).json()["id"] == sim.seller_id
    http.post(
        f"/api/v1/orders/{purchase_id}/parcels/{parcel}/mark-as-shipped/",
        json={"tracking_number": "RM1", "carrier": "Royal Mail"},
        headers=AUTH,
    )
    http.post(
        f"/api/v1/orders/{purchase_id}/refund/",
        json={"items_refund_amount": "1.00"},
        headers=AUTH,
    )
    http.get("/api/v1/products/by-sku/TEE/", headers=AUTH)
    http.patch("/api/v1/products/by-sku/TEE/", json={"quantity": 4}, headers=AUTH)
    put = restock_body(http.get("/api/v1/products/by-sku/TEE/", headers=AUTH).json(), 2)
    http.put("/api/v1/products/by-sku/TEE/", json=put, headers=AUTH)
    http.post("/api/v1/products/by-sku/TEE/mark-as-sold/", headers=AUTH)
    http.delete("/api/v1/products/by-sku/TEE/", headers=AUTH)
    http.post(
        TOKEN_PATH,
        data={
            "grant_type": "refresh_token",
            "refresh_token": sim.grant(),
            "client_id": CLIENT[0],
            "client_secret": CLIENT[1],
        },
    )
    http.get("/status", headers=AUTH)
    assert log.problems == []
    assert log.operations() == SIMULATOR_OPERATIONS
    assert all(e.status == 200 for e in log.exchanges), [(e.url, e.status) for e in log.exchanges]


BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("GET", "/api/v1/orders/?limit=500", {}, 400, "query parameter 'limit'"),
    ("GET", "/api/v1/orders/?from=yesterday", {}, 400, "query parameter 'from'"),
    (
        "POST",
        "/api/v1/orders/1/parcels/p/mark-as-shipped/",
        {"json": {"tracking_number": "RM1"}},
        400,
        "'carrier' is a required property",
    ),
    ("PUT", "/api/v1/products/by-sku/TEE/", {"json": {"quantity": 1}}, 400, "'address'"),
    ("PATCH", "/api/v1/products/by-sku/TEE/", {"json": {"quantity": "2"}}, 400, "body.quantity"),
    (
        "POST",
        "/api/v1/orders/1/refund/",
        {"json": {"items_refund_amount": 5}},
        400,
        "body.items_refund_amount",
    ),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "problem"), BAD_REQUESTS)
def test_the_simulator_refuses_what_the_description_refuses_in_depops_format(
    raw: tuple[TestClient, ContractLog],
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    problem: str,
) -> None:
    http, log = raw
    answer = http.request(method, path, headers=AUTH, **kwargs)
    assert answer.status_code == status
    assert any(problem in error["message"] for error in answer.json()["errors"])
    assert [p for p in log.problems if "request" not in p and "response" in p] == []
    assert log.exchanges[-1].response_problems == ()


def test_the_token_endpoint_refuses_in_the_oauth_error_format(
    raw: tuple[TestClient, ContractLog],
) -> None:
    http, log = raw
    answer = http.post(TOKEN_PATH, data={"grant_type": "password", "client_id": "x"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert log.exchanges[-1].response_problems == ()
