"""Two Depop shops and two topi accounts side by side: each connection its own orders, its own
webhook URL and secrets, its own reconciliation; one SKU's stock shared by all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.depop.simulator import DepopSimulator
from connectors.simulation import SimulatorBase
from connectors.topi.simulator import TopiSimulator
from hub.connections.service import plain_values
from hub.db import Database
from hub.jobs.scheduler import Scheduler
from hub.jobs.schedules import slot_of
from hub.jobs.worker import run_one, worker_name
from hub.types import utcnow
from tests.harness import Hub, make_hub

SKU = "TEE-RED-M"


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database)
    yield h
    h.close()


def add_account(hub: Hub, system: str, name: str) -> SimulatorBase:
    """A second account on `system`: its simulator, and the connection the admin API made."""
    simulator, settings = hub.wired.add_account(system, name)
    response = hub.admin(
        "POST",
        "/admin/connections",
        json={"system": system, "name": name, "settings": plain_values(settings)},
    )
    assert response.status_code == 201, response.text
    assert response.json()["active"] is True
    return simulator


def shop_b(hub: Hub) -> DepopSimulator:
    simulator = add_account(hub, "depop", "shop-b")
    assert isinstance(simulator, DepopSimulator)
    return simulator


def orders(hub: Hub, **params: Any) -> list[dict[str, Any]]:
    response = hub.admin("GET", "/admin/orders", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def test_the_same_order_id_on_two_shops_makes_two_orders(hub: Hub) -> None:
    b = shop_b(hub)
    hub.depop.add_product(SKU, quantity=3)
    b.add_product(SKU, quantity=3)
    hub.set_stock(SKU, 10)

    on_a = hub.depop.purchase(SKU)
    on_b = b.purchase(SKU)
    hub.drain()

    assert on_a == on_b  # each shop numbers its own purchases
    found = orders(hub, channel="depop", channel_order_id=on_a)
    assert sorted(o["connection"] for o in found) == ["depop/default", "depop/shop-b"]
    assert {o["status"] for o in found} == {"confirmed"}
    only_b = orders(hub, connection="depop/shop-b")
    assert [o["channel_order_id"] for o in only_b] == [on_b]
    # Each order's jobs and events are its connection's.
    jobs = hub.admin("GET", "/admin/jobs", params={"connection": "depop/shop-b"}).json()["data"]
    assert jobs and all(j["connection"] == "depop/shop-b" for j in jobs)
    events = hub.admin("GET", "/admin/events", params={"connection": "depop/shop-b"}).json()
    assert [e["connection"] for e in events["data"]] == ["depop/shop-b"]


def test_a_webhook_signed_with_shop_a_secret_on_shop_b_url_is_refused(hub: Hub) -> None:
    shop_b(hub)
    hub.depop.add_product(SKU, quantity=1)
    hub.set_stock(SKU, 5)
    # Shop A's simulator signs with shop A's secret; aimed at shop B's URL.
    hub.depop.webhook_url = f"{hub.wired.hub_url}/webhooks/depop/shop-b"
    purchase = hub.depop.purchase(SKU)
    hub.drain()

    assert orders(hub, channel_order_id=purchase) == []
    refused = hub.admin("GET", "/admin/webhooks/deliveries", params={"outcome": "rejected"}).json()[
        "data"
    ]
    assert [(d["connection"], d["channel"]) for d in refused] == [("depop/shop-b", "depop")]


def test_an_unknown_or_disabled_connection_url_answers_404(hub: Hub) -> None:
    b = shop_b(hub)
    missing = hub.client.post("/webhooks/depop/nowhere", content=b"{}")
    assert missing.status_code == 404
    assert missing.json()["error"] == "connection_not_configured"

    off = hub.admin("PATCH", "/admin/connections/depop/shop-b", json={"enabled": False})
    assert off.status_code == 200 and off.json()["active"] is False
    b.add_product(SKU, quantity=1)
    b.purchase(SKU)  # its webhook now meets a 404
    hub.drain()
    assert orders(hub, connection="depop/shop-b") == []


def test_a_sale_on_shop_a_marks_the_sku_sold_on_shop_b(hub: Hub) -> None:
    b = shop_b(hub)
    hub.depop.add_product(SKU, quantity=1)
    b.add_product(SKU, quantity=1)
    hub.set_stock(SKU, 1)
    hub.drain()

    hub.depop.purchase(SKU)
    hub.drain()

    assert hub.stock(SKU)["available"] == 0
    assert (b.products[SKU]["status"], b.products[SKU]["quantity"]) == ("STATUS_MARKED_AS_SOLD", 0)
    # Shop A sold it: it is not told again.
    assert hub.depop.products[SKU]["status"] == "STATUS_PURCHASED"


def test_a_connection_that_opts_out_of_a_sku_is_left_alone(hub: Hub) -> None:
    b = shop_b(hub)
    hub.depop.add_product(SKU, quantity=2)
    b.add_product(SKU, quantity=2)
    excluded = hub.admin("PUT", f"/admin/connections/depop/shop-b/excluded-skus/{SKU}")
    assert excluded.status_code == 200 and excluded.json()["skus"] == [SKU]
    before = len(b.calls)

    hub.set_stock(SKU, 1)
    hub.depop.purchase(SKU)
    hub.drain()

    assert hub.stock(SKU)["available"] == 0
    writes = [c for c in b.calls[before:] if c.method in ("PUT", "PATCH", "POST")]
    assert writes == []
    assert b.products[SKU]["quantity"] == 2


def test_reconciling_one_shop_never_touches_the_other(hub: Hub) -> None:
    b = shop_b(hub)
    hub.depop.add_product(SKU, quantity=3)
    b.add_product(SKU, quantity=3)
    hub.set_stock(SKU, 10)
    hub.depop.drop_next_webhooks(1)
    b.drop_next_webhooks(1)
    lost_a = hub.depop.purchase(SKU)
    lost_b = b.purchase(SKU)
    hub.drain()
    calls_on_a = len(hub.depop.calls)

    started = hub.admin("POST", "/admin/reconcile/depop/shop-b", json={})
    assert started.status_code == 202, started.text
    hub.drain()

    run = hub.admin("GET", f"/admin/reconcile/runs/{started.json()['run_id']}").json()
    assert (run["connection"], run["state"], run["created"]) == ("depop/shop-b", "done", 1)
    assert [o["channel_order_id"] for o in orders(hub, connection="depop/shop-b")] == [lost_b]
    assert orders(hub, connection="depop/default") == []
    # Shop A's orders were not read; only its listing heard of the stock shop B's order took.
    asked_a = [c.path for c in hub.depop.calls[calls_on_a:]]
    assert asked_a and all(path.startswith("/api/v1/products/") for path in asked_a), asked_a
    assert lost_a == lost_b


def test_two_topi_accounts_each_take_their_own_orders(hub: Hub) -> None:
    second = add_account(hub, "topi", "austria")
    assert isinstance(second, TopiSimulator)
    hub.set_stock(SKU, 5)

    hub.topi.create_order({SKU: 1}, order_id="T-1")
    second.create_order({SKU: 1}, order_id="T-1")
    hub.drain()

    found = orders(hub, channel="topi", channel_order_id="T-1")
    assert sorted(o["connection"] for o in found) == ["topi/austria", "topi/default"]
    assert {o["status"] for o in found} == {"confirmed"}
    # Each account was told of its own order: accepted there, with its own token.
    for simulator in (hub.topi, second):
        told = [c.path for c in simulator.calls if c.method == "POST" and "/T-1/" in c.path]
        assert any(path.endswith("/accept") for path in told), told
    assert hub.stock(SKU)["reserved"] == 2


def test_a_new_connection_gets_its_own_reconciliation_schedule(database: Database) -> None:
    hub = make_hub(database, reconcile_cron="* * * * *")
    try:
        # A still clock: no minute boundary passes between the two heartbeats.
        moment = utcnow().replace(second=30, microsecond=0)
        scheduler = Scheduler(hub.runtime, clock=lambda: moment)
        assert scheduler.heartbeat()  # leading before the shop exists
        assert "reconcile:depop/shop-b" not in {s.name for s in scheduler.schedules}
        shop_b(hub)

        assert scheduler.heartbeat()
        [schedule] = [s for s in scheduler.schedules if s.name == "reconcile:depop/shop-b"]
        runs = "/admin/reconcile/runs"
        # Nothing is owed from before it existed; its next slot runs it.
        assert hub.admin("GET", runs, params={"connection": "depop/shop-b"}).json()["data"] == []
        assert scheduler.fire(schedule, slot_of(schedule.trigger, moment))
        found = hub.admin("GET", runs, params={"connection": "depop/shop-b"}).json()["data"]
        assert [r["connection"] for r in found] == ["depop/shop-b"]

        hub.admin("PATCH", "/admin/connections/depop/shop-b", json={"enabled": False})
        scheduler.heartbeat()
        assert "reconcile:depop/shop-b" not in {s.name for s in scheduler.schedules}
        assert "reconcile:depop" in {s.name for s in scheduler.schedules}
    finally:
        hub.close()


def test_a_route_retry_asks_the_provider_the_first_attempt_chose(hub: Hub) -> None:
    hub.depop.add_product(SKU, quantity=1)
    hub.set_stock(SKU, 1)
    hub.deliverr.timeout_next_create(1)  # stored at Deliverr, unanswered
    purchase = hub.depop.purchase(SKU)
    name = worker_name()

    def route_jobs() -> list[dict[str, Any]]:
        found = hub.admin("GET", "/admin/jobs", params={"kind": "fulfilment.route"})
        return list(found.json()["data"])

    for _ in range(100):
        if any(j["attempts"] >= 1 and j["state"] == "queued" for j in route_jobs()):
            break
        run_one(hub.runtime, name)
    [job] = route_jobs()
    assert job["payload"]["provider"] == "deliverr/default"
    # Deliverr is switched off before the retry: choosing again would send it to Flexport.
    off = hub.admin("PATCH", "/admin/connections/deliverr/default", json={"enabled": False})
    assert off.status_code == 200
    hub.drain()

    assert hub.flexport.orders == {}
    [job] = route_jobs()
    assert job["state"] == "dead" and "deliverr/default" in job["last_error"]
    hub.admin("PATCH", "/admin/connections/deliverr/default", json={"enabled": True})
    assert hub.admin("POST", f"/admin/jobs/{job['id']}/retry").status_code in (200, 202)
    hub.drain()
    order = hub.order("depop", purchase)
    assert (order["fulfilment_connection"], len(hub.deliverr.orders)) == ("deliverr/default", 1)


def test_a_shop_sharing_its_app_webhook_secret_refuses_another_sellers_order(hub: Hub) -> None:
    """Shops signed in to one Depop app share its webhook secret: the seller id, not the
    signature, tells their webhooks apart."""
    b = shop_b(hub)
    _, settings = hub.wired.add_account("depop", "shop-c")
    values = plain_values(settings)
    assert isinstance(b, DepopSimulator) and values["seller_id"] != b.seller_id
    # Shop C shares shop B's webhook secret, as two shops of one app do.
    values["webhook_secret"] = b.webhook_secret
    made = hub.admin(
        "POST",
        "/admin/connections",
        json={"system": "depop", "name": "shop-c", "settings": values},
    )
    assert made.status_code == 201, made.text
    b.add_product(SKU, quantity=1)
    hub.set_stock(SKU, 1)
    b.webhook_url = f"{hub.wired.hub_url}/webhooks/depop/shop-c"  # B's order, C's URL

    purchase = b.purchase(SKU)
    hub.drain()

    assert orders(hub, channel_order_id=purchase) == []
    failed = hub.admin(
        "GET", "/admin/events", params={"connection": "depop/shop-c", "status": "failed"}
    ).json()["data"]
    assert len(failed) == 1 and f"seller {b.seller_id}" in failed[0]["error"]
