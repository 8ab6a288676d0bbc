"""What Flexport needs beyond Deliverr's journeys, through the whole hub: the SKU map kept in
the database (refreshed on a schedule and on a miss, an unmapped SKU holding the order
flagged), and the events feed read by reconciliation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import col

from hub.db import Database
from hub.fulfilment.skumaps import DatabaseSkuMaps
from hub.jobs.models import JobAttempt
from hub.jobs.scheduler import Scheduler
from hub.types import utcnow
from tests.harness import Hub, make_hub


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, default_provider="flexport")
    yield h
    h.close()


def fire(hub: Hub, scheduler: Scheduler, schedule: str, *, slots_later: int = 0) -> None:
    """Run `schedule` as its firing in the slot `slots_later` hours from now would."""
    found = next(s for s in scheduler.schedules if s.name == schedule)
    assert scheduler.fire(found, utcnow() + timedelta(hours=slots_later))
    hub.drain()


def purchase(hub: Hub, *skus: str) -> str:
    for sku in skus:
        hub.depop.add_product(sku, quantity=3)
        hub.set_stock(sku, 3)
    purchase_id = hub.depop.purchase(*skus)
    hub.drain()
    return purchase_id


def test_an_order_with_a_sku_not_at_flexport_waits_flagged_until_the_product_exists(
    hub: Hub,
) -> None:
    purchase_id = purchase(hub, "SKU-Z")
    order = hub.order("depop", purchase_id)
    assert order["status"] == "confirmed"
    assert order["needs_attention"]
    assert order["attention_reason"] == "SKU not at Flexport: SKU-Z"
    assert order["fulfilment_provider"] is None
    assert hub.flexport.orders == {}
    # The miss re-read the product list before giving up.
    assert hub.flexport.calls_to("GET", "/logistics/api/2024-07/products")

    dsku = hub.flexport.add_product("SKU-Z")
    response = hub.admin("POST", f"/admin/orders/{order['id']}/retry-fulfilment")
    assert response.status_code == 202, response.text
    hub.drain()

    order = hub.order_by_id(order["id"])
    assert order["fulfilment_provider"] == "flexport"
    assert not order["needs_attention"]
    at_flexport = hub.flexport.order_by_external_id(order["id"])
    assert at_flexport is not None
    assert at_flexport["lineItems"] == [{"logisticsSku": dsku, "quantity": 1}]


def test_the_sku_map_lives_in_the_database_and_is_refreshed_on_schedule(hub: Hub) -> None:
    store = DatabaseSkuMaps(hub.db)
    assert store.load("flexport/default") == {}
    scheduler = Scheduler(hub.runtime)
    fire(hub, scheduler, "refresh-sku-maps")
    mapped = dict(store.load("flexport/default"))
    assert mapped["SKU-A"] == hub.flexport.products["SKU-A"]

    # Flexport's catalogue changes: a product gone, one added.
    del hub.flexport.products["SKU-A"]
    hub.flexport.add_product("SKU-NEW")
    fire(hub, scheduler, "refresh-sku-maps", slots_later=1)
    mapped = dict(store.load("flexport/default"))
    assert "SKU-A" not in mapped
    assert mapped["SKU-NEW"] == hub.flexport.products["SKU-NEW"]

    # An order of a mapped SKU needs no read of the product list.
    before = len(hub.flexport.calls_to("GET", "/logistics/api/2024-07/products"))
    purchase(hub, "SKU-NEW")
    assert len(hub.flexport.calls_to("GET", "/logistics/api/2024-07/products")) == before
    assert len(hub.flexport.orders) == 1


def test_a_shipment_whose_webhooks_were_lost_is_read_from_the_events_feed(hub: Hub) -> None:
    purchase_id = purchase(hub, "SKU-A", "SKU-B")
    order = hub.order("depop", purchase_id)
    ref = str(order["fulfilment_ref"])
    scheduler = Scheduler(hub.runtime)
    fire(hub, scheduler, "read-provider-feeds")  # nothing there yet: the cursor stays unset

    hub.flexport.drop_next_webhooks(3)  # Shipment.Shipped twice, Order.Shipped
    hub.flexport.ship(ref, [("SKU-A", 1)], tracking_number="LOST-1")
    hub.flexport.ship(ref, [("SKU-B", 1)], tracking_number="LOST-2")
    hub.drain()
    assert hub.order_by_id(order["id"])["status"] == "confirmed"

    fire(hub, scheduler, "read-provider-feeds", slots_later=1)
    order = hub.order_by_id(order["id"])
    assert order["status"] == "completed"
    assert [s["tracking_numbers"] for s in order["shipments"]] == [["LOST-1"], ["LOST-2"]]
    polls = [j for j in order["jobs"] if j["kind"] == "fulfilment.poll"]
    assert [j["state"] for j in polls] == ["done"]  # three events, one read
    feed = hub.flexport.calls_to("GET", "/logistics/api/2024-07/events")
    # The second run went on from the cursor the first page's Link header gave.
    assert feed[-1].query.get("page_info") == str(len(hub.flexport.events))

    # Another run finds nothing new and reads no order.
    fire(hub, scheduler, "read-provider-feeds", slots_later=2)
    order = hub.order_by_id(order["id"])
    assert len([j for j in order["jobs"] if j["kind"] == "fulfilment.poll"]) == 1


def test_a_problems_detail_is_kept_on_the_job_attempt_it_failed(hub: Hub) -> None:
    hub.flexport.fail_next_with_problem(503, "warehouse system maintenance")
    purchase_id = purchase(hub, "SKU-A")
    order = hub.order("depop", purchase_id)
    (route,) = [j for j in order["jobs"] if j["kind"] == "fulfilment.route"]
    assert (route["state"], route["attempts"]) == ("done", 2)
    with hub.db.reader() as session:
        attempts = session.scalars(
            select(JobAttempt)
            .where(col(JobAttempt.job_id) == route["id"])
            .order_by(col(JobAttempt.attempt))
        ).all()
    assert [(a.outcome, a.status_code) for a in attempts] == [("retry", 503), ("ok", None)]
    assert "Service Unavailable: warehouse system maintenance" in (attempts[0].error or "")


def test_a_carrier_reaches_each_channel_under_the_name_configured_for_it(
    database: Database,
) -> None:
    hub = make_hub(
        database, default_provider="flexport", carrier_names={"depop": {" dhl ": "DHL Express"}}
    )
    try:
        purchase_id = purchase(hub, "SKU-A")
        ref = str(hub.order("depop", purchase_id)["fulfilment_ref"])
        hub.flexport.ship(ref, carrier="DHL", tracking_number="JD1")
        hub.drain()
        order = hub.order("depop", purchase_id)
        assert order["status"] == "completed"
        assert order["shipments"][0]["carrier"] == "DHL"  # the hub keeps Flexport's words
        (parcel,) = hub.depop.orders[purchase_id]["line_items"][:1]
        marked = hub.depop.calls_to("POST", f"/api/v1/orders/{purchase_id}/parcels/")
        assert [c.json for c in marked] == [{"tracking_number": "JD1", "carrier": "DHL Express"}]
        assert parcel["parcel_id"] in marked[0].path
    finally:
        hub.close()
