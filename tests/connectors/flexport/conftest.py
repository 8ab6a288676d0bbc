"""Fixtures: the Flexport simulator, the real provider wired to it, and a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
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
from connectors.contracts import ContractLog, watch
from connectors.flexport import FlexportProvider, FlexportSettings, FlexportWebhooks
from connectors.flexport.client import MemorySkuMaps
from connectors.flexport.simulator import FlexportSimulator
from connectors.flexport.spec import CONTRACT

BASE_URL = "https://logistics-api.flexport.com"
ACCESS_TOKEN = "flexport-access-1"
WEBHOOK_TOKEN = "flexport-webhook-1"
HUB_WEBHOOK_URL = "https://hub.test/webhooks/flexport"


def make_settings(**overrides: Any) -> FlexportSettings:
    """Settings built in code, so no environment or `.env` file leaks into a test."""
    values: dict[str, Any] = {
        "base_url": BASE_URL,
        "access_token": SecretStr(ACCESS_TOKEN),
        "webhook_token": SecretStr(WEBHOOK_TOKEN),
        **overrides,
    }
    return FlexportSettings(_env_file=None, **values)


def make_request(
    order_id: str = "ord_01", *lines: tuple[str, int], country: str = "US"
) -> FulfilmentRequest:
    return FulfilmentRequest(
        order_id=order_id,
        channel="depop",
        channel_order_id=f"depop-{order_id}",
        placed_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        shipping_address=Address(
            name="Ada Lovelace",
            line1="1 Engine Way",
            city="Austin",
            region="TX" if country == "US" else None,
            postal_code="78701" if country == "US" else None,
            country_code=country,
        ),
        lines=tuple(
            FulfilmentLine(line_id=f"line-{i}", sku=sku, quantity=qty)
            for i, (sku, qty) in enumerate(lines or (("SKU-A", 2),))
        ),
        shipping_service="standard",
    )


@dataclass
class Receiver:
    """A stand-in for the hub's `POST /webhooks/flexport`: authenticate, identify, parse."""

    webhooks: FlexportWebhooks
    events: list[ChannelEvent] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    rejected: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/webhooks/flexport")
        async def receive(request: Request) -> JSONResponse:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            try:
                self.webhooks.authenticate(headers, body, datetime.now(UTC))
            except Unauthenticated:
                self.rejected += 1
                return JSONResponse({"error": "unauthenticated"}, status_code=401)
            identity = self.webhooks.identify(headers, body)
            self.bodies.append(body)
            self.events.append(self.webhooks.parse(body, identity))
            return JSONResponse({"status": "accepted", "event_id": identity.external_id})

        return app


@pytest.fixture
def receiver() -> Receiver:
    return Receiver(FlexportWebhooks(make_settings()))


@pytest.fixture
def sim(receiver: Receiver) -> Iterator[FlexportSimulator]:
    with TestClient(receiver.app(), base_url="https://hub.test") as hub:
        yield FlexportSimulator(
            ACCESS_TOKEN,
            webhook_token=WEBHOOK_TOKEN,
            products=("SKU-A", "SKU-B"),
            webhook_url=HUB_WEBHOOK_URL,
            webhook_client=hub,
        )


@pytest.fixture
def http(sim: FlexportSimulator) -> Iterator[TestClient]:
    with TestClient(sim.app, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def log(http: TestClient) -> ContractLog:
    return watch(http, CONTRACT, strict=True)


@pytest.fixture
def sku_maps() -> MemorySkuMaps:
    return MemorySkuMaps()


@pytest.fixture
def provider(http: TestClient, log: ContractLog, sku_maps: MemorySkuMaps) -> FlexportProvider:
    return FlexportProvider(make_settings(), http=http, sku_maps=sku_maps)
