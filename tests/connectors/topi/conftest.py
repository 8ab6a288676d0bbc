"""Fixtures of the topi connector tests: a simulator, a channel driving it, a webhook sink."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from connectors.base import (
    ChannelEvent,
    ChannelOrder,
    OrderLineView,
    OrderView,
    ShipmentLineView,
    ShipmentView,
    Unauthenticated,
)
from connectors.topi import TopiChannel, TopiSettings, TopiWebhooks
from connectors.topi.simulator import API_HOST, TopiSimulator

CLIENT_ID = "hub-client"
CLIENT_SECRET = "hub-client-secret"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"topi-test-webhook-key-0123456789").decode()
OLD_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"topi-previous-webhook-key-987654").decode()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class WebhookSink:
    """Stands in for the hub's webhook endpoint: verifies, dedupes on the id, parses."""

    receiver: TopiWebhooks
    events: list[ChannelEvent] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    refused: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/webhooks/topi")
        async def _receive(request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            try:
                self.receiver.authenticate(headers, body, datetime.now(UTC))
            except Unauthenticated:
                self.refused += 1
                return Response(status_code=401)
            identity = self.receiver.identify(headers, body)
            if identity.external_id in self.seen:
                return Response('{"status":"duplicate"}', media_type="application/json")
            self.seen.add(identity.external_id)
            self.events.append(self.receiver.parse(body, identity))
            return Response('{"status":"accepted"}', media_type="application/json")

        return app


def make_settings(**overrides: Any) -> TopiSettings:
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "webhook_secrets": [WEBHOOK_SECRET],
    }
    values.update(overrides)
    return TopiSettings(_env_file=None, **values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink() -> WebhookSink:
    return WebhookSink(TopiWebhooks([WEBHOOK_SECRET]))


@pytest.fixture
def sim(sink: WebhookSink) -> Iterator[TopiSimulator]:
    with TestClient(sink.app(), base_url="https://hub.example") as hub:
        yield TopiSimulator(
            CLIENT_ID,
            CLIENT_SECRET,
            WEBHOOK_SECRET,
            webhook_url="https://hub.example/webhooks/topi",
            webhook_client=hub,
        )


@pytest.fixture
def http(sim: TopiSimulator) -> Iterator[TestClient]:
    with TestClient(sim.app, base_url=API_HOST) as client:
        yield client


@pytest.fixture
def channel(http: TestClient, clock: FakeClock) -> TopiChannel:
    return TopiChannel(make_settings(), http=http, clock=clock)


def view_of(
    order: ChannelOrder, shipments: tuple[ShipmentView, ...] = (), order_id: str = "hub-1"
) -> OrderView:
    """What the hub would show the connector of an order it stored from `order`."""
    return OrderView(
        order_id=order_id,
        channel=order.channel,
        channel_order_id=order.channel_order_id,
        currency=order.currency,
        lines=tuple(
            OrderLineView(
                line_id=f"line-{i}",
                channel_line_id=line.channel_line_id,
                sku=line.sku,
                quantity=line.quantity,
                shipped_quantity=0,
                unit_price=line.unit_price,
                attributes=line.attributes,
            )
            for i, line in enumerate(order.lines)
        ),
        shipments=shipments,
        attributes=order.attributes,
    )


def shipment(
    shipment_id: str,
    *lines: tuple[str, int, tuple[str, ...]],
    pushed: bool = False,
    tracking_url: str | None = "https://track.example/1Z999",
) -> ShipmentView:
    """A shipment of `(sku, quantity, serials)` lines; the SKU is also the channel line id."""
    return ShipmentView(
        shipment_id=shipment_id,
        carrier="UPS",
        tracking_numbers=("1Z999",),
        tracking_url=tracking_url,
        shipped_at=datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        lines=tuple(
            ShipmentLineView(channel_line_id=sku, sku=sku, quantity=qty, serial_numbers=serials)
            for sku, qty, serials in lines
        ),
        pushed_to_channel=pushed,
    )
