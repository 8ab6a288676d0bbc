"""Any interleaving of cancels, provider answers, shipments and restocks keeps stock honest:
on_hand is what the warehouse holds, every unit a provider may still ship stays reserved (so
no other order can be given it), and the movement log explains both figures."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import ProviderShipment, ProviderShipmentLine
from hub.config import UntrackedSkuPolicy
from hub.db import Database
from hub.fulfilment import service as fulfilment
from hub.inventory import repository as stock
from hub.inventory import service as inventory
from hub.orders import service as orders
from state_machines.order import Trigger
from tests.hub.inventory.factories import new_order

ORDERS = 3
ON_SHELF = 3
PROVIDER = "deliverr"

steps = st.lists(
    st.one_of(
        st.tuples(st.just("cancel"), st.integers(0, ORDERS - 1)),
        st.tuples(st.just("provider_cancelled"), st.integers(0, ORDERS - 1)),
        st.tuples(st.just("ship"), st.integers(0, ORDERS - 1)),
        st.tuples(st.just("restock"), st.integers(1, 3)),
    ),
    min_size=1,
    max_size=14,
)


@dataclass
class AtProvider:
    """What the provider knows of one order: whether it shipped it or gave it up."""

    order_id: str
    shipped: bool = False
    given_up: bool = False
    cancelled_here: bool = False

    @property
    def may_ship(self) -> bool:
        return not self.shipped and not self.given_up


def routed_order(database: Database, sku: str, n: int) -> AtProvider:
    order_id = new_order(database, (sku, 1))
    with database.transaction() as session:
        order = orders.get(session, order_id)
        assert inventory.reserve(session, order_id, [(sku, 1)], policy=UntrackedSkuPolicy.REJECT).ok
        orders.fire(session, order, Trigger.ACKNOWLEDGE, "test")
        orders.fire(session, order, Trigger.CONFIRM, "test")
        fulfilment.routed(session, order_id, PROVIDER, f"P-{sku}-{n}", "test")
    return AtProvider(order_id)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=steps)
def test_cancels_shipments_and_restocks_in_any_order_never_free_a_unit_that_may_ship(
    database: Database, plan: list[tuple[str, int]]
) -> None:
    sku = f"I-{uuid.uuid4().hex[:10]}"  # examples share the database: each gets its own SKU
    with database.transaction() as session:
        inventory.set_on_hand(session, sku, ON_SHELF)
    at_provider = [routed_order(database, sku, n) for n in range(ORDERS)]
    shelf = ON_SHELF
    for step, arg in plan:
        with database.transaction() as session:
            if step == "restock":
                item = stock.get(session, sku)
                assert item is not None
                inventory.set_on_hand(session, sku, item.on_hand + arg)
                shelf += arg
                continue
            known = at_provider[arg]
            order = orders.get(session, known.order_id)
            if step == "cancel":
                orders.cancel(session, order, "channel")
                known.cancelled_here = True
            elif step == "provider_cancelled" and known.cancelled_here and not known.shipped:
                # The provider agreed to the cancel (its answer, or its own CANCELLED report).
                fulfilment.provider_gave_up(
                    session, order, PROVIDER, order.fulfilment_ref, "provider"
                )
                known.given_up = True
            elif step == "ship" and known.may_ship:
                shipment = ProviderShipment(
                    shipment_id=f"S-{known.order_id}",
                    carrier="UPS",
                    tracking_numbers=("1Z",),
                    tracking_url=None,
                    shipped_at=None,
                    lines=(ProviderShipmentLine(sku=sku, quantity=1),),
                )
                assert fulfilment.record_shipment(
                    session, order, PROVIDER, shipment, "provider", strict=False
                )
                known.shipped = True
                shelf -= 1
        with database.reader() as session:
            item = stock.get(session, sku)
            assert item is not None
            assert item.on_hand == shelf, (step, arg)
            may_ship = [k for k in at_provider if k.may_ship]
            held = {k.order_id: stock.reservation(session, k.order_id, sku) for k in at_provider}
            for k in at_provider:
                reservation = held[k.order_id]
                assert reservation is not None
                assert reservation.quantity == (1 if k.may_ship else 0), (step, arg, k)
            assert item.reserved == len(may_ship) <= item.on_hand
            assert stock.movement_totals(session, sku) == (item.on_hand, item.reserved)
            for k in at_provider:
                if k.shipped and k.cancelled_here:
                    flagged = orders.get(session, k.order_id)
                    assert flagged.needs_attention
                    assert "return needed" in (flagged.attention_reason or "")
