"""Fixtures: the Deliverr simulator, the real provider wired to it, and a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.base import (
    Address,
    ChannelEvent,
    FulfilmentLine,
    FulfilmentRequest,
    Unauthenticated,
)
from connectors.deliverr import DeliverrProvider, DeliverrSettings, DeliverrWebhooks
from connectors.deliverr.simulator import DeliverrSimulator

BASE_URL = "https://api.deliverr.com"
ACCESS_TOKEN = "access-token-1"
REFRESH_TOKEN = "refresh-token-1"
WEBHOOK_TOKEN = "webhook-token-1"
HUB_WEBHOOK_URL = "https://hub.test/webhooks/deliverr"


def make_settings(
    *,
    access_token: str | None = ACCESS_TOKEN,
    refresh_token: str | None = REFRESH_TOKEN,
    webhook_token: str | None = WEBHOOK_TOKEN,
    webhook_header: str = "X-Deliverr-Token",
    **overrides: Any,
) -> DeliverrSettings:
    """Settings built in code, so no environment or `.env` file leaks into a test."""
    return DeliverrSettings(
        _env_file=None,
        base_url=BASE_URL,
        access_token=SecretStr(access_token) if access_token is not None else None,
        refresh_token=SecretStr(refresh_token) if refresh_token is not None else None,
        webhook_token=SecretStr(webhook_token) if webhook_token is not None else None,
        webhook_header=webhook_header,
        **overrides,
    )


def make_request(
    *,
    order_id: str = "ord_01",
    address: Address | None = None,
    lines: tuple[FulfilmentLine, ...] | None = None,
    channel: str = "depop",
    shipping_service: str | None = None,
) -> FulfilmentRequest:
    """A hub order to fulfil; keyword arguments override the parts a test cares about."""
    return FulfilmentRequest(
        order_id=order_id,
        channel=channel,
        channel_order_id="depop-9001",
        placed_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        shipping_address=address
        or Address(
            name="Ada Lovelace",
            company="Analytical Ltd",
            line1="1 Engine Way",
            line2="Suite 2",
            city="Austin",
            region="TX",
            postal_code="78701",
            country_code="US",
        ),
        lines=lines
        or (
            FulfilmentLine(line_id="line-1", sku="SKU-A", quantity=2),
            FulfilmentLine(line_id="line-2", sku="SKU-B", quantity=1),
        ),
        shipping_service=shipping_service,
    )


class MemoryTokenStore:
    """A TokenStore kept in a dict, as the hub keeps it in a table."""

    def __init__(self, initial: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.values: dict[str, dict[str, str]] = {k: dict(v) for k, v in (initial or {}).items()}
        self.saves = 0

    def load(self, key: str) -> Mapping[str, str] | None:
        return self.values.get(key)

    def save(self, key: str, value: Mapping[str, str]) -> None:
        self.values[key] = dict(value)
        self.saves += 1


@dataclass
class Receiver:
    """A stand-in for the hub's `POST /webhooks/deliverr`: authenticate, identify, parse."""

    webhooks: DeliverrWebhooks
    events: list[ChannelEvent] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    rejected: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/webhooks/deliverr")
        async def receive(request: Request) -> JSONResponse:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            try:
                self.webhooks.authenticate(headers, body, datetime.now(UTC))
            except Unauthenticated:
                self.rejected += 1
                return JSONResponse({"error": "unauthenticated"}, status_code=401)
            identity = self.webhooks.identify(headers, body)
            self.event_ids.append(identity.external_id)
            self.events.append(self.webhooks.parse(body, identity))
            return JSONResponse({"status": "accepted", "event_id": identity.external_id})

        return app


@pytest.fixture
def receiver() -> Receiver:
    return Receiver(DeliverrWebhooks(make_settings()))


@pytest.fixture
def sim(receiver: Receiver) -> Iterator[DeliverrSimulator]:
    with TestClient(receiver.app(), base_url="https://hub.test") as hub:
        yield DeliverrSimulator(
            access_token=ACCESS_TOKEN,
            webhook_token=WEBHOOK_TOKEN,
            refresh_token=REFRESH_TOKEN,
            webhook_url=HUB_WEBHOOK_URL,
            webhook_client=hub,
            known_products={"SKU-A", "SKU-B", "SKU-C"},
        )


@pytest.fixture
def api(sim: DeliverrSimulator) -> Iterator[TestClient]:
    with TestClient(sim.app, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def store() -> MemoryTokenStore:
    return MemoryTokenStore()


@pytest.fixture
def provider(api: TestClient, store: MemoryTokenStore) -> DeliverrProvider:
    return DeliverrProvider(make_settings(), http=api, token_store=store)
