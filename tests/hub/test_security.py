"""Security: secrets are SecretStr, no configured secret or token ever reaches a log line or an
error body, and request bodies over 1 MiB are refused before they are read whole."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import sqlalchemy as sa
import structlog
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from hub.config import HubSettings, Settings
from hub.connections.service import plain_values
from hub.db import Database
from hub.logging import configure_logging
from tests.harness import ADMIN_TOKEN, TOPI_ID, TOPI_SECRET, Hub, all_settings, make_hub

MIB = 1 << 20
SECRET_WORDS = ("secret", "token", "key", "password")


# -- secrets are typed as secrets --------------------------------------------------------------


def test_every_secret_setting_is_a_secret_str_and_repr_hides_it() -> None:
    settings = all_settings("sqlite:///unused.db")
    groups: list[BaseSettings] = [
        settings.hub,
        settings.depop,
        settings.topi,
        settings.deliverr,
        settings.aboutyou,
    ]
    for group in groups:
        for name, field in type(group).model_fields.items():
            if any(word in name for word in SECRET_WORDS) and not name.endswith(
                ("_header", "_url", "_source", "_days", "_map")
            ):
                assert "SecretStr" in str(field.annotation), f"{type(group).__name__}.{name}"
        shown = repr(group) + str(group.model_dump())
        for secret in settings.secrets():
            assert secret not in shown, f"{type(group).__name__} shows a secret"


# -- nothing secret in logs or error bodies ----------------------------------------------------


def forms_of(secret: str) -> set[str]:
    """A secret and the forms it may travel in: a whsec key's base64 body and its bytes."""
    forms = {secret}
    if secret.startswith("whsec_"):
        body = secret.removeprefix("whsec_")
        forms.add(body)
        forms.add(base64.b64decode(body).decode("latin-1"))
    return forms


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The hub's JSON logging at DEBUG, written to a buffer; the previous set-up restored."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_structlog = structlog.get_config()
    configure_logging("json", "debug")
    # Loggers must not keep this configuration after the test: no caching on first use.
    structlog.configure(cache_logger_on_first_use=False)
    buffer = io.StringIO()
    for handler in root.handlers:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.configure(**saved_structlog)


def test_no_secret_or_token_reaches_the_logs_or_an_error_body(
    database: Database, json_log: io.StringIO
) -> None:
    hub = make_hub(database)
    seen: list[str] = []  # every error body and every operator-facing text the hub produced

    def keep(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            seen.append(response.text)
        return response

    try:
        # A whole life per channel, including token fetches, renewals and failures.
        hub.depop.add_product("SKU-1", quantity=5)
        hub.set_stock("SKU-1", 5)
        depop_order = hub.depop.purchase("SKU-1")
        hub.topi.fail_next(1, 500)
        topi_order = hub.topi.create_order({"SKU-1": 1})
        hub.aboutyou.create_order("SKU-1")
        hub.drain()
        hub.topi.expire_tokens()
        hub.deliverr.expire_access_token()  # calls now fail 401: no refresh token configured
        hub.topi.cancel_order(topi_order)
        hub.topi.create_order({"SKU-1": 1})  # its acknowledge renews the expired token
        hub.drain()
        order = hub.order("depop", depop_order)
        keep(hub.admin("POST", f"/admin/orders/{order['id']}/retry-fulfilment"))
        hub.drain()

        # Every way of being refused.
        body = b'{"id": "evt-1", "event_type": "v1:order.new", "data": {}}'
        for channel, headers in {
            "depop": {"x-depop-timestamp": "1", "x-depop-signature": "00"},
            "topi": {"svix-id": "m", "svix-timestamp": "1", "svix-signature": "v1,AAAA"},
            "deliverr": {"x-deliverr-token": "wrong"},
            "aboutyou": {"x-api-key": "wrong"},
        }.items():
            keep(hub.client.post(f"/webhooks/{channel}", content=body, headers=headers))
            keep(hub.client.post(f"/webhooks/{channel}", content=body))
        keep(hub.client.get("/admin/orders", headers={"authorization": "Bearer nope"}))
        keep(hub.client.get("/admin/orders"))
        keep(hub.admin("GET", "/admin/orders/ord_missing"))
        keep(hub.admin("PUT", "/admin/stock/SKU-1", json={"on_hand": -1}))
        keep(hub.admin("POST", "/admin/reconcile/nowhere", json={}))
        # A second shop, its secrets given through the API: every answer about it is read.
        _, shop_b = hub.wired.add_account("depop", "shop-b")
        values = plain_values(shop_b)
        created = hub.admin(
            "POST",
            "/admin/connections",
            json={"system": "depop", "name": "shop-b", "settings": values},
        )
        assert created.status_code == 201, created.text
        seen.append(created.text)
        seen.append(hub.admin("GET", "/admin/connections").text)
        keep(hub.admin("POST", "/admin/connections", json={"system": "depop", "name": "shop-b"}))
        keep(
            hub.admin(
                "PATCH",
                "/admin/connections/depop/shop-b",
                json={"settings": {"api_key": values["api_key"], "base_url": 7}},
            )
        )
        keep(hub.client.post("/webhooks/depop/shop-b", content=body, headers={}))
        seen.append(hub.admin("POST", "/admin/connections/depop/shop-b/check").text)
        for path in ("/admin/jobs?limit=500", "/admin/events?limit=500", "/admin/orders"):
            seen.append(hub.admin("GET", path).text)  # last errors and reasons, as operators see
        with hub.db.reader() as session:
            # What a dump of the database holds of connections and renewed credentials.
            dumped = " ".join(
                str(row)
                for table in ("connections", "stored_credentials")
                for row in session.execute(sa.text(f"SELECT * FROM {table}")).all()
            )
    finally:
        hub.close()

    logged = json_log.getvalue()
    lines = [json.loads(line) for line in logged.splitlines()]
    events = {line["event"] for line in lines}
    # The capture really holds the flow's log, so its silence about secrets means something.
    assert {"hub.inbox.received", "hub.orders.received", "hub.jobs.dead"} <= events, events
    assert any(line["level"] == "debug" or line["level"] == "info" for line in lines)
    secrets: set[str] = set()
    for secret in all_settings(database.url).secrets() + [ADMIN_TOKEN]:
        secrets |= forms_of(secret)
    secrets.add(base64.b64encode(f"{TOPI_ID}:{TOPI_SECRET}".encode()).decode())
    secrets |= set(hub.topi.tokens)  # access tokens topi issued during the flow
    for name in ("api_key", "webhook_secret"):
        secrets |= forms_of(str(values[name]))
    assert "depop/shop-b" in dumped
    assert hub.topi.issued_tokens >= 2
    assert len(seen) >= 12
    for secret in secrets:
        assert secret not in logged, f"a secret ({secret[:4]}...) is in the log"
        for text in seen:
            assert secret not in text, f"a secret ({secret[:4]}...) is in an answer: {text[:200]}"
        assert secret not in dumped, f"a secret ({secret[:4]}...) is readable in the database"


# -- bodies over 1 MiB -------------------------------------------------------------------------


class Chunks:
    """A request body of `total` bytes in 64 KiB chunks that counts how many were pulled."""

    def __init__(self, total: int, size: int = 64 * 1024) -> None:
        self.total, self.size, self.pulled = total, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled * self.size < self.total:
            self.pulled += 1
            yield b"x" * self.size


def send_streamed(hub: Hub, method: str, path: str, body: Chunks, **headers: str) -> httpx.Response:
    """Send `body` to the hub app through an ASGI transport that hands it over chunk by chunk,
    as a socket would, so the count of chunks pulled is what the app read."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=hub.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(
                method,
                path,
                content=body,
                headers={"authorization": f"Bearer {ADMIN_TOKEN}", **headers},
            )

    return asyncio.run(go())


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database)
    yield h
    h.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/admin/stock/SKU-1"),
        ("POST", "/admin/routing-rules"),
        ("POST", "/webhooks/depop"),
        ("POST", "/webhooks/aboutyou"),
    ],
)
def test_streamed_body_without_a_length_is_refused_at_the_first_chunk_past_1_mib(
    hub: Hub, method: str, path: str
) -> None:
    body = Chunks(total=16 * MIB)

    response = send_streamed(hub, method, path, body, **{"content-type": "application/json"})

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert body.pulled * body.size <= MIB + body.size, f"read {body.pulled} chunks"
    assert hub.admin("GET", "/admin/events").json()["data"] == []


def test_a_declared_length_over_1_mib_is_refused_before_a_byte_is_read(hub: Hub) -> None:
    body = Chunks(total=2 * MIB)

    response = send_streamed(
        hub, "PUT", "/admin/stock/SKU-1", body, **{"content-length": str(2 * MIB)}
    )

    assert response.status_code == 413
    assert response.json() == {"error": "payload_too_large", "detail": f"body over {MIB} bytes"}
    assert body.pulled == 0


def test_a_body_of_exactly_1_mib_is_read(hub: Hub) -> None:
    padding = MIB - len(b'{"on_hand": 5, "pad": ""}')
    body = b'{"on_hand": 5, "pad": "' + b"x" * padding + b'"}'
    assert len(body) == MIB

    response = hub.admin("PUT", "/admin/stock/SKU-1", content=body)

    # Read whole and judged on its content (the stock body forbids extra fields): not a 413.
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_hub_settings_hold_admin_tokens_as_secrets() -> None:
    settings = HubSettings(admin_tokens="a-token-1,a-token-2")

    assert all(isinstance(t, SecretStr) for t in settings.admin_tokens)
    assert Settings(settings).secrets()[:2] == ["a-token-1", "a-token-2"]
