"""The simulated Deliverr API itself: validation, error format, state and controls."""

from __future__ import annotations

import copy
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from connectors.deliverr.simulator import DeliverrSimulator, SimulationError, product_id
from connectors.deliverr.transformers import ERROR_RULES, DeliverrErrorCode, load_json

from .conftest import ACCESS_TOKEN, REFRESH_TOKEN
from .test_transformers import SEED_CREATE_BODY

AUTH = {"Authorization": f"Bearer {ACCESS_TOKEN}"}

VALID: dict[str, Any] = {
    "externalOrderId": "ord_01",
    "source": "depop",
    "sourceOrderId": "depop-9001",
    "shiptoAddress": {
        "name": "Ada",
        "street1": "1 Engine Way",
        "city": "Austin",
        "state": "TX",
        "postcode": "78701",
        "countryCode": "US",
    },
    "lineItems": [
        {"externalProductId": "SKU-A", "quantity": 2, "lineItemId": "line-1"},
        {"externalProductId": "SKU-B", "quantity": 1, "lineItemId": "line-2"},
    ],
    "orderCreationTime": "2024-05-01T12:30:00Z",
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """VALID with `path` (dotted) set to `value`, or removed when `value` is ...."""
    body = copy.deepcopy(VALID)
    *parents, leaf = path.split(".")
    target: Any = body
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is ...:
        del target[leaf]
    else:
        target[leaf] = value
    return body


def _create(api: TestClient, body: Any) -> dict[str, Any]:
    response = api.post("/orders/v1/order", json=body, headers=AUTH)
    result: dict[str, Any] = response.json()
    result["_status"] = response.status_code
    return result


def test_the_seed_example_verbatim_is_refused_for_its_country_code(api: TestClient) -> None:
    response = api.post(
        "/orders/v1/order",
        content=SEED_CREATE_BODY,
        headers={**AUTH, "content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": 400,
        "type": "ORDER_INVALID_COUNTRY_CODE",
        "message": ERROR_RULES[DeliverrErrorCode.ORDER_INVALID_COUNTRY_CODE].explanation,
    }


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_with("shiptoAddress", ...), "ORDER_MISSING_SHIPPING_ADDRESS"),
        (_with("shiptoAddress.street1", ""), "ORDER_MISSING_ADDRESS_LINE"),
        (_with("shiptoAddress.city", ...), "ORDER_MISSING_CITY"),
        (_with("shiptoAddress.countryCode", "XX"), "ORDER_INVALID_COUNTRY_CODE"),
        (_with("shiptoAddress.countryCode", "us"), "ORDER_INVALID_COUNTRY_CODE"),
        (_with("shiptoAddress.state", ...), "ORDER_MISSING_STATE_ZIP"),
        (_with("shiptoAddress.postcode", " "), "ORDER_MISSING_STATE_ZIP"),
        (_with("lineItems", []), "ORDER_CANNOT_BE_FULFILLED"),
        (_with("lineItems", ...), "ORDER_CANNOT_BE_FULFILLED"),
        (_with("lineItems.1.externalProductId", ...), "ORDER_MISSING_LINE_ITEM"),
        (_with("lineItems.0.externalProductId", "NEVER-INBOUNDED"), "PRODUCT_NOT_AVAILABLE"),
        (_with("lineItems.0.quantity", 0), None),
        (_with("externalOrderId", ...), None),
        (_with("shiptoAddress.phone", "555"), None),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_create_answers_the_seed_error_type_for_what_is_wrong(
    api: TestClient, sim: DeliverrSimulator, body: dict[str, Any], code: str | None
) -> None:
    result = _create(api, body)

    assert (result["_status"], result["code"], result.get("type")) == (400, 400, code)
    assert sim.orders == {}


def test_an_order_outside_the_us_may_leave_state_and_zip_empty(api: TestClient) -> None:
    address = {"name": "Jo Jo", "street1": "1 Rue", "city": "Paris", "state": "", "postcode": ""}
    body = _with("shiptoAddress", {**address, "countryCode": "FR"})

    assert _create(api, body)["_status"] == 201


def test_without_known_products_every_sku_is_accepted() -> None:
    open_sim = DeliverrSimulator(access_token=ACCESS_TOKEN, webhook_token="w")
    with TestClient(open_sim.app, base_url="https://api.deliverr.com") as api:
        assert _create(api, _with("lineItems.0.externalProductId", "ANYTHING"))["_status"] == 201


def test_a_taken_external_order_id_is_unprocessable(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    first = _create(api, VALID)
    second = _create(api, VALID)

    assert first["_status"] == 201
    assert (second["_status"], second["code"], second.get("type")) == (422, 422, None)
    assert list(sim.orders) == [first["orderId"]]


def test_a_create_answers_the_whole_order(api: TestClient) -> None:
    created = _create(api, VALID)

    assert created["_status"] == 201
    assert created["externalOrderId"] == "ord_01"
    assert created["status"] == "CREATED"
    assert created["shipments"] == []
    assert created["lineItems"] == VALID["lineItems"]


def _keyed(api: TestClient, body: Any, key: str) -> httpx.Response:
    answer: httpx.Response = api.post(
        "/orders/v1/order", json=body, headers={**AUTH, "idempotency-key": key}
    )
    return answer


KEY = "52907745-7672-470e-a803-a2f8feb52944"


def test_an_idempotency_key_replays_the_first_answer(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    first = _keyed(api, VALID, KEY)
    again = _keyed(api, VALID, KEY)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert len(sim.orders) == 1


def test_a_refusal_is_replayed_under_its_key_too(api: TestClient, sim: DeliverrSimulator) -> None:
    sim.set_error_for_next_create("PRODUCT_NOT_AVAILABLE")
    first = _keyed(api, VALID, KEY)
    again = _keyed(api, VALID, KEY)

    assert (first.status_code, again.status_code) == (400, 400)
    assert again.headers["idempotent-replayed"] == "true"
    assert sim.orders == {}


def test_a_key_reused_for_another_body_is_unprocessable(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    _keyed(api, VALID, KEY)
    other = _keyed(api, _with("externalOrderId", "ord_02"), KEY)

    assert (other.status_code, other.json()["code"]) == (422, 422)
    assert len(sim.orders) == 1


def test_a_key_that_is_not_a_uuid4_is_refused(api: TestClient, sim: DeliverrSimulator) -> None:
    refused = _keyed(api, VALID, "order-ord_01")

    assert refused.status_code == 400
    assert sim.orders == {}


def test_a_created_order_is_found_by_id_and_by_external_id(api: TestClient) -> None:
    order_id = _create(api, VALID)["orderId"]

    by_id = api.get(f"/orders/v1/order/{order_id}", headers=AUTH).json()
    by_external = api.get("/orders/v1/order/externalId/ord_01", headers=AUTH).json()

    assert by_id == by_external
    assert by_id["status"] == "CREATED"
    assert by_id["shipments"] == []
    assert by_id["lineItems"] == VALID["lineItems"]


@pytest.mark.parametrize(
    "path", ["/orders/v1/order/404404", "/orders/v1/order/externalId/nope"], ids=["id", "external"]
)
def test_an_unknown_order_is_404_in_the_error_format(api: TestClient, path: str) -> None:
    response = api.get(path, headers=AUTH)

    assert response.status_code == 404
    assert response.json() == {"code": 404, "message": response.json()["message"]}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ACCESS_TOKEN}]
)
def test_calls_without_the_access_token_are_401(
    api: TestClient, sim: DeliverrSimulator, headers: dict[str, str]
) -> None:
    response = api.post("/orders/v1/order", json=VALID, headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == 401
    assert sim.orders == {}


def test_renewal_rotates_both_tokens(api: TestClient, sim: DeliverrSimulator) -> None:
    sim.expire_access_token()
    assert api.get("/orders/v1/order/1", headers=AUTH).status_code == 401

    grant = {"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN}
    tokens = api.post("/oauth/v1/token", data=grant).json()
    reused = api.post("/oauth/v1/token", data=grant)
    renewed = {"Authorization": f"Bearer {tokens['access_token']}"}

    assert api.get("/orders/v1/order/1", headers=renewed).status_code == 404
    assert reused.status_code == 400
    assert reused.json()["code"] == 400
    assert tokens["refresh_token"] != REFRESH_TOKEN


def test_shipping_moves_the_order_through_partial_to_shipped_to_delivered(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    order_id = _create(api, VALID)["orderId"]
    sim.flush_webhooks()
    sim.process(order_id)

    first = sim.ship(order_id, [("SKU-A", 1)], carrier="FEDEX", tracking_number="F1")
    assert sim.orders[order_id].status == "PARTIALLY_SHIPPED"
    second = sim.ship(order_id)
    assert sim.orders[order_id].status == "SHIPPED"
    sim.mark_delivered(order_id)

    assert sim.orders[order_id].status == "DELIVERED"
    assert first["shippingService"] == "FEDEX.GROUND"
    assert first["shippedItems"] == [
        {
            "externalProductId": "SKU-A",
            "productId": product_id("SKU-A"),
            "lineItemId": "line-1",
            "status": "PARTIALLY_SHIPPED",
            "quantityOrdered": 2,
            "quantity": 1,
        }
    ]
    assert [(i["externalProductId"], i["quantity"]) for i in second["shippedItems"]] == [
        ("SKU-A", 1),
        ("SKU-B", 1),
    ]
    # Deliverr reports CREATED and the whole order SHIPPED; processing, a partial shipment and
    # delivery are read from the order.
    events = [load_json(w.body) for w in sim.sent_webhooks]
    assert [(e["updateType"], e.get("oldStatus"), e["newStatus"]) for e in events] == [
        ("CREATED", None, "CREATED"),
        ("SHIPPED", "CREATED", "SHIPPED"),
    ]
    assert [s["trackingNumber"] for s in events[-1]["shipments"]] == [
        "F1",
        second["trackingNumber"],
    ]
    assert all(w.headers == {"X-Deliverr-Token": sim.webhook_token} for w in sim.sent_webhooks)
    order = api.get(f"/orders/v1/order/{order_id}", headers=AUTH).json()
    assert order["orderShippedTime"] == second["shippedTime"]
    assert "orderDeliveredTime" in order


@pytest.mark.parametrize(
    ("carrier", "service", "warehouse"),
    [("Pigeon Post", None, "ATL1FC"), ("UPS", "UPS.TELEPORT", "ATL1FC"), ("UPS", None, "MOON")],
)
def test_packages_carry_only_carriers_services_and_warehouses_deliverr_lists(
    api: TestClient,
    sim: DeliverrSimulator,
    carrier: str,
    service: str | None,
    warehouse: str,
) -> None:
    order_id = _create(api, VALID)["orderId"]

    with pytest.raises(SimulationError):
        sim.ship(order_id, carrier=carrier, service=service, warehouse_id=warehouse)


@pytest.mark.parametrize(
    "items",
    [[("SKU-A", 3)], [("SKU-C", 1)], [("SKU-A", 0)]],
    ids=["too-many", "not-in-order", "zero"],
)
def test_shipping_what_the_order_does_not_hold_is_refused(
    api: TestClient, sim: DeliverrSimulator, items: list[tuple[str, int]]
) -> None:
    order_id = _create(api, VALID)["orderId"]

    with pytest.raises(SimulationError):
        sim.ship(order_id, items)

    assert sim.orders[order_id].shipments == []


def test_a_fully_shipped_order_has_nothing_left_to_ship(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    order_id = _create(api, VALID)["orderId"]
    sim.ship(order_id)

    with pytest.raises(SimulationError):
        sim.ship(order_id)


def test_cancel_is_refused_once_shipped_and_a_cancelled_order_cannot_ship(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    shipped = _create(api, VALID)["orderId"]
    other = _create(api, _with("externalOrderId", "ord_02"))["orderId"]
    sim.ship(shipped, [("SKU-B", 1)])

    refused = api.post(f"/orders/v1/order/{shipped}/cancel", headers=AUTH)
    cancelled = api.post(f"/orders/v1/order/{other}/cancel", headers=AUTH)

    assert (refused.status_code, refused.json()["code"]) == (422, 422)
    assert (cancelled.status_code, cancelled.content) == (204, b"")
    unknown = api.post("/orders/v1/order/404404/cancel", headers=AUTH)
    assert (unknown.status_code, unknown.json()["code"]) == (404, 404)
    with pytest.raises(SimulationError):
        sim.ship(other)


def test_a_forced_error_answers_the_next_create_only(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    sim.set_error_for_next_create("ORDER_PRODUCT_MISSING_CUSTOMS")

    forced = _create(api, VALID)
    after = _create(api, VALID)

    assert (forced["_status"], forced["type"]) == (400, "ORDER_PRODUCT_MISSING_CUSTOMS")
    assert after["_status"] == 201


def test_control_routes_drive_the_simulation(api: TestClient, sim: DeliverrSimulator) -> None:
    order_id = _create(api, VALID)["orderId"]

    assert api.post(f"/_sim/orders/{order_id}/process").status_code == 200
    shipment = api.post(
        f"/_sim/orders/{order_id}/ship",
        json={"items": [{"sku": "SKU-B", "quantity": 1}], "tracking_number": "T9"},
    ).json()
    again = api.post(
        f"/_sim/orders/{order_id}/ship", json={"items": [{"sku": "SKU-B", "quantity": 1}]}
    )
    flushed = api.post("/_sim/flush-webhooks").json()
    listed = api.get("/_sim/orders").json()
    assert api.post("/_sim/next-create-error", params={"code": "BOGUS"}).status_code == 400
    api.post("/_sim/next-create-error", params={"code": "ORDER_MISSING_CITY"})
    api.post("/_sim/expire-token")

    assert shipment["trackingNumber"] == "T9"
    assert again.status_code == 409
    assert flushed == {"statuses": [200]}  # CREATED; a partial shipment sends none
    assert [o["status"] for o in listed] == ["PARTIALLY_SHIPPED"]
    assert _create(api, _with("externalOrderId", "ord_03"))["_status"] == 401
    assert all(not c.path.startswith("/_sim") for c in sim.calls)


def test_a_timed_out_create_has_still_stored_the_order(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    sim.timeout_next_create()

    with pytest.raises(httpx.ReadTimeout):
        api.post("/orders/v1/order", json=VALID, headers=AUTH)

    assert sim.order_by_external_id("ord_01") is not None
    assert _create(api, _with("externalOrderId", "ord_02"))["_status"] == 201


def test_a_slow_create_stores_the_order_only_when_it_answers(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    sim.slow_next_create(0.2)
    started = time.monotonic()

    assert _create(api, VALID)["_status"] == 201
    assert time.monotonic() - started >= 0.2


def test_a_create_repeating_a_running_ones_key_waits_and_replays_its_answer(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    sim.slow_next_create(0.3)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(_keyed, api, VALID, KEY)
        time.sleep(0.1)
        second = pool.submit(_keyed, api, VALID, KEY)
        answers = [first.result(), second.result()]

    assert [a.status_code for a in answers] == [201, 201]
    assert answers[1].json()["orderId"] == answers[0].json()["orderId"]
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert len(sim.orders) == 1
