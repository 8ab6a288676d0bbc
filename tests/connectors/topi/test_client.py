"""The topi client against the simulator: OAuth2, transitions, shipments, reads, errors."""

from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import anyio
import pytest
from fastapi.testclient import TestClient

from connectors.base import (
    FlowNotSupported,
    NeedsInput,
    OrderView,
    Permanent,
    Retriable,
    SalesChannel,
)
from connectors.topi import TopiChannel
from connectors.topi.simulator import API_HOST, SimLine, TopiSimulator
from tests.connectors.topi.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    WEBHOOK_SECRET,
    FakeClock,
    make_settings,
    shipment,
    view_of,
)


def paths(sim: TopiSimulator) -> list[tuple[str, str, int]]:
    return [(c.method, c.path, c.status) for c in sim.calls]


def test_channel_is_a_sales_channel_named_topi(channel: TopiChannel) -> None:
    assert isinstance(channel, SalesChannel)
    assert channel.name == "topi"


def test_token_request_uses_basic_auth_client_credentials_and_scope_client(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = sim.create_order({"A": 1})
    channel.fetch_order(oid)
    token_call = sim.calls_to("POST", "/oauth2/token")[0]
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert token_call.headers["authorization"] == f"Basic {expected}"
    assert parse_qs(token_call.json if isinstance(token_call.json, str) else "") == {
        "grant_type": ["client_credentials"],
        "scope": ["client"],
    }


def test_token_is_cached_across_calls(sim: TopiSimulator, channel: TopiChannel) -> None:
    oid = sim.create_order({"A": 1})
    for _ in range(3):
        channel.fetch_order(oid)
    assert sim.issued_tokens == 1


def test_token_is_renewed_before_it_expires(
    sim: TopiSimulator, channel: TopiChannel, clock: FakeClock
) -> None:
    oid = sim.create_order({"A": 1})
    channel.fetch_order(oid)
    clock.advance(7200 - 301)
    channel.fetch_order(oid)
    assert sim.issued_tokens == 1
    clock.advance(2)  # inside the renewal margin, before topi's expiry
    channel.fetch_order(oid)
    assert sim.issued_tokens == 2
    assert all(status == 200 for _, _, status in paths(sim))


def test_token_that_expires_mid_run_is_renewed_and_the_call_succeeds(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = sim.create_order({"A": 1})
    order = channel.fetch_order(oid)
    sim.expire_tokens()
    channel.acknowledge(view_of(order))
    assert sim.order(oid)["status"] == "acknowledged"
    assert paths(sim)[-3:] == [
        ("POST", f"/v1/orders/{oid}/acknowledge", 401),
        ("POST", "/oauth2/token", 200),
        ("POST", f"/v1/orders/{oid}/acknowledge", 200),
    ]


def test_wrong_client_secret_is_permanent_and_names_the_settings(http: TestClient) -> None:
    channel = TopiChannel(make_settings(client_secret="wrong"), http=http)
    with pytest.raises(Permanent) as caught:
        channel.fetch_order("739b63c2")
    assert "TOPI_CLIENT_ID" in caught.value.reason
    assert "TOPI_CLIENT_SECRET" in caught.value.reason


def test_401_after_renewal_is_permanent(sim: TopiSimulator, http: TestClient) -> None:
    oid = sim.create_order({"A": 1})
    sim.token_ttl = 0  # every token is dead on arrival
    channel = TopiChannel(make_settings(), http=http)
    with pytest.raises(Permanent) as caught:
        channel.fetch_order(oid)
    assert caught.value.code == "unauthorized"
    assert "TOPI_CLIENT_SECRET" in caught.value.reason
    assert sim.issued_tokens == 2


def test_unconfigured_channel_refuses_calls(http: TestClient) -> None:
    settings = make_settings(client_id=None, client_secret=None)
    assert not settings.configured
    with pytest.raises(Permanent):
        TopiChannel(settings, http=http).fetch_order("abc")


def test_acknowledge_then_accept_moves_the_order_to_confirmed(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = sim.create_order({"A": 1})
    view = view_of(channel.fetch_order(oid))
    channel.acknowledge(view)
    assert sim.order(oid)["status"] == "acknowledged"
    channel.accept(view)
    assert sim.order(oid)["status"] == "confirmed"


def test_accept_straight_from_created_is_allowed(sim: TopiSimulator, channel: TopiChannel) -> None:
    oid = sim.create_order({"A": 1})
    channel.accept(view_of(channel.fetch_order(oid)))
    assert sim.order(oid)["status"] == "confirmed"


def test_repeated_acknowledge_succeeds_without_changing_anything(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = sim.create_order({"A": 1})
    view = view_of(channel.fetch_order(oid))
    channel.acknowledge(view)
    channel.acknowledge(view)
    assert sim.order(oid)["status"] == "acknowledged"
    assert sim.calls_to("POST", f"/v1/orders/{oid}/acknowledge")[-1].status == 422


def test_accept_whose_answer_was_lost_succeeds_on_retry(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = sim.create_order({"A": 1})
    view = view_of(channel.fetch_order(oid))
    sim.timeout_next(1, after_processing=True)
    with pytest.raises(Retriable):
        channel.accept(view)
    channel.accept(view)
    assert sim.order(oid)["status"] == "confirmed"


def test_reject_moves_the_order_to_rejected_and_a_retry_is_harmless(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = sim.create_order({"A": 1})
    view = view_of(channel.fetch_order(oid))
    channel.reject(view, "unknown SKU")
    channel.reject(view, "unknown SKU")
    assert sim.order(oid)["status"] == "rejected"


def test_reject_after_confirmation_is_permanent(sim: TopiSimulator, channel: TopiChannel) -> None:
    oid = sim.create_order({"A": 1})
    view = view_of(channel.fetch_order(oid))
    channel.accept(view)
    with pytest.raises(Permanent) as caught:
        channel.reject(view, "out of stock")
    assert "confirmed" in caught.value.reason
    assert sim.order(oid)["status"] == "confirmed"


def test_accepting_a_canceled_order_is_permanent(sim: TopiSimulator, channel: TopiChannel) -> None:
    oid = sim.create_order({"A": 1})
    view = view_of(channel.fetch_order(oid))
    sim.cancel_order(oid)
    with pytest.raises(Permanent) as caught:
        channel.accept(view)
    assert "canceled" in caught.value.reason


def test_unknown_order_is_permanent_with_topis_message(channel: TopiChannel) -> None:
    with pytest.raises(Permanent) as caught:
        channel.fetch_order("00000000-0000-0000-0000-000000000000")
    assert caught.value.code == "not_found"
    assert "not found" in caught.value.reason


def test_order_id_outside_topis_pattern_is_refused_before_a_call(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    with pytest.raises(Permanent):
        channel.fetch_order("../v1/shipment")
    assert sim.calls == []


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_rate_limits_are_retriable(
    sim: TopiSimulator, channel: TopiChannel, status: int
) -> None:
    oid = sim.create_order({"A": 1})
    channel.fetch_order(oid)
    sim.fail_next(1, status=status)
    with pytest.raises(Retriable):
        channel.fetch_order(oid)


def test_fetch_order_reads_prices_and_rental_contracts(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = sim.create_order([SimLine("A", 2, unit_price=99900), SimLine("B", 1, "pay_now", 1500)])
    order = channel.fetch_order(oid)
    assert [(line.sku, line.quantity, str(line.unit_price)) for line in order.lines] == [
        ("A", 2, "999.00"),
        ("B", 1, "15.00"),
    ]
    assert str(order.total_amount) == "2013.00"
    assert [line.attributes["serial_required"] for line in order.lines] == [True, False]
    assert order.shipping_service == "standard"


def test_rent_lines_carry_their_monthly_price_and_term(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = sim.create_order([SimLine("A", 1, unit_price=119000), SimLine("B", 1, "pay_now")])
    rented, bought = channel.fetch_order(oid).lines
    monthly = sim.order(oid)["order_lines"][0]["monthly_price"]["gross"]
    assert rented.attributes["monthly_price"] == str(Decimal(monthly) / 100)
    assert Decimal(rented.attributes["monthly_price"]) == Decimal("99.16")
    assert rented.attributes["duration_months"] == 12
    assert (bought.attributes["monthly_price"], bought.attributes["duration_months"]) == (
        None,
        None,
    )


def test_a_unit_bought_outright_with_a_rent_option_needs_a_serial(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = sim.create_order(
        [SimLine("A", 1, "pay_now", rent_option=True), SimLine("B", 1, "pay_now")]
    )
    assert [line.attributes["serial_required"] for line in channel.fetch_order(oid).lines] == [
        True,
        False,
    ]


def test_without_a_configured_sku_source_the_orders_own_source_names_the_sku() -> None:
    sap = TopiSimulator(CLIENT_ID, CLIENT_SECRET, WEBHOOK_SECRET, product_reference_source="sap")
    with TestClient(sap.app, base_url=API_HOST) as http:
        channel = TopiChannel(make_settings(), http=http)
        assert channel.settings.sku_source is None
        oid = sap.create_order([SimLine("LAP-1", 2, "pay_now", source="sap")])
        order = channel.fetch_order(oid)
        assert [(line.sku, line.quantity) for line in order.lines] == [("LAP-1", 2)]
        channel.accept(view_of(order))
        channel.push_tracking(view_of(order, (shipment("s1", ("LAP-1", 2, ())),)), "s1")
        [sent] = sap.calls_to("POST", "/v1/shipment")
        assert {e["seller_product_reference"]["source"] for e in sent.json["serial_numbers"]} == {
            "sap"
        }


def test_a_configured_sku_source_wins_over_the_orders_own(
    sim: TopiSimulator, http: TestClient
) -> None:
    oid = sim.create_order([SimLine("A", 1, source="ean")])
    order = TopiChannel(make_settings(sku_source="ean"), http=http).fetch_order(oid)
    assert [line.sku for line in order.lines] == ["A"]
    unmapped = TopiChannel(make_settings(), http=http).fetch_order(oid)
    assert [line.sku for line in unmapped.lines] == [None]
    assert order.shipping_address is not None
    assert order.shipping_address.name == "Felix Wolf"


def test_list_orders_reads_every_page_within_the_window(
    sim: TopiSimulator, channel: TopiChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectors.topi.client.PAGE_SIZE", 2)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    ids = [sim.create_order({"A": 1}, created_at=start + timedelta(hours=h)) for h in range(6)]
    listed = list(channel.list_orders(start + timedelta(hours=1), start + timedelta(hours=5)))
    assert [o.channel_order_id for o in listed] == ids[1:5]
    assert len(sim.calls_to("GET", "/v1/orders/paginated")) == 2


def test_update_listing_is_not_a_topi_flow(channel: TopiChannel) -> None:
    with pytest.raises(FlowNotSupported):
        channel.update_listing("A", 3)


def _confirmed(sim: TopiSimulator, channel: TopiChannel, *lines: SimLine) -> str:
    oid = sim.create_order(list(lines))
    channel.accept(view_of(channel.fetch_order(oid)))
    return oid


def test_shipment_reports_one_entry_per_unit_with_serials_and_tracking_url(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = _confirmed(sim, channel, SimLine("A", 2), SimLine("B", 1, "pay_now"))
    view = view_of(
        channel.fetch_order(oid), (shipment("s1", ("A", 2, ("SN-1", "SN-2")), ("B", 1, ())),)
    )
    channel.push_tracking(view, "s1")
    body = sim.calls_to("POST", "/v1/shipment")[-1].json
    assert body == {
        "order_id": oid,
        "serial_numbers": [
            {"seller_product_reference": {"source": "sku", "reference": "A"}, "serial_number": s}
            for s in ("SN-1", "SN-2")
        ]
        + [{"seller_product_reference": {"source": "sku", "reference": "B"}, "serial_number": ""}],
        "tracking_url": "https://track.example/1Z999",
        "metadata": {"tracking_number": "1Z999", "carrier": "UPS"},
    }
    assert sim.order(oid)["status"] == "completed"


def test_shipment_retried_after_a_lost_answer_is_not_sent_twice(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = _confirmed(sim, channel, SimLine("A", 2, "pay_now"))
    view = view_of(channel.fetch_order(oid), (shipment("s1", ("A", 1, ())),))
    channel.push_tracking(view, "s1")
    # The hub never learnt of that success (pushed_to_channel is still False) and retries.
    channel.push_tracking(view, "s1")
    assert len(sim.calls_to("POST", "/v1/shipment")) == 1
    assert sim.order(oid)["status"] == "partially_fulfilled"


def test_shipment_whose_lookup_timed_out_is_sent_on_retry(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = _confirmed(sim, channel, SimLine("A", 1, "pay_now"))
    view = view_of(channel.fetch_order(oid), (shipment("s1", ("A", 1, ())),))
    sim.timeout_next(1, after_processing=False)
    with pytest.raises(Retriable):
        channel.push_tracking(view, "s1")
    channel.push_tracking(view, "s1")
    assert [c.status for c in sim.calls_to("POST", "/v1/shipment")] == [200]
    assert sim.order(oid)["status"] == "completed"


def test_rental_unit_without_serial_needs_input_and_is_not_sent(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = _confirmed(sim, channel, SimLine("A", 2, "rent"), SimLine("B", 1, "pay_now"))
    view = view_of(channel.fetch_order(oid), (shipment("s1", ("A", 2, ("SN-1",)), ("B", 1, ())),))
    with pytest.raises(NeedsInput) as caught:
        channel.push_tracking(view, "s1")
    assert caught.value.code == "serial_number_missing"
    assert caught.value.reason.startswith("serial number needed for 1 x A in shipment s1")
    assert sim.calls_to("POST", "/v1/shipment") == []

    # Once a person has entered the missing serial, the same call sends the shipment.
    given = view_of(
        channel.fetch_order(oid), (shipment("s1", ("A", 2, ("SN-1", "SN-2")), ("B", 1, ())),)
    )
    channel.push_tracking(given, "s1")
    assert sim.order(oid)["status"] == "completed"


def test_bought_unit_with_a_rent_option_needs_input_too(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = _confirmed(sim, channel, SimLine("A", 1, "pay_now", rent_option=True))
    view = view_of(channel.fetch_order(oid), (shipment("s1", ("A", 1, ())),))
    with pytest.raises(NeedsInput, match="serial number needed for 1 x A"):
        channel.push_tracking(view, "s1")
    assert sim.calls_to("POST", "/v1/shipment") == []


def test_shipment_of_more_units_than_ordered_is_refused_by_topi(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = _confirmed(sim, channel, SimLine("A", 1, "pay_now"))
    view = view_of(channel.fetch_order(oid), (shipment("s1", ("A", 2, ())),))
    with pytest.raises(Permanent) as caught:
        channel.push_tracking(view, "s1")
    assert "shipped once" in caught.value.reason
    assert sim.order(oid)["status"] == "confirmed"


def test_shipment_of_an_unconfirmed_order_is_refused(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = sim.create_order([SimLine("A", 1, "pay_now")])
    view = view_of(channel.fetch_order(oid), (shipment("s1", ("A", 1, ())),))
    with pytest.raises(Permanent):
        channel.push_tracking(view, "s1")


def test_unknown_shipment_id_is_permanent(sim: TopiSimulator, channel: TopiChannel) -> None:
    oid = _confirmed(sim, channel, SimLine("A", 1))
    with pytest.raises(Permanent):
        channel.push_tracking(view_of(channel.fetch_order(oid)), "nope")


def test_simulator_refuses_a_unit_reported_twice_and_a_missing_serial(
    sim: TopiSimulator, http: TestClient, channel: TopiChannel
) -> None:
    oid = _confirmed(sim, channel, SimLine("A", 1, "rent"), SimLine("B", 1, "pay_now"))
    token = channel.client.access_token()
    headers = {"Authorization": f"Bearer {token}"}

    def entry(sku: str, serial: str) -> dict[str, object]:
        return {
            "seller_product_reference": {"source": "sku", "reference": sku},
            "serial_number": serial,
        }

    missing_serial = http.post(
        "/v1/shipment",
        json={"order_id": oid, "serial_numbers": [entry("A", "")]},
        headers=headers,
    )
    assert missing_serial.status_code == 400
    assert missing_serial.json()["name"] == "bad_request"
    twice = http.post(
        "/v1/shipment",
        json={"order_id": oid, "serial_numbers": [entry("B", ""), entry("B", "")]},
        headers=headers,
    )
    assert twice.status_code == 400
    assert sim.order(oid)["status"] == "confirmed"
    unauthenticated = http.post("/v1/shipment", json={"order_id": oid, "serial_numbers": []})
    assert unauthenticated.status_code == 401


def test_simulator_token_endpoint_refuses_other_grants_and_scopes(http: TestClient) -> None:
    url = "https://identity.topi.eu/oauth2/token"
    auth = (CLIENT_ID, CLIENT_SECRET)
    answer = http.post(url, data={"grant_type": "password", "scope": "client"}, auth=auth)
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"
    unscoped = http.post(url, data={"grant_type": "client_credentials"}, auth=auth)
    assert unscoped.status_code == 400
    assert unscoped.json()["error"] == "invalid_scope"


def test_cancel_names_the_steps_topi_leaves_to_a_person(channel: TopiChannel) -> None:
    view = OrderView("hub-1", "topi", "739b63c2", "EUR", lines=(), shipments=())
    with pytest.raises(FlowNotSupported) as caught:
        channel.cancel(view, "customer asked")
    reason = caught.value.reason
    assert "739b63c2" in reason
    assert "reject it instead" in reason
    assert "topi contact" in reason
    assert "order.canceled" in reason
    assert "dashboard" not in reason  # topi documents no seller dashboard cancel


def test_reject_sends_no_body_because_topi_defines_none(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = sim.create_order({"A": 1})
    channel.reject(view_of(channel.fetch_order(oid)), "out of stock")
    [call] = sim.calls_to("POST", f"/v1/orders/{oid}/reject")
    assert call.json is None
    assert "content-type" not in call.headers


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"temporary": True}),
        (422, {"timeout": True}),
        (425, None),
        (408, None),
    ],
)
def test_topis_temporary_faults_are_retriable(
    sim: TopiSimulator, channel: TopiChannel, status: int, body: dict[str, bool] | None
) -> None:
    oid = sim.create_order({"A": 1})
    channel.fetch_order(oid)
    goa = {"name": "x", "id": "1", "message": "try later", "temporary": False, "timeout": False}
    sim.fail_next(1, status=status, body={**goa, "fault": False, **body} if body else None)
    with pytest.raises(Retriable):
        channel.fetch_order(oid)


def test_a_call_past_its_deadline_is_retriable(sim: TopiSimulator) -> None:
    oid = sim.create_order({"A": 1})
    release = threading.Event()

    async def stalling_topi(scope: Any, receive: Any, send: Any) -> None:
        """topi that holds every request until released, or for 5 s."""
        if scope["type"] == "http":
            await anyio.to_thread.run_sync(release.wait, 5)
        await sim.app(scope, receive, send)

    # Not entered as a context: each request then runs on its own event loop, so the request
    # the channel gave up on finishes by itself instead of holding a shared one open.
    http = TestClient(stalling_topi, base_url=API_HOST)
    channel = TopiChannel(make_settings(call_deadline_seconds=0.3), http=http)
    started = time.monotonic()
    try:
        with pytest.raises(Retriable, match="deadline"):
            channel.fetch_order(oid)
        assert time.monotonic() - started < 2
    finally:
        release.set()


def test_simulator_control_routes_drive_orders(sim: TopiSimulator) -> None:
    with TestClient(sim.app, base_url=API_HOST) as control:
        created = control.post("/_sim/orders", json={"lines": [{"sku": "A", "quantity": 2}]})
        oid = created.json()["id"]
        assert control.post(f"/_sim/orders/{oid}/cancel").status_code == 200
        assert control.post(f"/_sim/orders/{oid}/cancel").status_code == 422
        assert control.post("/_sim/expire-tokens").status_code == 200
    assert sim.order(oid)["status"] == "canceled"
    assert sim.calls == []


def test_worker_threads_sharing_the_channel_fetch_one_token(
    sim: TopiSimulator, channel: TopiChannel
) -> None:
    oid = sim.create_order({"A": 1})
    with ThreadPoolExecutor(max_workers=8) as pool:
        orders = list(pool.map(lambda _: channel.fetch_order(oid), range(16)))
    assert {o.channel_order_id for o in orders} == {oid}
    assert sim.issued_tokens == 1
