"""A small in-memory sales channel for exercising the hub's core without a real connector.

Its webhooks are JSON `{"id", "type", "order"}` signed with the shared timestamped-hex helper;
its outbound calls are recorded and can be made to fail on demand.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.base import (
    Address,
    Capability,
    ChannelEvent,
    ChannelOrder,
    ChannelOrderLine,
    ChannelOrderStatus,
    ConnectorError,
    EventKind,
    FlowNotSupported,
    MalformedPayload,
    OrderView,
    Resume,
    WebhookIdentity,
    WebhookReceiver,
)
from connectors.connector import Connector, Lent, Role
from connectors.signatures import sign_timestamped_hex, verify_timestamped_hex
from connectors.simulation import SimulatorBase

SECRET = "fake-secret"


class FakeWebhooks:
    def authenticate(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        verify_timestamped_hex(
            secret=SECRET,
            timestamp=headers.get("x-fake-timestamp"),
            signature=headers.get("x-fake-signature"),
            body=body,
            now=now,
        )

    def identify(self, headers: Mapping[str, str], body: bytes) -> WebhookIdentity:
        try:
            data = json.loads(body)
            return WebhookIdentity(str(data["id"]), str(data["type"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedPayload(str(exc)) from None

    def parse(self, body: bytes, identity: WebhookIdentity) -> ChannelEvent:
        try:
            data = json.loads(body, parse_float=Decimal)
            if data["type"] == "order.new":
                return ChannelEvent(
                    EventKind.ORDER_PLACED, data["type"], order=to_order(data["order"])
                )
            if data["type"] == "order.cancelled":
                return ChannelEvent(
                    EventKind.ORDER_CANCELLED, data["type"], channel_order_id=data["order"]["id"]
                )
            return ChannelEvent(EventKind.IGNORED, data["type"], note="not a fake order event")
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedPayload(str(exc)) from None


def to_order(data: Mapping[str, Any]) -> ChannelOrder:
    return ChannelOrder(
        channel="fake",
        channel_order_id=str(data["id"]),
        status=ChannelOrderStatus(data.get("status", "open")),
        channel_status=str(data.get("status", "open")),
        currency="EUR",
        total_amount=sum(
            (Decimal(str(line["price"])) * line["qty"] for line in data["lines"]), Decimal(0)
        ),
        placed_at=datetime(2026, 11, 1, tzinfo=UTC),
        shipping_address=Address(
            name="Ada Lovelace",
            line1="1 Main St",
            city="Berlin",
            country_code="DE",
            postal_code="10115",
        ),
        lines=tuple(
            ChannelOrderLine(
                channel_line_id=str(i),
                sku=line["sku"],
                quantity=int(line["qty"]),
                unit_price=Decimal(str(line["price"])),
            )
            for i, line in enumerate(data["lines"], start=1)
        ),
    )


def order_json(order_id: str, *lines: tuple[str, int], status: str = "open") -> dict[str, Any]:
    return {
        "id": order_id,
        "status": status,
        "lines": [{"sku": sku, "qty": qty, "price": "10.00"} for sku, qty in lines],
    }


def signed(body: bytes, when: datetime | None = None) -> dict[str, str]:
    ts = str(int((when or datetime.now(UTC)).timestamp()))
    return {
        "x-fake-timestamp": ts,
        "x-fake-signature": sign_timestamped_hex(secret=SECRET, timestamp=ts, body=body),
        "content-type": "application/json",
    }


def webhook(event_id: str, event_type: str, order: Mapping[str, Any]) -> bytes:
    return json.dumps({"id": event_id, "type": event_type, "order": order}).encode()


@dataclass
class FakeChannel:
    """Records every call; `failures[action]` is a list of errors raised by the next calls."""

    name: str = "fake"
    capabilities: frozenset[Capability] = frozenset(
        {Capability.ACKNOWLEDGE, Capability.ACCEPT, Capability.REJECT, Capability.CANCEL}
    )
    webhooks: WebhookReceiver = field(default_factory=FakeWebhooks)
    calls: list[tuple[str, str]] = field(default_factory=list)
    failures: dict[str, list[ConnectorError]] = field(default_factory=dict)
    delay: float = 0.0
    orders: dict[str, ChannelOrder] = field(default_factory=dict)
    cancelled_with: dict[str, str] = field(default_factory=dict)  # channel order id -> reason
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _call(self, action: str, ref: str) -> None:
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            pending = self.failures.get(action)
            if pending:
                raise pending.pop(0)
            self.calls.append((action, ref))

    def acknowledge(self, order: OrderView) -> None:
        self._call("acknowledge", order.channel_order_id)

    def accept(self, order: OrderView) -> None:
        self._call("accept", order.channel_order_id)

    def reject(self, order: OrderView, reason: str, *, resume: Resume = None) -> None:
        self._call("reject", order.channel_order_id)

    def cancel(self, order: OrderView, reason: str, *, resume: Resume = None) -> None:
        self._call("cancel", order.channel_order_id)
        self.cancelled_with[order.channel_order_id] = reason

    def push_tracking(self, order: OrderView, shipment_id: str, *, resume: Resume = None) -> None:
        self._call("push_tracking", f"{order.channel_order_id}:{shipment_id}")

    def fetch_order(self, channel_order_id: str) -> ChannelOrder:
        self._call("fetch_order", channel_order_id)
        return self.orders[channel_order_id]

    def list_orders(self, since: datetime, until: datetime) -> Iterator[ChannelOrder]:
        self._call("list_orders", f"{since.isoformat()}..{until.isoformat()}")
        yield from list(self.orders.values())

    def update_listing(self, sku: str, available: int, *, resume: Resume = None) -> None:
        raise FlowNotSupported("the fake channel has no listings")

    def count(self, action: str) -> int:
        with self.lock:
            return sum(1 for a, _ in self.calls if a == action)


# -- the fake channel as a catalogued connector ---------------------------------------------------


class FakeSettings(BaseSettings):
    """`FAKE_*` variables: the channel is on when its webhook secret is set."""

    model_config = SettingsConfigDict(env_prefix="FAKE_", extra="ignore")

    base_url: str = "https://fake.example"
    webhook_secret: SecretStr | None = None

    @property
    def configured(self) -> bool:
        return self.webhook_secret is not None


@dataclass
class FakeSimulator(SimulatorBase):
    """The fake channel's side of the wire: it only sends signed webhooks."""

    def __post_init__(self) -> None:
        self.app = FastAPI()
        self.install(self.app)

    def place(self, event_id: str, order: Mapping[str, Any]) -> int | None:
        body = webhook(event_id, "order.new", order)
        return self.deliver(body, signed(body))


def _build(settings: FakeSettings, lent: Lent) -> FakeChannel:
    return FakeChannel()


CONNECTOR = Connector(
    name="fake",
    role=Role.CHANNEL,
    settings=FakeSettings,
    build=_build,
    simulator=lambda settings: FakeSimulator(),
    simulated=lambda base_url: FakeSettings(base_url=base_url, webhook_secret=SecretStr(SECRET)),
)
