"""Plain builders shared by the ABOUT YOU connector tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from connectors.aboutyou import AboutYouChannel, AboutYouSettings
from connectors.aboutyou.config import ReturnLabelPolicy
from connectors.aboutyou.simulator import AboutYouSimulator
from connectors.base import OrderLineView, OrderView, ShipmentLineView, ShipmentView
from connectors.ratelimit import LocalRateLimiter, RateLimit, RateLimiter

API_KEY = "ay-api-key-1"
WEBHOOK_KEY = "ay-webhook-key-1"
HOST = "https://partner.aboutyou.com"
RETURN_LABEL = "RL-0034043416"

# The example of seeds/order-delegation-webhook.txt, verbatim.
SEED_BODY = b"""{
"id": 1,
"event": "text",
"timestamp": "2025-09-18T17:05:02.525Z",
"message": {
"order_items": [
{
"return_tracking_key": "text",
"shipment_tracking_key": "text",
"sku": "text",
"status": "open",
"id": 1,
"vat": 19,
"price_without_tax": 1,
"price_with_tax": 1,
"custom_data": {}
}
],
"order_number": "text",
"delivery_document_url": "text",
"status": "open",
"customer_key": "text",
"carrier_key": "text",
"shop": 1,
"created_at": "2025-09-18T17:05:02.525Z",
"updated_at": "2025-09-18T17:05:02.525Z",
"fulfillment_type": "dropshipping",
"custom_data": {},
"payment_method": "text",
"billing_street": "text",
"billing_zip_code": "text",
"billing_city": "text",
"billing_country_code": "text",
"billing_recipient_gender": "text",
"billing_recipient_first_name": "text",
"billing_recipient_last_name": "text",
"billing_additional": "text",
"shipping_street": "text",
"shipping_zip_code": "text",
"shipping_city": "text",
"shipping_country_code": "text",
"shipping_additional": "text",
"shipping_collection_point_key": "text",
"shipping_collection_point_type": "text",
"shipping_collection_point_customer_key": "text",
"shipping_collection_point_description": "text",
"shipping_recipient_gender": "text",
"shipping_recipient_first_name": "text",
"shipping_recipient_last_name": "text",
"currency_code": "text",
"cost_without_tax": 1,
"cost_with_tax": 1
},
"subscription_id": 1
}"""


def settings(**overrides: Any) -> AboutYouSettings:
    """Settings with both keys and a fixed return label, never read from the environment."""
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "webhook_key": WEBHOOK_KEY,
        "return_label_policy": ReturnLabelPolicy.FIXED,
        "return_label_number": RETURN_LABEL,
    }
    values.update(overrides)
    return AboutYouSettings(_env_file=None, **values)


class FakeTime:
    """A clock that moves only when something sleeps; records every wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


class LimiterLog:
    """A limiter that allows every call and records the limits it was asked for."""

    def __init__(self) -> None:
        self.asked: list[RateLimit] = []

    def acquire(self, limit: RateLimit, *, max_wait: float) -> None:
        self.asked.append(limit)


def channel_for(
    sim: AboutYouSimulator,
    *,
    api_key: str = API_KEY,
    poll_attempts: int = 3,
    time: FakeTime | None = None,
    limiter: RateLimiter | None = None,
    clock: Callable[[], datetime] | None = None,
    **overrides: Any,
) -> AboutYouChannel:
    """The real channel talking to the simulator through httpx, on fake time."""
    time = time or FakeTime()
    return AboutYouChannel(
        settings(api_key=api_key, **overrides),
        http=TestClient(sim.app, base_url=HOST),
        limiter=limiter or LocalRateLimiter(clock=time.monotonic, sleep=time.sleep),
        poll_attempts=poll_attempts,
        poll_interval=2.0,
        sleep=time.sleep,
        clock=clock or (lambda: datetime.now(UTC)),
    )


def order_view(
    sim: AboutYouSimulator,
    number: str,
    shipments: Sequence[ShipmentView] = (),
    shipped: Sequence[int] = (),
) -> OrderView:
    """What the hub would show the connector of a simulator order."""
    wire = sim.order(number)
    lines = tuple(
        OrderLineView(
            line_id=f"line-{item['id']}",
            channel_line_id=str(item["id"]),
            sku=item["sku"],
            quantity=1,
            shipped_quantity=1 if item["id"] in shipped else 0,
            unit_price=Decimal(item["price_with_tax"]) / 100,
            attributes={"status": "open"},
        )
        for item in wire["order_items"]
    )
    return OrderView(
        order_id=f"hub-{number}",
        channel="aboutyou",
        channel_order_id=number,
        currency="EUR",
        lines=lines,
        shipments=tuple(shipments),
    )


def shipment(
    item_ids: Sequence[int],
    *,
    shipment_id: str = "shp-1",
    carrier: str | None = "DHL",
    tracking: tuple[str, ...] = ("00340434161234567890",),
) -> ShipmentView:
    """One parcel holding the given ABOUT YOU order items."""
    return ShipmentView(
        shipment_id=shipment_id,
        carrier=carrier,
        tracking_numbers=tracking,
        tracking_url=None,
        shipped_at=None,
        lines=tuple(
            ShipmentLineView(channel_line_id=str(i), sku=None, quantity=1) for i in item_ids
        ),
        pushed_to_channel=False,
    )
