"""The admin API of connections: what it takes, what it refuses and what it never shows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hub.connections.service import plain_values
from hub.db import Database
from tests.harness import Hub, make_hub


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database)
    yield h
    h.close()


def create(hub: Hub, system: str, name: str, settings: dict[str, Any]) -> Any:
    return hub.admin(
        "POST", "/admin/connections", json={"system": system, "name": name, "settings": settings}
    )


def test_every_system_has_its_default_connection_from_the_environment(hub: Hub) -> None:
    listed = hub.admin("GET", "/admin/connections").json()["data"]
    assert {c["key"]: (c["source"], c["active"], c["role"]) for c in listed} == {
        "aboutyou/default": ("env", True, "channel"),
        "deliverr/default": ("env", True, "provider"),
        "depop/default": ("env", True, "channel"),
        "flexport/default": ("env", True, "provider"),
        "topi/default": ("env", True, "channel"),
    }
    assert {c["webhook_path"] for c in listed if c["system"] == "depop"} == {"/webhooks/depop"}


def test_a_created_connection_shows_its_settings_and_names_its_secrets_only(hub: Hub) -> None:
    _, settings = hub.wired.add_account("depop", "shop-b")
    values = plain_values(settings)
    made = create(hub, "depop", "shop-b", values)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["key"] == "depop/shop-b" and body["active"] is True
    # A simulated Depop account also carries an OAuth app (shops can be connected by signing in).
    secrets = ["api_key", "client_secret", "webhook_secret"]
    assert body["secrets_set"] == secrets
    assert body["settings"] == {k: v for k, v in values.items() if k not in secrets}
    assert body["settings"]["base_url"] == values["base_url"]
    assert body["webhook_path"] == "/webhooks/depop/shop-b"
    assert values["api_key"] not in made.text

    again = create(hub, "depop", "shop-b", values)
    assert (again.status_code, again.json()["error"]) == (409, "connection_exists")
    read = hub.admin("GET", "/admin/connections/depop/shop-b").json()
    assert read["secrets_set"] == secrets
    checked = hub.admin("POST", "/admin/connections/depop/shop-b/check").json()
    assert checked == {"ok": True, "detail": "the credentials work"}


@pytest.mark.parametrize(
    ("body", "status", "code", "named"),
    [
        ({"system": "ebay", "name": "x", "settings": {}}, 422, "invalid_connection", "ebay"),
        ({"system": "depop", "name": "Shop B!", "settings": {}}, 422, "invalid_connection", "name"),
        ({"system": "depop", "name": "default", "settings": {}}, 422, "invalid_connection", "env"),
        (
            {"system": "depop", "name": "b", "settings": {"api_kee": "x"}},
            422,
            "invalid_connection",
            "api_kee",
        ),
        (
            {"system": "depop", "name": "b", "settings": {"api_key": "k"}},
            422,
            "invalid_connection",
            "lack",
        ),
        (
            {"system": "depop", "name": "b", "settings": {"api_key": ["k"], "webhook_secret": "s"}},
            422,
            "invalid_connection",
            "api_key",
        ),
        ({"system": "depop"}, 422, "invalid_request", "name"),
    ],
)
def test_bad_connections_are_refused_with_the_problem_named(
    hub: Hub, body: dict[str, Any], status: int, code: str, named: str
) -> None:
    answer = hub.admin("POST", "/admin/connections", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code
    assert named in answer.json()["detail"]
    assert hub.admin("GET", "/admin/connections/depop/b").status_code == 404


def test_a_connection_is_changed_switched_off_and_on(hub: Hub) -> None:
    simulator, settings = hub.wired.add_account("depop", "shop-b")
    values = plain_values(settings)
    wrong = {**values, "api_key": "not-the-key"}
    assert create(hub, "depop", "shop-b", wrong).status_code == 201
    failed = hub.admin("POST", "/admin/connections/depop/shop-b/check").json()
    assert failed["ok"] is False and "not-the-key" not in failed["detail"]

    fixed = hub.admin(
        "PATCH",
        "/admin/connections/depop/shop-b",
        json={"settings": {"api_key": values["api_key"]}},
    )
    assert fixed.status_code == 200, fixed.text
    assert hub.admin("POST", "/admin/connections/depop/shop-b/check").json()["ok"] is True

    off = hub.admin("PATCH", "/admin/connections/depop/shop-b", json={"enabled": False}).json()
    assert (off["enabled"], off["active"]) == (False, False)
    assert hub.admin("POST", "/admin/connections/depop/shop-b/check").json()["ok"] is False
    on = hub.admin("PATCH", "/admin/connections/depop/shop-b", json={"enabled": True}).json()
    assert on["active"] is True
    audit = hub.admin("GET", "/admin/audit").json()["data"]
    assert [a["action"] for a in audit if a["target"] == "depop/shop-b"][:4] == [
        "connection.change",
        "connection.change",
        "connection.change",
        "connection.create",
    ]


def test_a_default_connection_takes_no_settings_but_can_be_switched_off(hub: Hub) -> None:
    refused = hub.admin(
        "PATCH", "/admin/connections/depop/default", json={"settings": {"api_key": "x"}}
    )
    assert (refused.status_code, refused.json()["error"]) == (422, "invalid_connection")
    off = hub.admin("PATCH", "/admin/connections/depop/default", json={"enabled": False})
    assert off.json()["active"] is False
    hooked = hub.client.post("/webhooks/depop", content=b"{}")
    assert (hooked.status_code, hooked.json()["error"]) == (404, "channel_not_configured")
    missing = hub.admin("PATCH", "/admin/connections/depop/nope", json={"enabled": False})
    assert (missing.status_code, missing.json()["error"]) == (404, "connection_not_found")


def test_excluded_skus_are_listed_added_and_removed(hub: Hub) -> None:
    base = "/admin/connections/depop/default/excluded-skus"
    assert hub.admin("GET", base).json() == {"skus": []}
    assert hub.admin("PUT", f"{base}/B").json() == {"skus": ["B"]}
    assert hub.admin("PUT", f"{base}/A").json() == {"skus": ["A", "B"]}
    assert hub.admin("DELETE", f"{base}/B").json() == {"skus": ["A"]}
    missing = hub.admin("PUT", "/admin/connections/depop/nope/excluded-skus/A")
    assert missing.status_code == 404
