"""The real Deliverr provider against the simulated Deliverr API."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from connectors.base import (
    Address,
    FulfilmentLine,
    FulfilmentProvider,
    Permanent,
    ProviderOrderStatus,
    Retriable,
)
from connectors.deliverr import DeliverrProvider
from connectors.deliverr.simulator import DeliverrSimulator
from connectors.deliverr.transformers import (
    ERROR_RULES,
    DeliverrErrorCode,
    Outcome,
    idempotency_key,
)

from .conftest import ACCESS_TOKEN, REFRESH_TOKEN, MemoryTokenStore, make_request, make_settings

ORDERS = "/orders/v1/order"


def test_provider_satisfies_the_fulfilment_provider_protocol(provider: DeliverrProvider) -> None:
    typed: FulfilmentProvider = provider  # mypy checks the signatures; isinstance the members

    assert isinstance(typed, FulfilmentProvider)
    assert provider.name == "deliverr"
    assert provider.webhooks is not None


def test_create_order_sends_the_mapped_fields(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    order_id = provider.create_order(make_request(shipping_service="standard"))

    [call] = sim.calls_to("POST", "/orders/v1/order")
    assert call.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert uuid.UUID(call.headers["idempotency-key"]).version == 4
    assert call.json == {
        "externalOrderId": "ord_01",
        "source": "depop",
        "sourceOrderId": "depop-9001",
        "shiptoAddress": {
            "name": "Ada Lovelace",
            "company": "Analytical Ltd",
            "street1": "1 Engine Way",
            "street2": "Suite 2",
            "city": "Austin",
            "state": "TX",
            "postcode": "78701",
            "countryCode": "US",
        },
        "lineItems": [
            {"externalProductId": "SKU-A", "quantity": 2, "lineItemId": "line-1"},
            {"externalProductId": "SKU-B", "quantity": 1, "lineItemId": "line-2"},
        ],
        "shipMethod": "Standard",
        "orderCreationTime": "2024-05-01T12:30:00Z",
    }
    assert sim.orders[order_id].external_order_id == "ord_01"


SHIP_METHODS = {
    "depop:express": "UPS 2ND DAY AIR",
    "depop": "Depop Standard",
    "*": "Ground",
}


@pytest.mark.parametrize(
    ("channel", "service", "expected"),
    [
        ("depop", "express", "UPS 2ND DAY AIR"),
        ("Depop", " Express ", "UPS 2ND DAY AIR"),
        ("depop", "tracked", "Depop Standard"),
        ("depop", None, "Depop Standard"),
        ("topi", "express", "Ground"),
    ],
)
def test_ship_method_comes_from_the_configured_mapping(
    api: TestClient, sim: DeliverrSimulator, channel: str, service: str | None, expected: str
) -> None:
    provider = DeliverrProvider(make_settings(ship_methods=SHIP_METHODS), http=api)

    provider.create_order(make_request(channel=channel, shipping_service=service))

    [call] = sim.calls_to("POST", "/orders/v1/order")
    assert call.json["shipMethod"] == expected
    assert call.json["source"] == channel


def test_an_unmapped_order_gets_the_default_or_no_ship_method(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    express_only = {"depop:express": "UPS 2ND DAY AIR"}
    DeliverrProvider(
        make_settings(ship_methods=express_only, default_ship_method="Economy"), http=api
    ).create_order(make_request(order_id="ord_a", shipping_service="tracked"))
    DeliverrProvider(
        make_settings(ship_methods=express_only, default_ship_method=""), http=api
    ).create_order(make_request(order_id="ord_b", shipping_service="tracked"))

    first, second = sim.calls_to("POST", "/orders/v1/order")
    assert first.json["shipMethod"] == "Economy"
    assert "shipMethod" not in second.json


def test_every_create_carries_an_idempotency_key_any_worker_derives_alike(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    provider.create_order(make_request())
    provider.create_order(make_request(order_id="ord_02"))

    first, second = sim.calls_to("POST", ORDERS)
    keys = [call.headers["idempotency-key"] for call in (first, second)]
    assert all(uuid.UUID(key).version == 4 for key in keys)
    assert keys[0] != keys[1]
    # Drawn from the order and its body alone: a retry on another worker sends the same key.
    assert keys[0] == idempotency_key("ord_01", first.json)


def test_a_slow_create_retried_while_deliverr_still_works_on_it_makes_one_order(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    """Deliverr stores the order after the client gave up; the retry comes before it shows."""
    provider = DeliverrProvider(make_settings(call_deadline_seconds=1.0), http=api)
    sim.slow_next_create(1.5)
    started = time.monotonic()

    with pytest.raises(Retriable, match="deadline"):
        provider.create_order(make_request())
    assert time.monotonic() - started < 1.4
    assert sim.orders == {}
    # The lookup cannot see the order yet; the create repeats the key and Deliverr, once the
    # first request is done, replays its answer instead of storing a second order.
    order_id = provider.create_order(make_request())

    assert list(sim.orders) == [order_id]
    first, second = sim.calls_to("POST", ORDERS)
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert (first.status, second.status) == (201, 201)  # the second is the replay
    assert [c.status for c in sim.calls_to("GET", f"{ORDERS}/externalId/")] == [404, 404]


def test_a_slow_create_retried_after_deliverr_stored_it_is_found_not_repeated(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    provider = DeliverrProvider(make_settings(call_deadline_seconds=0.3), http=api)
    sim.slow_next_create(0.6)

    with pytest.raises(Retriable, match="deadline"):
        provider.create_order(make_request())
    # The job's backoff: meanwhile Deliverr finishes, stores the order and answers nobody.
    waited = time.monotonic()
    while not sim.calls_to("POST", ORDERS) and time.monotonic() - waited < 5:
        time.sleep(0.02)
    order_id = provider.create_order(make_request())

    assert list(sim.orders) == [order_id]
    assert len(sim.calls_to("POST", ORDERS)) == 1


def test_a_replayed_refusal_is_asked_again_under_a_fresh_key(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    """A product inbounded after Deliverr refused the order: its key would replay the refusal."""
    sim.set_error_for_next_create(DeliverrErrorCode.PRODUCT_NOT_AVAILABLE)
    with pytest.raises(Permanent):
        provider.create_order(make_request())

    order_id = provider.create_order(make_request())

    assert list(sim.orders) == [order_id]
    keys = [(c.headers["idempotency-key"], c.status) for c in sim.calls_to("POST", ORDERS)]
    assert [status for _, status in keys] == [400, 400, 201]
    assert keys[0][0] == keys[1][0] != keys[2][0]


@pytest.mark.parametrize(
    ("field", "value"),
    [("line1", "x" * 51), ("line2", "y" * 31), ("city", "z" * 31), ("name", "Al")],
)
def test_an_address_deliverr_cannot_hold_needs_attention_before_any_create(
    provider: DeliverrProvider, sim: DeliverrSimulator, field: str, value: str
) -> None:
    address = replace(make_request().shipping_address, **{field: value})

    with pytest.raises(Permanent) as failure:
        provider.create_order(make_request(address=address))

    assert failure.value.code == "address_unfit"
    assert sim.calls_to("POST", ORDERS) == []


def test_a_long_name_and_company_are_cut_to_what_deliverr_holds(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    address = replace(make_request().shipping_address, name="N" * 40, company="C" * 40)

    provider.create_order(make_request(address=address))

    [call] = sim.calls_to("POST", ORDERS)
    assert call.json["shiptoAddress"]["name"] == "N" * 35
    assert call.json["shiptoAddress"]["company"] == "C" * 30


def test_create_order_looks_up_by_external_id_before_posting(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    first = provider.create_order(make_request())
    second = provider.create_order(make_request())

    assert first == second
    assert len(sim.orders) == 1
    assert len(sim.calls_to("POST", "/orders/v1/order")) == 1
    assert len(sim.calls_to("GET", "/orders/v1/order/externalId/ord_01")) == 2


def test_create_that_timed_out_after_deliverr_stored_it_is_retried_into_one_order(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    sim.timeout_next_create()
    request = make_request()

    with pytest.raises(Retriable):
        provider.create_order(request)
    retried = provider.create_order(request)

    assert list(sim.orders) == [retried]
    assert len(sim.calls_to("GET", "/orders/v1/order/externalId/")) == 2


def test_a_timed_out_lookup_is_retriable_and_creates_nothing(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    sim.timeout_next(1, after_processing=False)

    with pytest.raises(Retriable):
        provider.create_order(make_request())

    assert sim.orders == {}


def test_create_refused_before_processing_is_retriable_and_the_retry_creates(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    sim.fail_next(1, status=503)

    with pytest.raises(Retriable):
        provider.create_order(make_request())
    order_id = provider.create_order(make_request())

    assert list(sim.orders) == [order_id]


ATTENTION_CODES = [code for code, rule in ERROR_RULES.items() if rule.outcome is Outcome.ATTENTION]


@pytest.mark.parametrize("code", ATTENTION_CODES, ids=str)
def test_seed_error_needing_a_person_is_permanent_with_the_seed_reason(
    provider: DeliverrProvider, sim: DeliverrSimulator, code: DeliverrErrorCode
) -> None:
    sim.set_error_for_next_create(code)

    with pytest.raises(Permanent) as failure:
        provider.create_order(make_request())

    assert failure.value.code == code.value
    assert failure.value.reason == ERROR_RULES[code].explanation
    assert sim.orders == {}


def test_order_submitted_too_early_is_retriable_and_a_later_retry_creates(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    sim.set_error_for_next_create(DeliverrErrorCode.ORDER_SUBMITTED_TOO_EARLY)

    with pytest.raises(Retriable) as failure:
        provider.create_order(make_request())
    order_id = provider.create_order(make_request())

    assert "ORDER_SUBMITTED_TOO_EARLY" in failure.value.reason
    assert list(sim.orders) == [order_id]


def test_order_previously_seen_error_is_retried_after_an_hour(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    sim.set_error_for_next_create(DeliverrErrorCode.ORDER_PREVIOUSLY_SEEN_ERROR)

    with pytest.raises(Retriable) as failure:
        provider.create_order(make_request())

    assert failure.value.after == 3600


ADDRESS = {"name": "Ann Arbor", "line1": "1 Way", "city": "Austin", "country_code": "US"}
REFUSED = {
    "ORDER_MISSING_ADDRESS_LINE": make_request(address=Address(**{**ADDRESS, "line1": ""})),
    "ORDER_MISSING_CITY": make_request(address=Address(**{**ADDRESS, "city": ""})),
    "ORDER_INVALID_COUNTRY_CODE": make_request(
        address=Address(**{**ADDRESS, "country_code": "USA"})
    ),
    "ORDER_MISSING_STATE_ZIP": make_request(address=Address(**{**ADDRESS, "postal_code": "78701"})),
    "PRODUCT_NOT_AVAILABLE": make_request(
        lines=(FulfilmentLine(line_id="l1", sku="NEVER-INBOUNDED", quantity=1),)
    ),
}


@pytest.mark.parametrize("code", list(REFUSED))
def test_order_deliverr_refuses_needs_attention_with_the_seed_reason(
    provider: DeliverrProvider, sim: DeliverrSimulator, code: str
) -> None:
    with pytest.raises(Permanent) as failure:
        provider.create_order(REFUSED[code])

    assert failure.value.code == code
    assert failure.value.reason == ERROR_RULES[DeliverrErrorCode(code)].explanation
    assert sim.orders == {}


def test_an_international_order_needs_no_state(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    address = Address(name="Jo Weber", line1="Unter den Linden 1", city="Berlin", country_code="DE")

    assert provider.create_order(make_request(address=address))
    [call] = sim.calls_to("POST", ORDERS)
    # Deliverr's Address requires both; outside the US it needs neither filled in.
    assert (call.json["shiptoAddress"]["state"], call.json["shiptoAddress"]["postcode"]) == ("", "")


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_retriable(
    provider: DeliverrProvider, sim: DeliverrSimulator, status: int
) -> None:
    sim.fail_next(1, status=status)

    with pytest.raises(Retriable):
        provider.get_order("100000001")


def test_an_error_code_outside_the_seed_is_permanent_and_named(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    sim.fail_next(2, status=400, body={"code": 400, "message": "new rule", "type": "SOMETHING_NEW"})

    with pytest.raises(Permanent) as failure:
        provider.create_order(make_request())

    assert failure.value.code == "SOMETHING_NEW"
    assert "SOMETHING_NEW" in failure.value.reason


def test_get_order_follows_partial_then_full_shipment(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    order_id = provider.create_order(make_request())
    assert provider.get_order(order_id).status is ProviderOrderStatus.PENDING

    sim.ship(order_id, [("SKU-A", 1)], carrier="USPS", tracking_number="TRK-1")
    partial = provider.get_order(order_id)
    sim.ship(order_id, tracking_number="TRK-2")
    full = provider.get_order(order_id)

    assert partial.status is ProviderOrderStatus.PARTIALLY_SHIPPED
    assert partial.external_order_id == "ord_01"
    [first] = partial.shipments
    assert first.carrier == "USPS"
    assert first.tracking_numbers == ("TRK-1",)
    assert [(ln.sku, ln.line_id, ln.quantity) for ln in first.lines] == [("SKU-A", "line-1", 1)]
    assert full.status is ProviderOrderStatus.SHIPPED
    assert full.raw_status == "SHIPPED"
    assert full.shipments[0] == first
    assert sorted((ln.sku, ln.line_id, ln.quantity) for ln in full.shipments[1].lines) == [
        ("SKU-A", "line-1", 1),
        ("SKU-B", "line-2", 1),
    ]
    assert full.shipments[0].shipment_id != full.shipments[1].shipment_id


def test_get_order_by_external_id_reads_the_same_order(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    order_id = provider.create_order(make_request())

    found = provider.get_order_by_external_id("ord_01")

    assert found is not None and found.provider_order_id == order_id
    assert provider.get_order_by_external_id("ord_unknown") is None


def test_getting_an_order_deliverr_does_not_have_is_permanent(provider: DeliverrProvider) -> None:
    with pytest.raises(Permanent) as failure:
        provider.get_order("999")

    assert failure.value.code == "not_found"


def test_cancel_before_shipment_cancels_and_is_safe_to_repeat(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    order_id = provider.create_order(make_request())

    provider.cancel_order(order_id)
    provider.cancel_order(order_id)

    assert provider.get_order(order_id).status is ProviderOrderStatus.CANCELLED


def test_cancel_after_shipment_says_a_return_is_needed(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    order_id = provider.create_order(make_request())
    sim.ship(order_id, [("SKU-B", 1)])

    with pytest.raises(Permanent) as failure:
        provider.cancel_order(order_id)

    assert failure.value.code == "already_shipped"
    assert failure.value.reason == "cancelled after shipment: return needed"
    assert provider.get_order(order_id).status is ProviderOrderStatus.PARTIALLY_SHIPPED


def test_creating_again_an_order_cancelled_at_deliverr_is_permanent(
    provider: DeliverrProvider,
) -> None:
    provider.cancel_order(provider.create_order(make_request()))

    with pytest.raises(Permanent) as failure:
        provider.create_order(make_request())

    assert failure.value.code == "previously_cancelled"


def test_an_expired_token_is_renewed_once_and_the_new_pair_saved(
    provider: DeliverrProvider, sim: DeliverrSimulator, store: MemoryTokenStore
) -> None:
    sim.expire_access_token()

    order_id = provider.create_order(make_request())

    assert order_id in sim.orders
    assert len(sim.calls_to("POST", "/oauth/v1/token")) == 1
    assert store.values["deliverr"] == {
        "access_token": sim.access_token,
        "refresh_token": sim.refresh_token,
    }
    assert sim.refresh_token != REFRESH_TOKEN


def test_stored_tokens_are_preferred_over_the_settings(
    api: TestClient, sim: DeliverrSimulator, provider: DeliverrProvider, store: MemoryTokenStore
) -> None:
    sim.expire_access_token()
    provider.get_order_by_external_id("ord_01")
    # Deliverr rotated the refresh token: the pair in the settings is now useless.
    restarted = DeliverrProvider(make_settings(), http=api, token_store=store)

    assert restarted.get_order_by_external_id("ord_01") is None
    assert len(sim.calls_to("POST", "/oauth/v1/token")) == 1


def test_an_expired_token_without_refresh_token_is_permanent_naming_the_variable(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    provider = DeliverrProvider(make_settings(refresh_token=None), http=api)
    sim.expire_access_token()

    with pytest.raises(Permanent) as failure:
        provider.get_order("1")

    assert "DELIVERR_ACCESS_TOKEN" in failure.value.reason
    assert failure.value.code == "unauthenticated"


def test_a_refused_renewal_is_permanent_naming_the_variables(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    provider = DeliverrProvider(make_settings(refresh_token="revoked"), http=api)
    sim.expire_access_token()

    with pytest.raises(Permanent) as failure:
        provider.get_order("1")

    assert "DELIVERR_ACCESS_TOKEN" in failure.value.reason
    assert "DELIVERR_REFRESH_TOKEN" in failure.value.reason


def test_a_wrong_access_token_is_renewed_through_the_refresh_token(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    provider = DeliverrProvider(make_settings(access_token="stale"), http=api)

    assert provider.get_order_by_external_id("ord_01") is None
    assert len(sim.calls_to("POST", "/oauth/v1/token")) == 1


def test_no_access_token_at_all_is_permanent_without_calling(
    api: TestClient, sim: DeliverrSimulator
) -> None:
    provider = DeliverrProvider(make_settings(access_token=None), http=api)

    with pytest.raises(Permanent) as failure:
        provider.create_order(make_request())

    assert "DELIVERR_ACCESS_TOKEN" in failure.value.reason
    assert sim.calls == []


def test_a_token_renewal_deliverr_cannot_answer_is_retriable(
    provider: DeliverrProvider, sim: DeliverrSimulator
) -> None:
    sim.expire_access_token()
    sim.fail_next(1, status=401)
    sim.fail_next(1, status=503)

    with pytest.raises(Retriable):
        provider.get_order("1")
