"""Out-of-range money from a channel (a negative price, a total of 1e400, an amount that is no
number) is stored, the order flagged with what is wrong, and nothing is acknowledged, accepted
or routed until an operator resolves the flag. Signed webhooks from the Depop and topi
simulators in, the admin API and the Deliverr simulator out, on SQLite and on Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.depop.transformers import ORDER_NEW
from connectors.topi.simulator import SimLine
from hub.db import Database
from tests.harness import Hub, make_hub

SKU = "ABC-12345-S-BL"


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database)
    yield h
    h.close()


def depop_order_with(hub: Hub, purchase_id: str, **changes: Any) -> dict[str, Any]:
    """A `v1:order.new` for a new purchase, as the simulator would send it but with `changes`
    to the order (and `sold_price` to its line), delivered signed; the hub's order after."""
    hub.depop.add_product(SKU, quantity=5)
    hub.set_stock(SKU, 5)
    template = hub.depop.purchase(SKU)
    data = json.loads(hub.depop.sent_webhooks[-1].body)["data"]
    hub.drain()
    assert hub.order("depop", template)["status"] == "confirmed"
    sold_price = changes.pop("sold_price", None)
    data = {**data, "purchase_id": purchase_id, **changes}
    if sold_price is not None:
        data["line_items"] = [{**data["line_items"][0], "sold_price": sold_price}]
    hub.depop.send_event(ORDER_NEW, data)
    hub.drain()
    return hub.order("depop", purchase_id)


def money_flags(order: dict[str, Any]) -> list[str]:
    return [f["message"] for f in order["flags"] if f["code"] == "money_out_of_range"]


def deliverr_has(hub: Hub, order: dict[str, Any]) -> bool:
    return hub.deliverr.order_by_external_id(order["id"]) is not None


def test_depop_negative_price_is_stored_flagged_and_not_routed(hub: Hub) -> None:
    order = depop_order_with(hub, "9000001", sold_price="-25.99", buyer_pays_amount="-20.99")

    assert order["status"] == "created"
    assert [line["unit_price"] for line in order["lines"]] == ["-25.99"]
    assert order["total_amount"] == "-20.99"
    [why] = money_flags(order)
    assert "-25.99 is negative" in why and "total: -20.99 is negative" in why
    assert order["needs_attention"]
    assert not deliverr_has(hub, order)
    assert hub.stock(SKU)["reserved"] == 1, "only the good order holds a unit"


@pytest.mark.parametrize(
    ("total", "why"),
    [
        pytest.param("1e400", "total: 1E+400 is over 1,000,000,000,000", id="1e400"),
        pytest.param("NaN", "total: NaN is not a finite number", id="nan"),
        pytest.param("-Infinity", "total: -Infinity is not a finite number", id="minus-inf"),
    ],
)
def test_depop_total_no_column_holds_is_kept_as_sent_and_the_order_held(
    hub: Hub, total: str, why: str
) -> None:
    order = depop_order_with(hub, "9000002", buyer_pays_amount=total)

    assert order["status"] == "created"
    assert order["total_amount"] == "0"
    [message] = money_flags(order)
    assert why in message
    with hub.db.reader() as session:
        from hub.orders import repository

        stored = repository.get(session, order["id"])
        assert stored is not None
        assert stored.attributes["amounts_as_sent"] == {"total": why.split()[1]}
    assert not deliverr_has(hub, order)


def test_a_held_order_goes_on_once_an_operator_resolves_its_money_flag(hub: Hub) -> None:
    order = depop_order_with(hub, "9000003", sold_price="-1.00", buyer_pays_amount="4.00")
    [flag] = [f for f in order["flags"] if f["code"] == "money_out_of_range"]

    response = hub.admin(
        "POST",
        f"/admin/orders/{order['id']}/resolve",
        json={"flag_id": flag["id"], "note": "Depop confirmed the price; a goodwill sale"},
    )
    assert response.status_code == 200, response.text
    hub.drain()

    after = hub.order_by_id(order["id"])
    assert after["status"] == "confirmed"
    assert not after["needs_attention"]
    assert deliverr_has(hub, after)


def test_topi_negative_price_is_stored_flagged_and_never_acknowledged(hub: Hub) -> None:
    hub.set_stock("LAPTOP", 5)
    oid = hub.topi.create_order([SimLine("LAPTOP", 1, "pay_now", unit_price=-119000)])
    hub.drain()

    order = hub.order("topi", oid)
    assert order["status"] == "created"
    assert [line["unit_price"] for line in order["lines"]] == ["-1190.00"]
    [why] = money_flags(order)
    assert "-1190.00 is negative" in why
    assert not deliverr_has(hub, order)
    assert not [c for c in hub.topi.calls if c.method == "POST" and "/order" in c.path]
    assert hub.stock("LAPTOP")["reserved"] == 0


def test_topi_price_beyond_any_real_order_is_stored_flagged_and_held(hub: Hub) -> None:
    # topi's amounts are int64 minor units on the wire: its largest is about 9.2e16 EUR.
    hub.set_stock("LAPTOP", 5)
    oid = hub.topi.create_order([SimLine("LAPTOP", 1, "pay_now", unit_price=10**18)])
    hub.drain()

    order = hub.order("topi", oid)
    assert order["status"] == "created"
    assert order["lines"][0]["unit_price"] == "10000000000000000.00"
    [why] = money_flags(order)
    assert "10000000000000000.00 is over 1,000,000,000,000" in why
    assert not deliverr_has(hub, order)
