"""Routing rules, managed through the admin API, decide which provider ships an order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hub.db import Database
from tests.harness import Hub, make_hub

GERMAN_BUYER = {
    "name": "Erika Mustermann",
    "address": "Hauptstr. 1",
    "city": "Berlin",
    "postal_code": "10115",
    "country_code": "DE",
}


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database)
    for sku in ("HANDMADE-1", "TEE-1"):
        h.depop.add_product(sku, quantity=20)
    yield h
    h.close()


def add_rule(hub: Hub, **rule: Any) -> dict[str, Any]:
    response = hub.admin("POST", "/admin/routing-rules", json=rule)
    assert response.status_code == 201, response.text
    return dict(response.json())


def provider_for(hub: Hub, *skus: str, buyer: dict[str, str] | None = None) -> str | None:
    """Buy `skus` on Depop and answer the provider the hub routed the order to."""
    purchase_id = hub.depop.purchase(*skus, buyer=buyer)
    hub.drain()
    provider: str | None = hub.order("depop", purchase_id)["fulfilment_provider"]
    return provider


def test_rules_are_listed_in_the_order_they_are_tried_and_can_be_deleted(hub: Hub) -> None:
    late = add_rule(hub, priority=50, channel="depop", provider="manual")
    early = add_rule(hub, priority=5, sku_pattern="HANDMADE-*", provider="deliverr")
    same = add_rule(hub, priority=50, country_code="DE", provider="manual")
    assert early == {
        "id": early["id"],
        "priority": 5,
        "channel": None,
        "connection": None,
        "sku_pattern": "HANDMADE-*",
        "country_code": None,
        "provider": "deliverr",
    }

    listed = hub.admin("GET", "/admin/routing-rules").json()
    assert [r["id"] for r in listed] == [early["id"], late["id"], same["id"]]

    assert hub.admin("DELETE", f"/admin/routing-rules/{late['id']}").status_code == 204
    assert [r["id"] for r in hub.admin("GET", "/admin/routing-rules").json()] == [
        early["id"],
        same["id"],
    ]
    missing = hub.admin("DELETE", f"/admin/routing-rules/{late['id']}")
    assert missing.status_code == 404
    assert missing.json()["error"] == "rule_not_found"


def test_rules_are_refused_for_unknown_providers_bad_fields_and_strangers(hub: Hub) -> None:
    unknown = hub.admin("POST", "/admin/routing-rules", json={"provider": "shipbob"})
    assert unknown.status_code == 422
    assert unknown.json()["error"] == "unknown_provider"
    assert "deliverr" in unknown.json()["detail"]
    bad = hub.admin(
        "POST", "/admin/routing-rules", json={"provider": "manual", "country_code": "DEU"}
    )
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_request"
    stranger = hub.client.post("/admin/routing-rules", json={"provider": "manual"})
    assert stranger.status_code == 401
    assert hub.admin("GET", "/admin/routing-rules").json() == []


def test_the_first_matching_rule_decides_and_the_default_is_deliverr(hub: Hub) -> None:
    add_rule(hub, priority=10, sku_pattern="HANDMADE-*", provider="manual")

    assert provider_for(hub, "HANDMADE-1") == "manual"
    assert provider_for(hub, "TEE-1") == "deliverr"
    # A SKU pattern must match every line: a mixed order goes the default way.
    assert provider_for(hub, "HANDMADE-1", "TEE-1") == "deliverr"
    assert hub.deliverr.order_by_external_id(hub.orders(sku="HANDMADE-1")[-1]["id"]) is None


def test_country_and_channel_rules_match_the_order(hub: Hub) -> None:
    add_rule(hub, priority=10, country_code="de", provider="manual")
    add_rule(hub, priority=20, channel="topi", provider="manual")

    assert provider_for(hub, "TEE-1", buyer=GERMAN_BUYER) == "manual"
    assert provider_for(hub, "TEE-1") == "deliverr"  # a GB buyer on Depop matches neither
    add_rule(hub, priority=30, channel="depop", provider="manual")
    assert provider_for(hub, "TEE-1") == "manual"
