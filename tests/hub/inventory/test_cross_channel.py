"""One stock, several channels, through the whole hub: webhooks in from the simulators, listing
updates and fulfilment out to them, the numbers read through the admin API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.depop.transformers import PRODUCT_ON_SALE as ON_SALE
from hub.config import HubSettings, UntrackedSkuPolicy
from hub.db import Database
from hub.inventory import service as inventory
from hub.inventory.service import LISTING_SYNC
from hub.jobs.worker import run_one
from hub.orders.service import FILL_WAITING, OVERSOLD
from tests.harness import Hub, make_hub
from tests.hub.inventory.factories import new_orders

ALLOW = UntrackedSkuPolicy.ALLOW
SKU = "JACKET-M"
PRODUCTS = "/api/v1/products/by-sku/"


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database)
    yield h
    h.close()


def listed_everywhere(hub: Hub, sku: str, *, depop: int, stock: int) -> None:
    """`sku` listed on Depop (`depop` units) and ABOUT YOU, with `stock` counted at the hub."""
    hub.depop.add_product(sku, quantity=depop)
    hub.aboutyou.add_product(sku)
    hub.set_stock(sku, stock)
    hub.drain()


def jobs(hub: Hub, kind: str, state: str | None = None) -> list[dict[str, Any]]:
    params = {"kind": kind, **({"state": state} if state else {})}
    response = hub.admin("GET", "/admin/jobs", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def deliverr_orders(hub: Hub, *orders: dict[str, Any]) -> list[str]:
    """The hub orders among `orders` that reached Deliverr."""
    return [o["id"] for o in orders if hub.deliverr.order_by_external_id(o["id"]) is not None]


def ship_at_deliverr(hub: Hub, order: dict[str, Any]) -> None:
    hub.deliverr.ship(hub.deliverr_order(order["id"])["orderId"])
    hub.drain()


def depop_product(hub: Hub, sku: str) -> tuple[str, int]:
    product = hub.depop.products[sku]
    return str(product["status"]), int(product["quantity"])


def depop_listing_calls(hub: Hub, sku: str) -> list[str]:
    """The writes the hub made to the Depop listing of `sku` (method and path tail)."""
    path = f"{PRODUCTS}{sku}/"
    return [
        f"{c.method} {c.path.removeprefix(path) or '/'}"
        for c in hub.depop.calls
        if c.path.startswith(path) and c.method in ("PUT", "PATCH", "POST")
    ]


def lost_depop_sale(hub: Hub, sku: str) -> tuple[str, str]:
    """A Depop buyer takes the listing but the webhook is lost for now: (purchase id, event id)."""
    hub.depop.drop_next_webhooks(1)
    purchase_id = hub.depop.purchase(sku)
    return purchase_id, list(hub.depop.sent_events)[-1]


# -- the last unit ------------------------------------------------------------------------------


def test_last_unit_ordered_on_topi_and_depop_at_once_is_shipped_once(hub: Hub) -> None:
    listed_everywhere(hub, SKU, depop=1, stock=1)

    topi_id = hub.topi.create_order({SKU: 1})
    purchase_id = hub.depop.purchase(SKU)
    hub.drain()

    topi, depop = hub.order("topi", topi_id), hub.order("depop", purchase_id)
    routed = deliverr_orders(hub, topi, depop)
    assert len(routed) == 1
    winner, loser = (topi, depop) if routed == [topi["id"]] else (depop, topi)
    ship_at_deliverr(hub, winner)

    assert hub.order_by_id(winner["id"])["status"] == "completed"
    loser = hub.order_by_id(loser["id"])
    if loser["channel"] == "topi":
        assert loser["status"] == "rejected"
        assert hub.topi.order(topi_id)["status"] == "rejected"
    else:
        assert (loser["status"], loser["attention_reason"]) == ("acknowledged", OVERSOLD)
    assert loser["shipments"] == []
    assert hub.stock(SKU) == {"sku": SKU, "on_hand": 0, "reserved": 0, "available": 0}


def test_topi_order_for_a_unit_a_depop_buyer_already_holds_is_rejected_at_topi(
    hub: Hub,
) -> None:
    listed_everywhere(hub, SKU, depop=1, stock=1)
    purchase_id = hub.depop.purchase(SKU)
    hub.drain()

    topi_id = hub.topi.create_order({SKU: 1})
    hub.drain()

    assert hub.order("depop", purchase_id)["status"] == "confirmed"
    topi = hub.order("topi", topi_id)
    assert topi["status"] == "rejected"
    assert hub.topi.order(topi_id)["status"] == "rejected"
    assert deliverr_orders(hub, topi) == []
    assert hub.stock(SKU)["reserved"] == 1


def test_depop_sale_of_a_unit_topi_already_took_is_flagged_oversold_and_not_shipped(
    hub: Hub,
) -> None:
    listed_everywhere(hub, SKU, depop=1, stock=1)
    purchase_id, event_id = lost_depop_sale(hub, SKU)
    topi_id = hub.topi.create_order({SKU: 1})
    hub.drain()  # topi's order takes the unit before the hub hears of the Depop sale

    hub.depop.redeliver(event_id)
    hub.drain()

    depop = hub.order("depop", purchase_id)
    assert (depop["status"], depop["needs_attention"]) == ("acknowledged", True)
    assert depop["attention_reason"] == "oversold: restock or refund"
    topi = hub.order("topi", topi_id)
    assert deliverr_orders(hub, topi, depop) == [topi["id"]]
    assert hub.stock(SKU) == {"sku": SKU, "on_hand": 1, "reserved": 1, "available": 0}


def test_restock_fills_the_oversold_depop_order_which_is_then_routed(hub: Hub) -> None:
    listed_everywhere(hub, SKU, depop=1, stock=1)
    purchase_id, event_id = lost_depop_sale(hub, SKU)
    topi_id = hub.topi.create_order({SKU: 1})
    hub.drain()
    hub.depop.redeliver(event_id)
    hub.drain()

    hub.set_stock(SKU, 2)
    hub.drain()

    depop = hub.order("depop", purchase_id)
    assert (depop["status"], depop["needs_attention"]) == ("confirmed", False)
    assert [h["trigger"] for h in depop["history"]][-3:] == ["unflag", "confirm", "routed"]
    topi = hub.order("topi", topi_id)
    assert deliverr_orders(hub, topi, depop) == [topi["id"], depop["id"]]
    assert hub.stock(SKU) == {"sku": SKU, "on_hand": 2, "reserved": 2, "available": 0}
    # The waiting order took the restocked unit before the listing sync ran (an order's jobs
    # run ahead of bulk work), so Depop never saw the unit relisted: it stays sold out.
    assert depop_product(hub, SKU) == ("STATUS_PURCHASED", 0)


def test_a_restock_goes_to_the_waiting_orders_it_can_fill_and_leaves_the_rest_flagged_once(
    hub: Hub,
) -> None:
    hub.depop.add_product("BOOTS", quantity=3)
    hub.depop.drop_next_webhooks(2)
    pair = hub.depop.purchase("BOOTS", "BOOTS")
    single = hub.depop.purchase("BOOTS")
    hub.set_stock("BOOTS", 0)  # counted after both sales, before the hub heard of them
    hub.drain()
    for event_id in list(hub.depop.sent_events)[-2:]:
        hub.depop.redeliver(event_id)
    hub.drain()

    hub.set_stock("BOOTS", 1)
    hub.drain()

    waiting = hub.order("depop", pair)
    assert (waiting["status"], waiting["attention_reason"]) == ("acknowledged", OVERSOLD)
    assert [h["trigger"] for h in waiting["history"]].count("flag") == 1
    assert hub.order("depop", single)["status"] == "confirmed"
    assert hub.stock("BOOTS") == {"sku": "BOOTS", "on_hand": 1, "reserved": 1, "available": 0}

    hub.set_stock("BOOTS", 1)  # the same count again: nothing came free, nothing to offer
    hub.drain()
    assert [j["state"] for j in jobs(hub, FILL_WAITING)] == ["done"]


def test_full_refund_of_an_oversold_depop_order_cancels_it_and_touches_no_stock(
    hub: Hub,
) -> None:
    listed_everywhere(hub, SKU, depop=1, stock=1)
    purchase_id, event_id = lost_depop_sale(hub, SKU)
    hub.topi.create_order({SKU: 1})
    hub.drain()
    hub.depop.redeliver(event_id)
    hub.drain()

    hub.depop.refund(purchase_id, "25.99", "5.00")
    hub.drain()

    assert hub.order("depop", purchase_id)["status"] == "cancelled"
    assert hub.stock(SKU) == {"sku": SKU, "on_hand": 1, "reserved": 1, "available": 0}


def test_aboutyou_order_without_stock_has_its_items_cancelled_and_is_rejected(hub: Hub) -> None:
    hub.set_stock(SKU, 0)
    ay_id = hub.aboutyou.create_order(SKU, SKU)
    hub.drain()

    order = hub.order("aboutyou", str(ay_id))
    assert order["status"] == "rejected"
    assert not order["needs_attention"]
    assert {item["status"] for item in hub.aboutyou.order(ay_id)["order_items"]} == {"cancelled"}
    assert hub.stock(SKU)["reserved"] == 0


# -- untracked SKUs -----------------------------------------------------------------------------


def test_untracked_skus_policy_is_read_from_hub_untracked_skus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUB_UNTRACKED_SKUS", "reject")
    assert HubSettings().untracked_skus is UntrackedSkuPolicy.REJECT
    monkeypatch.delenv("HUB_UNTRACKED_SKUS")
    assert HubSettings().untracked_skus is UntrackedSkuPolicy.ALLOW


@pytest.mark.parametrize(
    ("policy", "depop_status", "aboutyou_status"),
    [("allow", "confirmed", "confirmed"), ("reject", "acknowledged", "rejected")],
)
def test_an_untracked_sku_sells_freely_or_is_out_of_stock_as_configured(
    database: Database, policy: str, depop_status: str, aboutyou_status: str
) -> None:
    hub = make_hub(database, untracked_skus=policy)
    try:
        hub.depop.add_product("UNCOUNTED", quantity=3)
        purchase_id = hub.depop.purchase("UNCOUNTED")
        ay_id = hub.aboutyou.create_order("UNCOUNTED")
        hub.drain()

        depop = hub.order("depop", purchase_id)
        assert depop["status"] == depop_status
        assert depop["needs_attention"] is (policy == "reject")
        assert hub.order("aboutyou", str(ay_id))["status"] == aboutyou_status
        assert hub.admin("GET", "/admin/stock/UNCOUNTED").status_code == 404
    finally:
        hub.close()


# -- listing sync -------------------------------------------------------------------------------


def test_topi_sale_of_the_last_unit_marks_the_depop_listing_sold(hub: Hub) -> None:
    listed_everywhere(hub, SKU, depop=1, stock=1)

    hub.topi.create_order({SKU: 1})
    hub.drain()

    assert depop_product(hub, SKU) == ("STATUS_MARKED_AS_SOLD", 0)
    assert hub.aboutyou.stocks[SKU] == 0
    assert jobs(hub, LISTING_SYNC, "dead") == []


def test_depop_sale_updates_the_other_channels_but_depop_is_not_told_again(hub: Hub) -> None:
    listed_everywhere(hub, SKU, depop=3, stock=3)
    before = depop_listing_calls(hub, SKU)

    hub.depop.purchase(SKU)
    hub.drain()

    assert hub.stock(SKU)["available"] == 2
    assert hub.aboutyou.stocks[SKU] == 2
    assert depop_listing_calls(hub, SKU) == before
    [sync] = [j for j in jobs(hub, LISTING_SYNC) if j["payload"]["skip_channel"] == "depop/default"]
    assert sync["state"] == "done"


def test_a_connection_that_opted_out_of_a_sku_is_left_alone_and_the_others_are_told(
    hub: Hub,
) -> None:
    listed_everywhere(hub, SKU, depop=3, stock=3)
    opted = hub.admin("PUT", f"/admin/connections/aboutyou/default/excluded-skus/{SKU}")
    assert opted.status_code == 200, opted.text

    hub.topi.create_order({SKU: 1})
    hub.drain()

    assert hub.stock(SKU)["available"] == 2
    assert depop_product(hub, SKU) == (ON_SALE, 2)
    assert hub.aboutyou.stocks[SKU] == 3  # as listed before the sale: not told
    assert [j["state"] for j in jobs(hub, LISTING_SYNC) if j["payload"]["sku"] == SKU][-1:] == [
        "done"
    ]


def test_changes_to_a_sku_before_the_worker_runs_make_one_listing_job_per_sku(hub: Hub) -> None:
    hub.depop.add_product(SKU, quantity=1)
    hub.depop.add_product("SCARF", quantity=1)
    for on_hand in (5, 7, 4):
        hub.set_stock(SKU, on_hand)
    hub.set_stock("SCARF", 2)

    queued = jobs(hub, LISTING_SYNC, "queued")
    assert sorted(j["payload"]["sku"] for j in queued) == sorted(["SCARF", SKU])

    hub.drain()
    assert depop_product(hub, SKU) == (ON_SALE, 4)
    assert depop_product(hub, "SCARF") == (ON_SALE, 2)


def test_a_sale_and_a_restock_coalesced_into_one_job_tell_every_channel(hub: Hub) -> None:
    listed_everywhere(hub, SKU, depop=5, stock=5)
    hub.depop.purchase(SKU)  # Depop knows of this sale, but not of the restock that follows
    hub.set_stock(SKU, 9)
    hub.drain()

    [_, merged] = jobs(hub, LISTING_SYNC)
    assert merged["payload"]["skip_channel"] is None
    assert depop_product(hub, SKU) == (ON_SALE, 8)


def test_restock_after_a_sell_out_relists_on_depop_with_the_available_quantity(hub: Hub) -> None:
    listed_everywhere(hub, SKU, depop=1, stock=1)
    hub.topi.create_order({SKU: 1})
    hub.drain()
    assert depop_product(hub, SKU) == ("STATUS_MARKED_AS_SOLD", 0)

    hub.set_stock(SKU, 4)  # one of them still held by the topi order
    hub.drain()

    assert depop_product(hub, SKU) == (ON_SALE, 3)
    assert hub.aboutyou.stocks[SKU] == 3


def test_cancelled_topi_order_gives_its_unit_back_to_every_channel(hub: Hub) -> None:
    listed_everywhere(hub, SKU, depop=1, stock=1)
    topi_id = hub.topi.create_order({SKU: 1})
    hub.drain()

    hub.topi.cancel_order(topi_id)
    hub.drain()

    assert hub.order("topi", topi_id)["status"] == "cancelled"
    assert hub.stock(SKU) == {"sku": SKU, "on_hand": 1, "reserved": 0, "available": 1}
    assert depop_product(hub, SKU) == (ON_SALE, 1)
    assert hub.aboutyou.stocks[SKU] == 1


def test_shipping_reserved_units_changes_no_listing(hub: Hub) -> None:
    listed_everywhere(hub, SKU, depop=3, stock=3)
    purchase_id = hub.depop.purchase(SKU)
    hub.drain()
    syncs = len(jobs(hub, LISTING_SYNC))

    ship_at_deliverr(hub, hub.order("depop", purchase_id))

    assert hub.stock(SKU) == {"sku": SKU, "on_hand": 2, "reserved": 0, "available": 2}
    assert len(jobs(hub, LISTING_SYNC)) == syncs


def test_a_sku_a_channel_does_not_list_is_skipped_and_the_sync_succeeds(hub: Hub) -> None:
    hub.depop.add_product(SKU, quantity=1)  # on Depop only: ABOUT YOU answers not_found

    hub.set_stock(SKU, 6)
    hub.drain()

    assert [j["state"] for j in jobs(hub, LISTING_SYNC)] == ["done"]
    assert depop_product(hub, SKU) == (ON_SALE, 6)
    assert SKU not in hub.aboutyou.stocks


def test_a_channel_outage_retries_the_listing_sync_until_it_lands(hub: Hub) -> None:
    listed_everywhere(hub, SKU, depop=2, stock=2)
    hub.depop.fail_next(2, 503)

    hub.set_stock(SKU, 5)
    hub.drain()

    [*_, last] = jobs(hub, LISTING_SYNC)
    assert (last["state"], last["attempts"]) == ("done", 3)
    assert depop_product(hub, SKU) == (ON_SALE, 5)


def test_a_waiting_listing_job_is_not_claimed_while_a_change_it_must_see_is_uncommitted(
    postgres_database: Database,
) -> None:
    hub = make_hub(postgres_database)
    try:
        hub.depop.add_product(SKU, quantity=5)
        hub.set_stock(SKU, 5)  # queues the SKU's listing job
        [order_id] = new_orders(hub.db, 1)
        claimed: list[bool] = []

        with hub.db.transaction() as session:
            # The reservation joins the waiting job; until it commits, a worker must not run
            # that job, or the job would read 5 and no later job would carry the 4.
            assert inventory.reserve(session, order_id, [(SKU, 1)], policy=ALLOW).ok
            worker = threading.Thread(
                target=lambda: claimed.append(run_one(hub.runtime, "other-worker"))
            )
            worker.start()
            worker.join()

        assert claimed == [False]
        hub.drain()
        assert depop_product(hub, SKU) == (ON_SALE, 4)
        assert len(jobs(hub, LISTING_SYNC)) == 1
    finally:
        hub.close()
