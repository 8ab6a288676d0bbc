"""Bearer tokens for `/admin`: 401 without a known token, 403 when a read-only token writes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from hub.config import HubSettings
from hub.db import Database
from tests.harness import ADMIN_TOKEN, Hub, make_hub

from .conftest import error, ok, place

READER = "read-only-token"


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, fake=True, admin_read_tokens=[SecretStr(READER)])
    yield h
    h.close()


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param(f"Basic {ADMIN_TOKEN}", id="wrong-scheme"),
        pytest.param("Bearer ", id="empty-token"),
        pytest.param(f"Bearer {ADMIN_TOKEN}x", id="unknown-token"),
        pytest.param(f"Bearer {ADMIN_TOKEN[:-1]}", id="prefix-of-a-token"),
    ],
)
def test_admin_without_a_known_token_answers_401_json(hub: Hub, authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}

    response = hub.client.get("/admin/orders", headers=headers)

    error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_read_only_token_reads_but_may_not_change_anything(hub: Hub) -> None:
    order = place(hub, "A-1", ("SKU-1", 1))
    reader = {"authorization": f"Bearer {READER}"}

    assert (
        ok(hub.client.get(f"/admin/orders/{order['id']}", headers=reader))["status"] == "confirmed"
    )
    refused = hub.client.post(
        f"/admin/orders/{order['id']}/cancel", headers=reader, json={"reason": "r"}
    )

    error(refused, 403, "forbidden")
    assert hub.order_by_id(order["id"])["status"] == "confirmed"


def test_a_read_only_token_cannot_set_stock(hub: Hub) -> None:
    response = hub.client.put(
        "/admin/stock/SKU-1", json={"on_hand": 5}, headers={"authorization": f"Bearer {READER}"}
    )

    error(response, 403, "forbidden")
    error(hub.admin("GET", "/admin/stock/SKU-1"), 404, "sku_not_found")


def test_operations_endpoints_need_no_token(hub: Hub) -> None:
    assert ok(hub.client.get("/healthz")) == {"status": "ok"}
    assert ok(hub.client.get("/readyz")) == {"status": "ready"}
    assert hub.client.get("/metrics").status_code == 200


def test_with_no_tokens_configured_every_admin_call_is_refused(database: Database) -> None:
    h = make_hub(database, admin_tokens=[])
    try:
        error(h.client.get("/admin/orders", headers={"authorization": "Bearer "}), 401)
        error(h.client.get("/admin/orders", headers={"authorization": "Bearer anything"}), 401)
    finally:
        h.close()


def test_tokens_come_from_comma_separated_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUB_ADMIN_TOKENS", "tok-alpha-91, tok-beta-92")
    monkeypatch.setenv("HUB_ADMIN_READ_TOKENS", "tok-viewer-93")

    settings = HubSettings()

    assert [t.get_secret_value() for t in settings.admin_tokens] == ["tok-alpha-91", "tok-beta-92"]
    assert [t.get_secret_value() for t in settings.admin_read_tokens] == ["tok-viewer-93"]
    assert "tok-" not in repr(settings)
