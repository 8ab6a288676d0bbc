"""A hub with the fake channel and a read-only token, and a browser-like client that signs in
to the console (it keeps the session cookie) and reads the CSRF token from a page's forms."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from hub.db import Database
from tests.harness import ADMIN_TOKEN, Hub, make_hub

READER_NAME, READER = "viewer", "read-only-token"


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, fake=True, admin_read_tokens=[SecretStr(f"{READER_NAME}:{READER}")])
    yield h
    h.close()


def sign_in(hub: Hub, token: str = ADMIN_TOKEN) -> None:
    """Sign the hub's client in to the console; its cookie jar keeps the session."""
    response = hub.client.post(
        "/console/login", data={"token": token, "next": "/console"}, follow_redirects=False
    )
    assert response.status_code == 303, response.text


def sign_out(hub: Hub) -> None:
    hub.client.cookies.clear()


def csrf(page: httpx.Response) -> str:
    """The CSRF token the page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def page(hub: Hub, path: str, status: int = 200) -> httpx.Response:
    response: httpx.Response = hub.client.get(path, follow_redirects=False)
    assert response.status_code == status, response.text[:2000]
    return response
