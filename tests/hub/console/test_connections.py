"""The console's Connections pages over HTTP: list, create (a bad value explained, no secret
sent back), change, disable, check and the SKUs a connection does not sell, each change audited
and each form guarded by its CSRF token."""

from __future__ import annotations

from typing import Any

import httpx

from hub.connections.service import plain_values
from tests.harness import Hub

from ..admin.conftest import place
from .conftest import READER, csrf, page, sign_in, sign_out
from .test_pages import audit_of


def form_of(values: dict[str, Any]) -> dict[str, str]:
    """A connector's values as the create form posts them."""
    return {
        f"s_{name}": ", ".join(value) if isinstance(value, list) else str(value)
        for name, value in values.items()
    }


def create(hub: Hub, system: str, name: str, values: dict[str, Any]) -> httpx.Response:
    token = csrf(page(hub, f"/console/connections/new?system={system}"))
    response: httpx.Response = hub.client.post(
        "/console/connections",
        data={"csrf": token, "system": system, "name": name, "enabled": "on", **form_of(values)},
        follow_redirects=True,
    )
    return response


def post(hub: Hub, key: str, action: str, **data: str) -> httpx.Response:
    token = csrf(page(hub, f"/console/connections/{key}"))
    response: httpx.Response = hub.client.post(
        f"/console/connections/{key}/{action}", data={"csrf": token, **data}, follow_redirects=True
    )
    assert response.status_code == 200, response.text[:2000]
    return response


def shop_b(hub: Hub) -> dict[str, Any]:
    """Credentials of a second simulated Depop shop, made as `depop/shop-b` in the console."""
    _, settings = hub.wired.add_account("depop", "shop-b")
    values = plain_values(settings)
    sign_in(hub)
    made = create(hub, "depop", "shop-b", values)
    assert made.status_code == 200, made.text[:2000]
    assert "Connection depop/shop-b created." in made.text
    return values


def test_the_connections_page_lists_each_connection_naming_its_secrets_never_their_values(
    hub: Hub,
) -> None:
    values = shop_b(hub)

    listing = page(hub, "/console/connections").text

    for key in ("depop/default", "topi/default", "deliverr/default", "depop/shop-b"):
        assert f'href="/console/connections/{key}"' in listing
    assert (
        "/webhooks/depop/shop-b" in listing and "api_key, client_secret, webhook_secret" in listing
    )
    assert 'id="connect-depop"' in listing
    for secret in (values["api_key"], values["webhook_secret"]):
        assert secret not in listing
        assert secret not in page(hub, "/console/connections/depop/shop-b").text
    created = hub.admin("GET", "/admin/connections/depop/shop-b").json()
    assert (created["source"], created["active"], created["enabled"]) == ("database", True, True)
    [entry] = audit_of(hub, action="connection.create")
    assert (entry["actor"], entry["target"]) == ("ops", "depop/shop-b")


def test_a_bad_value_is_explained_on_the_form_and_no_secret_typed_comes_back(hub: Hub) -> None:
    sign_in(hub)
    secret = "client-secret-that-must-not-echo"

    response = create(
        hub,
        "topi",
        "de",
        {
            "client_id": "shop-de",
            "client_secret": secret,
            "webhook_secrets": ["not-a-whsec-secret!!"],
            "call_deadline_seconds": "soon",
        },
    )

    assert response.status_code == 422
    assert "Not created: invalid topi settings" in response.text
    assert "call_deadline_seconds" in response.text and "webhook_secrets" in response.text
    assert secret not in response.text and "not-a-whsec-secret!!" not in response.text
    assert 'value="shop-de"' in response.text  # what is no secret stays filled in
    listed = hub.admin("GET", "/admin/connections").json()["data"]
    assert "topi/de" not in {c["key"] for c in listed}
    assert audit_of(hub, action="connection.create") == []


def test_a_taken_name_or_a_bad_name_is_refused_in_plain_words(hub: Hub) -> None:
    values = shop_b(hub)

    again = create(hub, "depop", "shop-b", values)
    assert again.status_code == 409
    assert "Not created: connection depop/shop-b exists" in again.text
    bad = create(hub, "depop", "Shop B!", values)
    assert bad.status_code == 422 and "lowercase letters, digits and dashes" in bad.text
    long = create(hub, "depop", "s" * 70, values)
    assert long.status_code == 422 and "1-63 lowercase letters" in long.text
    assert values["api_key"] not in again.text + bad.text


def test_changing_a_secret_keeps_the_blank_ones_and_a_wrong_key_fails_the_check(
    hub: Hub,
) -> None:
    shop_b(hub)
    passed = post(hub, "depop/shop-b", "check")
    assert "Check passed: the credentials work." in passed.text

    changed = post(
        hub,
        "depop/shop-b",
        "settings",
        s_api_key="dp_wrong_key",
        s_webhook_secret="",
        s_base_url="https://shop-b.depop.test",
    )

    assert "Settings changed: api_key." in changed.text
    assert "dp_wrong_key" not in changed.text
    shown = hub.admin("GET", "/admin/connections/depop/shop-b").json()
    assert shown["secrets_set"] == [
        "api_key",
        "client_secret",
        "webhook_secret",
    ]  # the blank one was kept
    failed = post(hub, "depop/shop-b", "check")
    assert "Check failed:" in failed.text
    [entry] = audit_of(hub, action="connection.change")
    assert entry["detail"] == {"settings": ["api_key"], "enabled": None}
    nothing = post(hub, "depop/shop-b", "settings", s_base_url="https://shop-b.depop.test")
    assert "Nothing changed." in nothing.text


def test_disabling_a_connection_takes_it_out_and_enabling_brings_it_back(hub: Hub) -> None:
    shop_b(hub)

    off = post(hub, "depop/shop-b", "enabled", enabled="off")

    assert "depop/shop-b disabled." in off.text
    shown = hub.admin("GET", "/admin/connections/depop/shop-b").json()
    assert (shown["enabled"], shown["active"]) == (False, False)
    assert (
        "Check failed: depop/shop-b is disabled or lacks credentials."
        in post(hub, "depop/shop-b", "check").text
    )
    post(hub, "depop/shop-b", "enabled", enabled="on")
    assert hub.admin("GET", "/admin/connections/depop/shop-b").json()["active"] is True
    assert [e["detail"]["enabled"] for e in audit_of(hub, action="connection.change")] == [
        True,
        False,
    ]


def test_an_environment_connection_can_be_switched_but_its_settings_not_changed(hub: Hub) -> None:
    sign_in(hub)

    detail = page(hub, "/console/connections/depop/default").text
    assert "Save settings" not in detail and "environment variables" in detail

    refused = post(hub, "depop/default", "settings", s_api_key="x")
    assert "Not changed: depop/default is described by environment variables" in refused.text


def test_a_sku_opted_out_and_back_in_is_audited(hub: Hub) -> None:
    shop_b(hub)

    added = post(hub, "depop/shop-b", "excluded-skus", sku="TEE-RED-M")
    assert "depop/shop-b no longer sells TEE-RED-M." in added.text
    assert hub.admin("GET", "/admin/connections/depop/shop-b/excluded-skus").json() == {
        "skus": ["TEE-RED-M"]
    }
    removed = post(hub, "depop/shop-b", "excluded-skus/remove", sku="TEE-RED-M")
    assert "depop/shop-b sells TEE-RED-M again." in removed.text
    assert hub.admin("GET", "/admin/connections/depop/shop-b/excluded-skus").json() == {"skus": []}
    assert [(e["action"], e["detail"]) for e in audit_of(hub)][:2] == [
        ("connection.include_sku", {"sku": "TEE-RED-M"}),
        ("connection.exclude_sku", {"sku": "TEE-RED-M"}),
    ]


def test_forms_without_their_csrf_token_or_from_a_reader_change_nothing(hub: Hub) -> None:
    shop_b(hub)

    forged = hub.client.post("/console/connections/depop/shop-b/enabled", data={"enabled": "off"})
    assert forged.status_code == 403
    forged_create = hub.client.post(
        "/console/connections", data={"system": "depop", "name": "shop-c", "s_api_key": "k"}
    )
    assert forged_create.status_code == 403
    sign_out(hub)
    sign_in(hub, READER)
    detail = page(hub, "/console/connections/depop/shop-b").text
    assert "Disable" not in detail and "Save settings" not in detail
    assert hub.admin("GET", "/admin/connections/depop/shop-b").json()["enabled"] is True


def test_orders_jobs_webhooks_and_runs_filter_by_connection(hub: Hub) -> None:
    hub.set_stock("SKU-1", 5)
    order = place(hub, "F-1", ("SKU-1", 1))
    sign_in(hub)

    listed = page(hub, "/console/orders?connection=fake/default").text
    assert "F-1" in listed and "fake/default" in listed
    assert "F-1" not in page(hub, "/console/orders?connection=depop/shop-b").text
    assert "fake/default" in page(hub, f"/console/orders/{order['id']}").text
    job_id = order["jobs"][0]["id"]
    assert f"#{job_id}<" in page(hub, "/console/jobs?connection=fake/default").text
    assert f"#{job_id}<" not in page(hub, "/console/jobs?connection=depop/shop-b").text
    hub.client.post("/webhooks/depop", content=b"{}", headers={"x-depop-signature": "bad"})
    assert "depop/default" in page(hub, "/console/webhooks?connection=depop/default").text
    assert "None rejected." in page(hub, "/console/webhooks?connection=topi/default").text
    page(hub, "/console/reconcile?channel=depop/default")


def test_a_ticked_box_removes_a_secret_unless_the_connection_needs_it(hub: Hub) -> None:
    _, settings = hub.wired.add_account("depop", "shop-c")
    values = {**plain_values(settings), "client_id": "app", "client_secret": "app-secret"}
    sign_in(hub)
    assert "Connection depop/shop-c created." in create(hub, "depop", "shop-c", values).text
    secrets = hub.admin("GET", "/admin/connections/depop/shop-c").json()["secrets_set"]
    assert secrets == ["api_key", "client_secret", "webhook_secret"]

    removed = post(hub, "depop/shop-c", "settings", clear_client_secret="on")

    assert "Settings changed: client_secret." in removed.text
    secrets = hub.admin("GET", "/admin/connections/depop/shop-c").json()["secrets_set"]
    assert secrets == ["api_key", "webhook_secret"]
    refused = post(hub, "depop/shop-c", "settings", clear_webhook_secret="on")
    assert "Not changed: the settings would lack what a depop connection needs" in refused.text
    cleared = post(hub, "depop/shop-c", "settings", s_client_id="")
    assert "Settings changed: client_id." in cleared.text
    settings = hub.admin("GET", "/admin/connections/depop/shop-c").json()["settings"]
    assert "client_id" not in settings and "base_url" in settings
    assert "Check passed" in post(hub, "depop/shop-c", "check").text
