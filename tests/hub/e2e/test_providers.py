"""The same fulfilment journeys through the whole hub for every 3PL: Deliverr (for sellers who
kept its API) and Flexport (its successor). Depop orders come in by webhook, go to the provider,
its packages come back (Deliverr by webhook and poll, Flexport by id-only webhooks the hub
follows with a read), and their tracking reaches Depop."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from hub.db import Database
from tests.harness import DELIVERR_HOOK, FLEXPORT_HOOK, Hub, make_hub


@dataclass(frozen=True)
class Provider:
    """What differs between the providers' simulators, behind one face."""

    name: str
    carrier: str  # one the provider's description admits
    create_path: str
    webhook_headers: dict[str, str]

    def sim(self, hub: Hub) -> Any:
        return hub.deliverr if self.name == "deliverr" else hub.flexport

    def ship(
        self, hub: Hub, ref: str, items: Sequence[tuple[str, int]] | None, tracking: str
    ) -> None:
        self.sim(hub).ship(ref, items, tracking_number=tracking, carrier=self.carrier)

    def order(self, hub: Hub, hub_order_id: str) -> dict[str, Any]:
        found = self.sim(hub).order_by_external_id(hub_order_id)
        assert found is not None, f"no {self.name} order for {hub_order_id}"
        return dict(found)

    def status(self, order: dict[str, Any]) -> str:
        return str(order["status"] if self.name == "deliverr" else order["state"]["internalStatus"])

    def creates(self, hub: Hub) -> list[int]:
        calls = self.sim(hub).calls_to("POST", self.create_path)
        return [c.status for c in calls if c.path == self.create_path]


PROVIDERS = [
    Provider("deliverr", "UPS", "/orders/v1/order", {"X-Deliverr-Token": DELIVERR_HOOK}),
    Provider(
        "flexport", "DHL", "/logistics/api/2024-07/orders", {"X-Flexport-Token": FLEXPORT_HOOK}
    ),
]


@pytest.fixture(params=PROVIDERS, ids=[p.name for p in PROVIDERS])
def provider(request: pytest.FixtureRequest) -> Provider:
    chosen: Provider = request.param
    return chosen


@pytest.fixture
def hub(database: Database, provider: Provider) -> Iterator[Hub]:
    h = make_hub(database, default_provider=provider.name)
    yield h
    h.close()


def routed(hub: Hub, provider: Provider, *skus: str) -> tuple[str, str, str]:
    """A Depop purchase of one unit of each SKU, sent to the provider: (purchase id, hub order
    id, provider order id)."""
    for sku in skus:
        hub.depop.add_product(sku, quantity=3)
        hub.set_stock(sku, 3)
    purchase_id = hub.depop.purchase(*skus)
    hub.drain()
    order = hub.order("depop", purchase_id)
    assert order["fulfilment_provider"] == provider.name, order
    provider.sim(hub).flush_webhooks()
    hub.drain()
    return purchase_id, order["id"], str(order["fulfilment_ref"])


def mark_as_shipped(hub: Hub, purchase_id: str) -> list[tuple[str, dict[str, Any]]]:
    prefix = f"/api/v1/orders/{purchase_id}/parcels/"
    return [
        (call.path.removeprefix(prefix).split("/")[0], call.json)
        for call in hub.depop.calls_to("POST", prefix)
    ]


def test_packages_come_back_as_tracking_on_the_channel(hub: Hub, provider: Provider) -> None:
    purchase_id, order_id, ref = routed(hub, provider, "SKU-A", "SKU-B")

    provider.ship(hub, ref, [("SKU-A", 1)], "T-FIRST")
    hub.poll_fulfilment(order_id)  # Deliverr sends no webhook for a partial shipment
    order = hub.order_by_id(order_id)
    assert order["status"] == "partially_fulfilled"
    assert order["fulfilment_provider"] == provider.name
    assert [(line["sku"], line["shipped_quantity"]) for line in order["lines"]] == [
        ("SKU-A", 1),
        ("SKU-B", 0),
    ]
    assert mark_as_shipped(hub, purchase_id) == []  # the parcel is not complete yet

    provider.ship(hub, ref, [("SKU-B", 1)], "T-SECOND")
    hub.drain()
    order = hub.order_by_id(order_id)
    assert order["status"] == "completed"
    assert [s["tracking_numbers"] for s in order["shipments"]] == [["T-FIRST"], ["T-SECOND"]]
    assert [s["carrier"] for s in order["shipments"]] == [provider.carrier] * 2
    ((_, body),) = mark_as_shipped(hub, purchase_id)
    assert body["tracking_number"] == "T-FIRST,T-SECOND"
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 2, "reserved": 0, "available": 2}


def test_a_partial_shipment_pushes_exactly_its_items(hub: Hub, provider: Provider) -> None:
    from connectors.depop.transformers import ORDER_NEW

    for sku in ("SKU-A", "SKU-B", "SKU-C"):
        hub.depop.add_product(sku, quantity=3)
        hub.set_stock(sku, 3)
    hub.depop.drop_next_webhooks(1)
    purchase_id = hub.depop.purchase("SKU-A", "SKU-B", "SKU-C")
    depop_order = hub.depop.orders[purchase_id]
    depop_order["line_items"][2]["parcel_id"] = "parcel-two"
    hub.depop.send_event(ORDER_NEW, depop_order)
    hub.drain()
    order_id = hub.order("depop", purchase_id)["id"]
    ref = str(hub.order_by_id(order_id)["fulfilment_ref"])

    provider.ship(hub, ref, [("SKU-C", 1)], "T-C")
    hub.poll_fulfilment(order_id)
    assert mark_as_shipped(hub, purchase_id) == [
        ("parcel-two", {"tracking_number": "T-C", "carrier": provider.carrier})
    ]
    order = hub.order_by_id(order_id)
    assert order["status"] == "partially_fulfilled"
    assert [(s["tracking_numbers"], len(s["lines"])) for s in order["shipments"]] == [(["T-C"], 1)]


def test_cancel_before_shipping_cancels_at_the_provider(hub: Hub, provider: Provider) -> None:
    _, order_id, _ = routed(hub, provider, "SKU-A")
    response = hub.admin("POST", f"/admin/orders/{order_id}/cancel", json={"reason": "buyer asked"})
    assert response.status_code == 200, response.text
    hub.drain()
    provider.sim(hub).flush_webhooks()  # the provider's own news of it changes nothing more
    hub.drain()

    assert provider.status(provider.order(hub, order_id)) == "CANCELLED"
    order = hub.order_by_id(order_id)
    assert order["status"] == "cancelled"
    assert not order["needs_attention"]
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 3, "reserved": 0, "available": 3}


def test_cancel_of_an_order_the_provider_does_not_hold_gives_the_units_back(
    hub: Hub, provider: Provider
) -> None:
    _, order_id, ref = routed(hub, provider, "SKU-A")
    del provider.sim(hub).orders[ref]  # the provider lost it (or an operator deleted it there)
    response = hub.admin("POST", f"/admin/orders/{order_id}/cancel", json={"reason": "buyer asked"})
    assert response.status_code == 200, response.text
    hub.drain()

    # Nothing of it can ship: its units are free again and no job died over the 404.
    assert hub.order_by_id(order_id)["status"] == "cancelled"
    assert hub.stock("SKU-A") == {"sku": "SKU-A", "on_hand": 3, "reserved": 0, "available": 3}
    assert hub.admin("GET", "/admin/jobs", params={"state": "dead"}).json()["data"] == []


def test_a_duplicate_webhook_changes_nothing(hub: Hub, provider: Provider) -> None:
    purchase_id, order_id, ref = routed(hub, provider, "SKU-A")
    provider.ship(hub, ref, None, "T-ONLY")
    hub.drain()
    sent = provider.sim(hub).sent_webhooks[-1].body
    name = provider.name

    repeat = hub.client.post(
        f"/webhooks/{name}",
        content=sent,
        headers={"content-type": "application/json", **provider.webhook_headers},
    )
    assert repeat.json()["status"] == "duplicate"
    hub.drain()

    order = hub.order_by_id(order_id)
    assert order["status"] == "completed"
    assert len(order["shipments"]) == 1
    assert order["lines"][0]["shipped_quantity"] == 1
    assert len(mark_as_shipped(hub, purchase_id)) == 1
    assert hub.stock("SKU-A")["on_hand"] == 2


def test_a_webhook_without_the_providers_credentials_is_refused(
    hub: Hub, provider: Provider
) -> None:
    wrong = dict.fromkeys(provider.webhook_headers, "not-the-token")
    response: httpx.Response = hub.client.post(
        f"/webhooks/{provider.name}",
        content=json.dumps({"any": "thing"}).encode(),
        headers={"content-type": "application/json", **wrong},
    )
    assert response.status_code == 401
    assert response.json()["error"]


@pytest.mark.parametrize("fault", ["500", "timeout"])
def test_a_create_that_failed_or_took_effect_unanswered_ends_as_one_order(
    hub: Hub, provider: Provider, fault: str
) -> None:
    sim = provider.sim(hub)
    if fault == "500":
        sim.fail_after_next("POST", 500)
    else:
        sim.timeout_next_create(1)
    _, order_id, ref = routed(hub, provider, "SKU-A")

    assert len(sim.orders) == 1
    at_provider = provider.order(hub, order_id)
    assert str(at_provider.get("orderId", at_provider.get("id"))) == ref
    route = [j for j in hub.order_by_id(order_id)["jobs"] if j["kind"] == "fulfilment.route"]
    assert [(j["state"], j["attempts"]) for j in route] == [("done", 2)]
    # The first attempt's create stored the order but answered 500 or nothing; the retry found
    # it by the hub's order id and created nothing.
    assert provider.creates(hub) == ([500] if fault == "500" else [])


def test_a_routing_rule_sends_an_order_to_flexport_over_the_default(database: Database) -> None:
    hub = make_hub(database, default_provider="deliverr")
    try:
        rule = hub.admin(
            "POST", "/admin/routing-rules", json={"provider": "flexport", "sku_pattern": "SKU-B*"}
        )
        assert rule.status_code == 201, rule.text
        for sku in ("SKU-A", "SKU-B"):
            hub.depop.add_product(sku, quantity=3)
            hub.set_stock(sku, 3)
        by_default = hub.depop.purchase("SKU-A")
        by_rule = hub.depop.purchase("SKU-B")
        hub.drain()

        assert hub.order("depop", by_default)["fulfilment_provider"] == "deliverr"
        routed_by_rule = hub.order("depop", by_rule)
        assert routed_by_rule["fulfilment_provider"] == "flexport"
        at_flexport = hub.flexport.order_by_external_id(routed_by_rule["id"])
        assert at_flexport is not None
        assert str(at_flexport["id"]) == routed_by_rule["fulfilment_ref"]
        # Flexport's line names its own SKU, mapped from the seller's.
        assert at_flexport["lineItems"] == [
            {"logisticsSku": hub.flexport.products["SKU-B"], "quantity": 1}
        ]
    finally:
        hub.close()
