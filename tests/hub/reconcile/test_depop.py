"""Depop reconciliation: what the webhooks missed is found by listing the orders, and the hub's
orders are brought in line with Depop's through the same intake the webhooks use."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from click.testing import CliRunner

from hub import wiring
from hub.cli import main
from tests.harness import Hub
from tests.hub.reconcile.support import kinds, reconcile

SKU = "TEE-RED-L"


def list_and_stock(hub: Hub, sku: str = SKU, stock: int = 3) -> None:
    hub.depop.add_product(sku, quantity=stock)
    hub.set_stock(sku, stock)
    hub.drain()


def buy_unheard(hub: Hub, sku: str = SKU) -> str:
    """A purchase whose `v1:order.new` webhook is lost on the way."""
    hub.depop.drop_next_webhooks(1)
    purchase_id = hub.depop.purchase(sku)
    assert hub.orders(channel="depop") == [], "the webhook was meant to be lost"
    return purchase_id


def test_reconciliation_creates_an_order_whose_webhook_was_lost_and_routes_it(hub: Hub) -> None:
    list_and_stock(hub)
    purchase_id = buy_unheard(hub)

    found = reconcile(hub, "depop")

    assert found["state"] == "done", found
    assert (found["seen"], found["created"], found["updated"]) == (1, 1, 0)
    assert found["mismatches"] == [
        {
            "channel_order_id": purchase_id,
            "channel_status": "SHIPPING_PENDING",
            "kind": "missing_order",
            "action": "created the order from the channel",
        }
    ]
    order = hub.order("depop", purchase_id)
    assert order["status"] == "confirmed"
    assert [h["source"] for h in order["history"]][0] == f"reconcile:{found['id']}"
    assert hub.deliverr_order(order["id"])["externalOrderId"] == order["id"]
    assert hub.stock(SKU)["reserved"] == 1


def test_a_second_run_finds_nothing_to_change(hub: Hub) -> None:
    list_and_stock(hub)
    purchase_id = buy_unheard(hub)
    reconcile(hub, "depop")
    order_before = hub.order("depop", purchase_id)
    deliverr_creates = len(hub.deliverr.calls_to("POST", "/orders/v1/order"))

    again = reconcile(hub, "depop")

    assert again["state"] == "done"
    assert again["seen"] >= 1
    assert (again["created"], again["updated"], again["mismatches"]) == (0, 0, [])
    order_after = hub.order("depop", purchase_id)
    assert order_after["history"] == order_before["history"]
    assert len(hub.deliverr.calls_to("POST", "/orders/v1/order")) == deliverr_creates
    assert len(hub.orders(channel="depop")) == 1


def test_the_second_run_reads_from_the_first_runs_end_less_the_overlap(hub: Hub) -> None:
    first = reconcile(hub, "depop")
    second = reconcile(hub, "depop")

    def moment(value: str) -> float:
        return datetime.fromisoformat(value).timestamp()

    overlap = hub.runtime.settings.reconcile_overlap_minutes * 60
    assert moment(second["window_from"]) == pytest.approx(moment(first["window_to"]) - overlap)
    listed = hub.depop.calls_to("GET", "/api/v1/orders/")
    assert len(listed) == 2


def test_a_refund_whose_webhook_was_lost_cancels_the_order(hub: Hub) -> None:
    list_and_stock(hub)
    purchase_id = hub.depop.purchase(SKU)
    hub.drain()
    order = hub.order("depop", purchase_id)
    assert order["status"] == "confirmed" and order["fulfilment_provider"] == "deliverr"
    hub.depop.drop_next_webhooks(1)
    hub.depop.refund(purchase_id, items_refund_amount="25.99", shipping_refund_amount="5.00")
    assert hub.order("depop", purchase_id)["status"] == "confirmed", "refund webhook was lost"

    found = reconcile(hub, "depop")

    assert (found["seen"], found["created"], found["updated"]) == (1, 0, 1)
    assert found["mismatches"] == [
        {
            "channel_order_id": purchase_id,
            "channel_status": "REFUNDED",
            "kind": "cancelled_at_channel",
            "action": "cancelled the order",
        }
    ]
    order = hub.order("depop", purchase_id)
    assert order["status"] == "cancelled"
    assert order["channel_status"] == "REFUNDED"
    assert hub.stock(SKU)["reserved"] == 0
    assert hub.deliverr_order(order["id"])["status"] == "CANCELLED"
    assert reconcile(hub, "depop")["mismatches"] == []


def test_tracking_depop_did_not_record_is_pushed_again(hub: Hub) -> None:
    list_and_stock(hub)
    purchase_id = hub.depop.purchase(SKU)
    hub.drain()
    order = hub.order("depop", purchase_id)
    hub.deliverr.ship(hub.deliverr_order(order["id"])["orderId"])
    # Depop answers the mark-as-shipped call with a 200 but never records it.
    hub.depop.fail_next(1, status=200)
    hub.drain()
    order = hub.order("depop", purchase_id)
    assert order["status"] == "completed"
    assert [s["pushed_to_channel"] for s in order["shipments"]] == [True]
    assert hub.depop.orders[purchase_id]["status"] == "SHIPPING_PENDING"

    found = reconcile(hub, "depop")

    assert kinds(found) == ["tracking_not_received"]
    assert (found["created"], found["updated"]) == (0, 1)
    assert hub.depop.orders[purchase_id]["status"] == "SHIPPED"
    tracking = order["shipments"][0]["tracking_numbers"]
    assert [p["tracking_number"] for p in hub.depop.shipped_parcels[purchase_id].values()] == [
        ",".join(tracking)
    ]
    assert "tracking_pushed_again" in [
        h["trigger"] for h in hub.order_by_id(order["id"])["history"]
    ]
    assert reconcile(hub, "depop")["mismatches"] == []


def test_an_order_shipped_outside_the_hub_is_flagged_once(hub: Hub) -> None:
    list_and_stock(hub)
    purchase_id = hub.depop.purchase(SKU)
    hub.drain()
    assert hub.order("depop", purchase_id)["status"] == "confirmed"
    # The seller ships it by hand at Depop; Depop sends no webhook for that.
    parcel = hub.depop.orders[purchase_id]["line_items"][0]["parcel_id"]
    hub.depop.mark_parcel_shipped(purchase_id, parcel, "1ZHAND0002", "royal_mail")

    found = reconcile(hub, "depop")

    assert kinds(found) == ["shipped_outside_hub"]
    assert (found["created"], found["updated"]) == (0, 1)
    order = hub.order("depop", purchase_id)
    assert (order["channel_status"], order["needs_attention"]) == ("SHIPPED", True)
    # Flagged already, and the channel status agrees: the next run has nothing to report.
    again = reconcile(hub, "depop")
    assert (again["seen"], again["updated"], again["mismatches"]) == (1, 0, [])


def test_an_order_depop_shipped_before_the_hub_knew_of_it_is_not_sent_to_the_warehouse(
    hub: Hub,
) -> None:
    list_and_stock(hub)
    purchase_id = buy_unheard(hub)
    parcel = hub.depop.orders[purchase_id]["line_items"][0]["parcel_id"]
    hub.depop.mark_parcel_shipped(purchase_id, parcel, "1ZHAND0001", "royal_mail")

    found = reconcile(hub, "depop")

    assert (found["seen"], found["created"]) == (1, 0)
    assert kinds(found) == ["missing_shipped_order"]
    assert hub.orders(channel="depop") == []
    assert hub.deliverr.calls_to("POST", "/orders/v1/order") == []


def test_an_explicit_window_is_what_the_run_reads(hub: Hub) -> None:
    list_and_stock(hub)
    buy_unheard(hub)

    found = reconcile(
        hub, "depop", **{"from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z"}
    )

    assert (found["window_from"], found["window_to"]) == (
        "2020-01-01T00:00:00Z",
        "2020-02-01T00:00:00Z",
    )
    assert (found["seen"], found["created"]) == (0, 0)
    [listed] = hub.depop.calls_to("GET", "/api/v1/orders/")
    assert (listed.query["from"], listed.query["to"]) == (
        "2020-01-01T00:00:00Z",
        "2020-02-01T00:00:00Z",
    )


def test_every_page_is_read(hub: Hub) -> None:
    # Orders Depop shipped before the hub heard of them: each is seen and reported, none is
    # taken in, which keeps 205 orders (two pages of 200) cheap to reconcile.
    skus = [f"SKU-{i:03d}" for i in range(205)]
    hub.depop.drop_next_webhooks(len(skus))
    for sku in skus:
        hub.depop.add_product(sku, quantity=1)
        purchase_id = hub.depop.purchase(sku)
        parcel = hub.depop.orders[purchase_id]["line_items"][0]["parcel_id"]
        hub.depop.mark_parcel_shipped(purchase_id, parcel, f"1Z{sku}", "royal_mail")

    found = reconcile(hub, "depop")

    assert (found["state"], found["seen"], found["created"]) == ("done", 205, 0)
    assert len(found["mismatches"]) == 205
    assert len({m["channel_order_id"] for m in found["mismatches"]}) == 205
    pages = hub.depop.calls_to("GET", "/api/v1/orders/")
    assert [("cursor" in page.query) for page in pages] == [False, True]


def test_a_failing_channel_leaves_the_run_failed_with_the_reason(hub: Hub) -> None:
    hub.depop.fail_next(10, status=500)

    found = reconcile(hub, "depop")

    assert found["state"] == "failed"
    assert found["error"] and "500" in found["error"]
    jobs = hub.admin("GET", "/admin/jobs", params={"kind": "reconcile.run"}).json()["data"]
    assert [j["state"] for j in jobs] == ["dead"]


@pytest.mark.usefixtures("cli_env")
def test_hub_reconcile_command_runs_a_reconciliation_and_prints_it(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command builds its runtime from the environment; here it gets the one whose HTTP
    # clients reach the simulators.
    monkeypatch.setattr(wiring, "build_runtime", lambda *_a, **_k: hub.runtime)
    list_and_stock(hub)
    purchase_id = buy_unheard(hub)

    result = CliRunner().invoke(main, ["reconcile", "depop"])

    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert (printed["state"], printed["seen"], printed["created"]) == ("done", 1, 1)
    assert [m["kind"] for m in printed["mismatches"]] == ["missing_order"]
    order = hub.order("depop", purchase_id)
    assert order["status"] == "confirmed"
    assert hub.deliverr_order(order["id"])["externalOrderId"] == order["id"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reconcile", "nowhere"], "not configured"),
        (["reconcile", "depop", "--from", "2026-01-01T00:00:00"], "UTC offset"),
        (["reconcile", "depop", "--from", "yesterday"], "ISO 8601"),
        (
            [
                "reconcile",
                "depop",
                "--from",
                "2026-01-02T00:00:00Z",
                "--to",
                "2026-01-01T00:00:00Z",
            ],
            "before",
        ),
    ],
)
@pytest.mark.usefixtures("cli_env")
def test_hub_reconcile_command_refuses_bad_input(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setattr(wiring, "build_runtime", lambda *_a, **_k: hub.runtime)

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 2
    assert message in result.output
    assert hub.admin("GET", "/admin/reconcile/runs").json()["data"] == []


def test_an_order_reconciliation_creates_with_a_line_without_sku_is_flagged_and_resolvable(
    hub: Hub,
) -> None:
    list_and_stock(hub, "CAP-RED")
    hub.depop.add_product("LEGACY-LISTING", quantity=1)
    hub.depop.drop_next_webhooks(1)
    purchase_id = hub.depop.purchase("CAP-RED", "LEGACY-LISTING")
    hub.depop.orders[purchase_id]["line_items"][1]["sku"] = None  # listed in the Depop app

    assert reconcile(hub, "depop")["created"] == 1

    # The flag raised as the page is inserted, and raised again as the order advances, is one
    # open flag, and the order says so: it is in the attention list and can be resolved.
    order = hub.order("depop", purchase_id)
    assert (order["needs_attention"], order["attention_reason"]) == (True, "line has no SKU")
    assert [f["code"] for f in order["flags"]] == ["no_sku"]
    assert [o["id"] for o in hub.orders(needs_attention="true")] == [order["id"]]
    resolved = hub.admin(
        "POST", f"/admin/orders/{order['id']}/resolve", json={"note": "sold in the app"}
    )
    assert resolved.status_code == 200, resolved.text
    assert not hub.order("depop", purchase_id)["needs_attention"]
