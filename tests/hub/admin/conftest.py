"""A hub with the fake channel, and a quick way to place its orders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hub.db import Database
from tests.fake_channel import order_json, signed, webhook
from tests.harness import Hub, make_hub


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, fake=True)
    yield h
    h.close()


def send(hub: Hub, order_id: str, *lines: tuple[str, int]) -> None:
    """The fake channel sends `order.new` for `order_id`."""
    body = webhook(f"evt-{order_id}", "order.new", order_json(order_id, *lines))
    response = hub.client.post("/webhooks/fake", content=body, headers=signed(body))
    assert response.status_code == 200, response.text


def place(hub: Hub, order_id: str, *lines: tuple[str, int]) -> dict[str, Any]:
    """Send the order, let the worker run, and read the hub's detail of it."""
    send(hub, order_id, *lines)
    hub.drain()
    return hub.order("fake", order_id)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, str]:
    """The JSON error the API answered, after checking its status, shape and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    if code is not None:
        assert body["error"] == code, body
    return dict(body)
