"""Who may scrape `/metrics` (HUB_METRICS_TOKEN) and where it is served (HUB_METRICS_PORT)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from hub.app import create_metrics_app
from hub.db import Database
from tests.harness import ADMIN_TOKEN, Hub, make_hub

TOKEN = "scrape-me-9f2c"


@pytest.fixture
def guarded(database: Database) -> Iterator[Hub]:
    h = make_hub(database, metrics_token=SecretStr(TOKEN))
    yield h
    h.close()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ", "Bearer wrong", f"Bearer {TOKEN}x", f"Bearer {ADMIN_TOKEN}", TOKEN],
)
def test_metrics_with_a_token_set_refuse_a_scrape_without_it(
    guarded: Hub, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}

    response = guarded.client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert "hub_" not in response.text


def test_metrics_with_a_token_set_answer_a_scrape_that_carries_it(guarded: Hub) -> None:
    response = guarded.client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200
    assert "hub_orders" in response.text


def test_metrics_on_a_port_of_their_own_are_not_on_the_api(database: Database) -> None:
    h = make_hub(database, metrics_port=9464, metrics_token=SecretStr(TOKEN))
    try:
        assert h.client.get("/metrics").status_code == 404
        with TestClient(create_metrics_app(h.runtime)) as metrics:
            assert metrics.get("/metrics").status_code == 401
            scraped = metrics.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
            assert metrics.get("/admin/jobs").status_code == 404
        assert scraped.status_code == 200
        assert "hub_orders" in scraped.text
    finally:
        h.close()
