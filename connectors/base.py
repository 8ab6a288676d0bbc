"""Canonical data and the contracts every connector implements.

A connector turns one external system's wire format into these types and back. It knows nothing
of the hub's database: the hub hands it plain views (`OrderView`) and receives plain results.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

# ---------------------------------------------------------------------------------------------
# Failure kinds. Only the job layer decides whether to try again.
# ---------------------------------------------------------------------------------------------


class ConnectorError(Exception):
    """Base of the three kinds of failure an outbound call can end in."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Retriable(ConnectorError):
    """The call may succeed later (timeouts, 5xx, 429, "too early"); `after` hints at seconds."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class Permanent(ConnectorError):
    """The call will fail the same way every time; a person must act. `reason` is shown to them."""

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.code = code


class FlowNotSupported(ConnectorError):
    """The external system has no such operation (Depop has no acknowledge call, for example)."""


class ProviderOrderNotFound(Permanent):
    """The fulfilment provider holds no order under this id: nothing of it can ship."""


class ListingNotFound(Permanent):
    """The channel does not list this SKU: there is no quantity to update there."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, code="listing_not_found")


class NeedsInput(Permanent):
    """The call needs something only a person can give (a serial number for a rented unit).
    The hub flags the order with `reason` and holds the call until it is given."""

    def __init__(self, reason: str, code: str = "needs_input") -> None:
        super().__init__(reason, code=code)


class Pending(Retriable):
    """The system took the request and works on it asynchronously (an ABOUT YOU batch).

    The job layer keeps `resume` and passes it back to the same call after `after` seconds;
    the call then asks for the outcome instead of sending the request again, so a restarted or
    different worker never submits the same change twice.
    """

    def __init__(self, reason: str, resume: Mapping[str, str], after: float | None = None) -> None:
        super().__init__(reason, after=after)
        self.resume = dict(resume)


# What a call that raised `Pending` is given back on its next attempt (None on the first).
Resume = Mapping[str, str] | None


class Capability(StrEnum):
    """What a connector can do. The hub asks its connector; it keeps no table of which system
    does what, so adding a connector is its package and one line in the registry's list."""

    ACKNOWLEDGE = "acknowledge"  # tells the channel an order arrived, before accepting it
    ACCEPT = "accept"  # the channel waits for the seller's accept before the order may ship
    REJECT = "reject"  # the seller may refuse an order it cannot fulfil (else: hold and flag)
    CANCEL = "cancel"  # the seller may cancel an accepted order at the channel
    REFUND = "refund"  # cancelling gives the buyer's money back through the channel
    TRACKING_PER_PARCEL = "tracking_per_parcel"  # tracking is reported per channel parcel
    SERIAL_NUMBERS = "serial_numbers"  # channel: wants serials per unit; provider: reports them
    LISTINGS = "listings"  # the channel shows an available quantity the hub keeps current
    # provider: names products by its own ids; the hub keeps the seller's SKU -> provider id
    # map in its database (`SkuMapStore`) and has it refreshed on a schedule (`SkuMapping`)
    SKU_MAP = "sku_map"
    # provider: publishes a feed of its events that reconciliation reads from a cursor
    # (`EventFeed`), so an order whose webhook was lost still moves
    EVENT_FEED = "event_feed"


class Unauthenticated(Exception):
    """A webhook whose signature, token or timestamp does not check out. The hub answers 401."""


class MalformedPayload(Exception):
    """An authenticated webhook the connector cannot read. The hub stores it as failed."""


# ---------------------------------------------------------------------------------------------
# Canonical order, as a channel reports it.
# ---------------------------------------------------------------------------------------------


class ChannelOrderStatus(StrEnum):
    """Where the channel says the order stands, mapped exhaustively from its own statuses."""

    OPEN = "open"  # placed, waiting for the seller to fulfil it
    SHIPPED = "shipped"  # the channel considers it shipped, delivered or completed
    CANCELLED = "cancelled"  # cancelled, rejected or fully refunded at the channel
    UNSUPPORTED = "unsupported"  # a status the connector does not know: never guessed


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    line1: str
    city: str
    country_code: str
    line2: str | None = None
    postal_code: str | None = None
    region: str | None = None
    company: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelOrderLine:
    """One line as the channel sent it; `quantity` units of one SKU at `unit_price`."""

    channel_line_id: str
    sku: str | None
    quantity: int
    unit_price: Decimal
    parcel_ref: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelOrder:
    channel: str
    channel_order_id: str
    status: ChannelOrderStatus
    channel_status: str
    currency: str
    total_amount: Decimal
    placed_at: datetime
    shipping_address: Address | None
    lines: tuple[ChannelOrderLine, ...]
    buyer_email: str | None = None
    # The delivery service the buyer chose at the channel, in the channel's own words
    # ("standard", "express", a carrier's service name); a provider maps it to its ship method.
    shipping_service: str | None = None
    # Channel-specific facts kept on the order (fees, seller_offer_reference, refund_summary...).
    # Values must be JSON-serialisable; money as decimal strings. `prices_known: False` on a
    # placed order tells the hub to take the order from `fetch_order` instead (topi's webhook).
    attributes: Mapping[str, Any] = field(default_factory=dict)


# The largest amount the canonical model takes as a price or a total: far beyond any real
# order, and well inside what the hub's money column and every provider's API hold exactly.
MAX_AMOUNT = Decimal(10) ** 12


def amount_problem(amount: Decimal) -> str | None:
    """Why `amount` is no price or total an order can have, or None. A channel's figure is
    carried into the canonical model as sent, whatever it is: the hub decides what to do."""
    if not amount.is_finite():
        return f"{amount} is not a finite number"
    if amount < 0:
        return f"{amount} is negative"
    if amount > MAX_AMOUNT:
        return f"{amount} is over {MAX_AMOUNT:,}"
    return None


def money_problems(order: ChannelOrder) -> list[str]:
    """What is wrong with the order's money: each out-of-range price or total, named."""
    found = []
    for line in order.lines:
        problem = amount_problem(line.unit_price)
        if problem:
            found.append(f"unit price of line {line.channel_line_id}: {problem}")
    problem = amount_problem(order.total_amount)
    if problem:
        found.append(f"total: {problem}")
    return found


# ---------------------------------------------------------------------------------------------
# Fulfilment, as a provider reports it.
# ---------------------------------------------------------------------------------------------


class ProviderOrderStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    ERROR = "error"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class FulfilmentLine:
    line_id: str  # the hub's OrderLine id; providers that carry a line id echo it back
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class FulfilmentRequest:
    order_id: str  # the hub's order id: the provider's external order id, so retries dedupe
    channel: str
    channel_order_id: str
    placed_at: datetime
    shipping_address: Address
    lines: tuple[FulfilmentLine, ...]
    # The buyer's delivery service at the channel (`ChannelOrder.shipping_service`); the
    # provider turns it into its own ship method through its configured mapping
    # (`connectors.shipmethods.ShipMethodMap`).
    shipping_service: str | None = None
    # True when no earlier attempt can have sent this request (a job's first try): a provider
    # that looks for the order an earlier attempt may have created can skip the look-up.
    first_try: bool = False


@dataclass(frozen=True, slots=True)
class ProviderShipmentLine:
    sku: str
    quantity: int
    line_id: str | None = None
    serial_numbers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderShipment:
    """One package. `shipment_id` is stable across polls and webhooks for the same package."""

    shipment_id: str
    carrier: str | None
    tracking_numbers: tuple[str, ...]
    tracking_url: str | None
    shipped_at: datetime | None
    lines: tuple[ProviderShipmentLine, ...]
    service: str | None = None


@dataclass(frozen=True, slots=True)
class FulfilmentStatus:
    provider_order_id: str
    external_order_id: str | None
    status: ProviderOrderStatus
    raw_status: str
    shipments: tuple[ProviderShipment, ...] = ()


# ---------------------------------------------------------------------------------------------
# Webhook events, after verification and parsing.
# ---------------------------------------------------------------------------------------------


class EventKind(StrEnum):
    ORDER_PLACED = "order_placed"  # `order` is set
    ORDER_CANCELLED = "order_cancelled"  # the channel or the customer cancelled the whole order
    LINES_CANCELLED = "lines_cancelled"  # `line_ids` (channel line ids) were cancelled
    ORDER_CHANGED = "order_changed"  # something changed; fetch the order to learn what (refunds)
    ORDER_NOTICE = "order_notice"  # recorded in the history only (completed, shipped, returned)
    # `fulfilment` is set; or, from a provider whose events carry ids only, `channel_order_id`
    # names the provider's order and the hub reads it (`FulfilmentProvider.get_order`)
    FULFILMENT_UPDATE = "fulfilment_update"
    IGNORED = "ignored"  # authentic but not ours to act on; `note` says why


@dataclass(frozen=True, slots=True)
class WebhookIdentity:
    """What the hub needs at receipt: the id to dedupe on and the channel's event name."""

    external_id: str
    event_type: str


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    kind: EventKind
    event_type: str
    channel_order_id: str | None = None
    order: ChannelOrder | None = None
    line_ids: tuple[str, ...] = ()
    fulfilment: FulfilmentStatus | None = None
    note: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


class WebhookReceiver(Protocol):
    """Verifies and reads one system's webhooks. `headers` is case-insensitive (use lower case)."""

    def authenticate(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        """Raise `Unauthenticated` unless the raw bytes are proven to come from the system."""
        ...

    def identify(self, headers: Mapping[str, str], body: bytes) -> WebhookIdentity:
        """The dedupe id and event name; raise `MalformedPayload` when they cannot be read."""
        ...

    def parse(self, body: bytes, identity: WebhookIdentity) -> ChannelEvent:
        """The canonical event; raise `MalformedPayload` when the body cannot be read."""
        ...


# ---------------------------------------------------------------------------------------------
# What the hub shows a connector of an order it holds.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderLineView:
    line_id: str
    channel_line_id: str
    sku: str | None
    quantity: int
    shipped_quantity: int
    unit_price: Decimal
    parcel_ref: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ShipmentLineView:
    channel_line_id: str
    sku: str | None
    quantity: int
    serial_numbers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ShipmentView:
    shipment_id: str
    carrier: str | None
    tracking_numbers: tuple[str, ...]
    tracking_url: str | None
    shipped_at: datetime | None
    lines: tuple[ShipmentLineView, ...]
    pushed_to_channel: bool


@dataclass(frozen=True, slots=True)
class OrderView:
    order_id: str
    channel: str
    channel_order_id: str
    currency: str
    lines: tuple[OrderLineView, ...]
    shipments: tuple[ShipmentView, ...]  # oldest first
    attributes: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The two roles an external system can play.
# ---------------------------------------------------------------------------------------------


class TokenStore(Protocol):
    """Durable home for credentials a connector renews itself (the hub keeps them in its DB)."""

    def load(self, key: str) -> Mapping[str, str] | None: ...

    def save(self, key: str, value: Mapping[str, str]) -> None: ...


class LeasedTokenStore(TokenStore, Protocol):
    """A `TokenStore` that workers in many processes share safely, for credentials that are
    spent by their use (single-use OAuth refresh tokens).

    One worker at a time renews a key: it takes the renewal lease, reads the current value,
    makes the outbound call holding no transaction, then stores the new value only if the
    stored one is still the value it read. Each method is one short transaction.
    """

    def acquire(self, key: str, owner: str, seconds: float) -> bool:
        """Take the renewal lease on `key` for `seconds`; False while another owner holds an
        unexpired one. Taking it again as its owner extends it."""
        ...

    def release(self, key: str, owner: str) -> None:
        """Give the lease up (nothing happens when `owner` no longer holds it)."""
        ...

    def compare_and_set(
        self, key: str, expected: Mapping[str, str] | None, value: Mapping[str, str]
    ) -> bool:
        """Store `value` if the stored value equals `expected` (None: nothing stored); False
        and nothing changed otherwise."""
        ...


@runtime_checkable
class SalesChannel(Protocol):
    """A place orders come from. `capabilities` says which calls mean something; a call the
    channel lacks raises `FlowNotSupported`. A call that may raise `Pending` takes `resume`."""

    name: str
    capabilities: frozenset[Capability]
    webhooks: WebhookReceiver

    def acknowledge(self, order: OrderView) -> None: ...

    def accept(self, order: OrderView) -> None: ...

    def reject(self, order: OrderView, reason: str, *, resume: Resume = None) -> None: ...

    def cancel(self, order: OrderView, reason: str, *, resume: Resume = None) -> None:
        """The seller cancels the order's open units at the channel (refunding the buyer
        where the channel does that). `FlowNotSupported` names the steps a person must take."""
        ...

    def push_tracking(self, order: OrderView, shipment_id: str, *, resume: Resume = None) -> None:
        """Tell the channel about shipment `shipment_id` of `order`; safe to call again."""
        ...

    def fetch_order(self, channel_order_id: str) -> ChannelOrder: ...

    def list_orders(self, since: datetime, until: datetime) -> Iterator[ChannelOrder]:
        """Every order placed or changed in [since, until), all pages."""
        ...

    def update_listing(self, sku: str, available: int, *, resume: Resume = None) -> None:
        """Show `available` units of `sku` (0: mark as sold / out of stock); `ListingNotFound`
        when the channel does not list it."""
        ...


class SkuMapStore(Protocol):
    """Durable home of a provider's SKU map (the hub keeps it in its database)."""

    def load(self, provider: str) -> Mapping[str, str]:
        """The seller's SKU -> the provider's product id, as last stored."""
        ...

    def replace(self, provider: str, mapping: Mapping[str, str]) -> None:
        """Store `mapping` as the whole map of `provider`."""
        ...


@runtime_checkable
class SkuMapping(Protocol):
    """A provider with `Capability.SKU_MAP`: it reads its product list into its `SkuMapStore`."""

    def refresh_sku_map(self) -> int:
        """Read every product from the provider and store the map; how many SKUs it maps."""
        ...


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One page of a provider's event feed: the provider order ids its events name, and the
    cursor to read on from (None: the feed has nothing further yet; keep the one you had)."""

    provider_order_ids: tuple[str, ...]
    next_cursor: str | None


@runtime_checkable
class EventFeed(Protocol):
    """A provider with `Capability.EVENT_FEED`."""

    def read_events(self, cursor: str | None) -> FeedPage:
        """The page after `cursor` (None: the feed's start, as the provider defines it)."""
        ...


@runtime_checkable
class FulfilmentProvider(Protocol):
    """A warehouse or 3PL that ships orders."""

    name: str
    capabilities: frozenset[Capability]
    webhooks: WebhookReceiver | None

    def create_order(self, request: FulfilmentRequest) -> str:
        """The provider's order id. Idempotent on `request.order_id`: a retry never duplicates."""
        ...

    def find_order_id(self, order_id: str) -> str | None:
        """The provider's id of the order created for hub order `order_id`, or None when it
        holds none. Never creates one: what a retry asks for an order cancelled since an
        earlier attempt that may have reached the provider."""
        ...

    def get_order(self, provider_order_id: str) -> FulfilmentStatus: ...

    def cancel_order(self, provider_order_id: str) -> None:
        """Raise `Permanent` when the provider can no longer cancel (already shipped)."""
        ...
