"""The ABOUT YOU Seller Center client and the `SalesChannel` built on it.

`AboutYouClient` is the transport: the `X-API-Key` header, one method per endpoint, and the
mapping of ABOUT YOU's answers to `Permanent` (`Retriable` for network trouble, 429 and 5xx comes
from `connectors.http.send`). `AboutYouChannel` is what the hub calls: it turns an `OrderView`
into batch calls and waits, boundedly, for their results.

Order listing: `GET /api/v1/orders/?updated_from=&updated_to=&page=&per_page=` pages by page
number (`pagination.last_page` says when to stop), `per_page` at most 100.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from connectors.base import (
    Capability,
    ChannelOrder,
    FlowNotSupported,
    ListingNotFound,
    OrderView,
    Permanent,
    Resume,
    Retriable,
    ShipmentView,
    WebhookReceiver,
)
from connectors.http import new_client, send

from .config import AboutYouSettings
from .transformers import (
    CHANNEL,
    BatchAccepted,
    BatchResult,
    BatchResultItem,
    BatchStatus,
    CarriersPage,
    FulfillmentType,
    ItemStatus,
    OrdersPage,
    WireError,
    WireOrder,
    cancel_body,
    channel_order,
    fulfillment_type,
    item_status,
    loads,
    ship_body,
    stocks_body,
)
from .webhooks import AboutYouWebhooks

PAGE_SIZE = 100
SHIP_RESULTS = "/api/v1/results/ship-orders"
CANCEL_RESULTS = "/api/v1/results/cancel-orders"
STOCK_RESULTS = "/api/v1/results/stocks"

# Per-item outcomes that mean "the state we asked for already holds": a retried call after a
# lost answer must count them as done, not flag the order.
ALREADY_SHIPPED = "already_shipped"
ALREADY_CANCELLED = "already_cancelled"

_Model = TypeVar("_Model", bound=BaseModel)


class AboutYouClient:
    """One method per Seller Center endpoint the hub uses; errors classified, bodies typed."""

    def __init__(self, settings: AboutYouSettings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self.http = http if http is not None else new_client(settings.base_url)

    def _headers(self) -> dict[str, str]:
        if self.settings.api_key is None:
            raise Permanent("ABOUTYOU_API_KEY is not set", code="not_configured")
        return {"X-API-Key": self.settings.api_key.get_secret_value(), "Accept": "application/json"}

    def _call(
        self,
        method: str,
        url: str,
        model: type[_Model],
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> _Model:
        response = send(self.http, method, url, json=json, params=params, headers=self._headers())
        if response.status_code >= 400:
            raise _refusal(method, url, response)
        try:
            return model.model_validate(loads(response.content))
        except (ValueError, ValidationError) as exc:
            # A 2xx we cannot read will not read better next time: a person must look.
            raise Permanent(
                f"{method} {url}: unexpected answer from ABOUT YOU: {exc}", code="bad_response"
            ) from None

    def get_order(self, order_id: int) -> WireOrder:
        return self._call("GET", f"/api/v1/orders/{order_id}", WireOrder)

    def orders_page(self, params: dict[str, Any]) -> OrdersPage:
        return self._call("GET", "/api/v1/orders/", OrdersPage, params=params)

    def ship(self, body: dict[str, Any]) -> str:
        return self._call("POST", "/api/v1/orders/ship", BatchAccepted, json=body).batch_request_id

    def cancel(self, body: dict[str, Any]) -> str:
        return self._call(
            "POST", "/api/v1/orders/cancel", BatchAccepted, json=body
        ).batch_request_id

    def put_stocks(self, body: dict[str, Any]) -> str:
        return self._call(
            "PUT", "/api/v1/products/stocks", BatchAccepted, json=body
        ).batch_request_id

    def batch_result(self, results_path: str, batch_request_id: str) -> BatchResult:
        return self._call(
            "GET", results_path, BatchResult, params={"batch_request_id": batch_request_id}
        )

    def carriers(self) -> list[str]:
        """The `carrier_key`s ABOUT YOU accepts, for checking ABOUTYOU_CARRIER_MAP."""
        return [c.key for c in self._call("GET", "/api/v1/carriers/", CarriersPage).items]


def _refusal(method: str, url: str, response: httpx.Response) -> Permanent:
    """The `Permanent` failure for a 4xx answer, carrying ABOUT YOU's own message."""
    try:
        message = WireError.model_validate(loads(response.content)).describe()
    except (ValueError, ValidationError):
        message = response.text[:200]
    status = response.status_code
    if status in (401, 403):
        return Permanent(
            f"ABOUT YOU refused ABOUTYOU_API_KEY ({status}): {message}", code="unauthorized"
        )
    if status == 404:
        return Permanent(f"{method} {url}: not found at ABOUT YOU: {message}", code="not_found")
    if status in (400, 422):
        return Permanent(f"ABOUT YOU rejected {method} {url}: {message}", code="invalid_request")
    return Permanent(f"{method} {url}: {status} {message}", code=f"http_{status}")


class AboutYouChannel:
    """ABOUT YOU order delegation (dropshipping) as a `SalesChannel`.

    ABOUT YOU has no acknowledge or accept call: an order is ours once `order.created` arrives.
    Shipping, cancelling and stock updates are batches whose result is polled up to
    `poll_attempts` times, `poll_interval` seconds apart (`sleep` is injectable so tests never
    wait). A batch still pending after that raises `Retriable`; its id is remembered, so the
    job's retry polls the same batch instead of sending the items again.
    """

    name: str = CHANNEL
    capabilities = frozenset({Capability.REJECT, Capability.CANCEL, Capability.LISTINGS})
    # Declared as the Protocol's type: SalesChannel's attribute is mutable, hence invariant.
    webhooks: WebhookReceiver

    def __init__(
        self,
        settings: AboutYouSettings,
        http: httpx.Client | None = None,
        *,
        poll_attempts: int = 3,
        poll_interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.client = AboutYouClient(settings, http)
        self.webhooks = AboutYouWebhooks(settings.webhook_key)
        self.poll_attempts = max(1, poll_attempts)
        self.poll_interval = poll_interval
        self._sleep = sleep
        # (action, order id, shipment id) -> batch ABOUT YOU is still processing.
        self._pending: dict[tuple[str, str, str], str] = {}

    # -- order flow ---------------------------------------------------------------------------

    def acknowledge(self, order: OrderView) -> None:
        raise FlowNotSupported("ABOUT YOU has no acknowledge call; order.created is the receipt")

    def accept(self, order: OrderView) -> None:
        raise FlowNotSupported("ABOUT YOU has no accept call; a dropshipping order is ours")

    def reject(self, order: OrderView, reason: str, *, resume: Resume = None) -> None:
        """Cancel every item of the order not yet shipped (ABOUT YOU takes no reason text)."""
        self.cancel(order, reason, resume=resume)

    def cancel(self, order: OrderView, reason: str, *, resume: Resume = None) -> None:
        """Cancel every item of the order not yet shipped (ABOUT YOU takes no reason text)."""
        ids = [
            _item_id(line.channel_line_id)
            for line in order.lines
            if line.shipped_quantity < line.quantity
            and line.attributes.get("status") != ItemStatus.CANCELLED.value
        ]
        if not ids:
            return
        key = ("cancel", order.order_id, "")
        batch = self._pending.get(key)
        if batch is None:
            batch = self.client.cancel(cancel_body(ids))
            self._pending[key] = batch
        result = self._await(CANCEL_RESULTS, batch, key, f"cancelling order {order.order_id}")
        _raise_failures(result.items, tolerated=ALREADY_CANCELLED, action="cancel")

    def push_tracking(self, order: OrderView, shipment_id: str, *, resume: Resume = None) -> None:
        """Report one parcel: its items, carrier_key and tracking keys, then await the batch.

        ABOUT YOU requires a `return_tracking_key`; the 3PL issues no return label, so the
        outbound tracking key is sent in its place, which keeps the parcel traceable from
        ABOUT YOU's side. A retry never ships an item twice: a remembered batch is polled
        again, items ABOUT YOU already shows as shipped are left out, and an item-level
        "already shipped" outcome counts as done.
        """
        shipment = _shipment(order, shipment_id)
        key = ("ship", order.order_id, shipment_id)
        batch = self._pending.get(key)
        if batch is not None:
            try:
                result = self._await(SHIP_RESULTS, batch, key, f"shipment {shipment_id}")
            except Permanent as exc:
                if exc.code != "not_found":
                    raise
                # ABOUT YOU expired the batch result: fall through and check the items instead.
                self._pending.pop(key, None)
            else:
                _raise_failures(result.items, tolerated=ALREADY_SHIPPED, action="ship")
                return
        item_ids = self._unshipped(order, _shipment_items(shipment))
        if not item_ids:
            return
        carrier_key = self.settings.carrier_key(shipment.carrier)
        if carrier_key is None:
            raise Permanent(
                f"carrier {shipment.carrier!r} has no ABOUT YOU carrier_key; "
                "add it to ABOUTYOU_CARRIER_MAP",
                code="unmapped_carrier",
            )
        if not shipment.tracking_numbers:
            raise Permanent(
                f"shipment {shipment_id} has no tracking number; ABOUT YOU requires one",
                code="no_tracking_number",
            )
        tracking = shipment.tracking_numbers[0]
        batch = self.client.ship(
            ship_body(item_ids, carrier_key=carrier_key, tracking_key=tracking, return_key=tracking)
        )
        self._pending[key] = batch
        result = self._await(SHIP_RESULTS, batch, key, f"shipment {shipment_id}")
        _raise_failures(result.items, tolerated=ALREADY_SHIPPED, action="ship")

    def _unshipped(self, order: OrderView, item_ids: Sequence[int]) -> list[int]:
        """`item_ids` less those ABOUT YOU already reports shipped or returned."""
        wire = self._wire_order(order.channel_order_id)
        done = {
            item.id
            for item in wire.order_items
            if item_status(item.status) in (ItemStatus.SHIPPED, ItemStatus.RETURNED)
        }
        return [item_id for item_id in item_ids if item_id not in done]

    def _await(
        self, results_path: str, batch: str, key: tuple[str, str, str] | None, what: str
    ) -> BatchResult:
        """The completed result of `batch`, or `Retriable` when it is still pending."""
        for attempt in range(self.poll_attempts):
            if attempt:
                self._sleep(self.poll_interval)
            result = self.client.batch_result(results_path, batch)
            state = result.state
            if state is BatchStatus.COMPLETED:
                if key is not None:
                    self._pending.pop(key, None)
                return result
            if state is BatchStatus.UNSUPPORTED:
                raise Permanent(
                    f"{what}: ABOUT YOU batch {batch} has unknown status {result.status!r}",
                    code="unsupported_batch_status",
                )
        raise Retriable(
            f"{what}: ABOUT YOU batch {batch} still pending after {self.poll_attempts} polls",
            after=self.poll_interval * self.poll_attempts,
        )

    # -- reading orders -----------------------------------------------------------------------

    def _wire_order(self, channel_order_id: str) -> WireOrder:
        if channel_order_id.isdigit():
            return self.client.get_order(int(channel_order_id))
        # Orders delivered without an id are keyed by their order number (see transformers).
        page = self.client.orders_page({"order_number": channel_order_id, "per_page": 1})
        for order in page.items:
            if order.order_number == channel_order_id:
                return order
        raise Permanent(f"ABOUT YOU has no order {channel_order_id!r}", code="not_found")

    def fetch_order(self, channel_order_id: str) -> ChannelOrder:
        return channel_order(self._wire_order(channel_order_id))

    def list_orders(self, since: datetime, until: datetime) -> Iterator[ChannelOrder]:
        """Dropshipping orders updated in [since, until); marketplace-fulfilled ones are not
        ours and are left out, as their webhooks are."""
        page_number = 1
        while True:
            page = self.client.orders_page(
                {
                    "updated_from": _iso(since),
                    "updated_to": _iso(until),
                    "page": page_number,
                    "per_page": PAGE_SIZE,
                }
            )
            for order in page.items:
                if fulfillment_type(order.fulfillment_type) is FulfillmentType.DROPSHIPPING:
                    yield channel_order(order)
            if page_number >= page.pagination.last_page or not page.items:
                return
            page_number += 1

    # -- stock --------------------------------------------------------------------------------

    def update_listing(self, sku: str, available: int, *, resume: Resume = None) -> None:
        """Set the sellable quantity of `sku`; setting an absolute number is safe to repeat."""
        batch = self.client.put_stocks(stocks_body({sku: max(0, available)}))
        result = self._await(STOCK_RESULTS, batch, None, f"stock of {sku}")
        try:
            _raise_failures(result.items, tolerated=None, action="update stock")
        except Permanent as exc:
            if exc.code != "not_found":
                raise
            raise ListingNotFound(exc.reason) from None


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _item_id(channel_line_id: str) -> int:
    try:
        return int(channel_line_id)
    except ValueError:
        raise Permanent(
            f"line {channel_line_id!r} is not an ABOUT YOU order item id", code="bad_line"
        ) from None


def _shipment(order: OrderView, shipment_id: str) -> ShipmentView:
    for shipment in order.shipments:
        if shipment.shipment_id == shipment_id:
            return shipment
    raise Permanent(f"order {order.order_id} has no shipment {shipment_id}", code="no_shipment")


def _shipment_items(shipment: ShipmentView) -> list[int]:
    """The order item ids in a parcel, each once: an ABOUT YOU item is a single unit."""
    ids: list[int] = []
    for line in shipment.lines:
        item_id = _item_id(line.channel_line_id)
        if item_id not in ids:
            ids.append(item_id)
    return ids


def _raise_failures(
    items: Sequence[BatchResultItem], *, tolerated: str | None, action: str
) -> None:
    """`Permanent` with ABOUT YOU's messages when any item of a completed batch failed."""
    failures = [
        i for i in items if not i.success and (tolerated is None or i.error_code != tolerated)
    ]
    if failures:
        messages = "; ".join(
            f"{f.subject}: {f.error_message or f.error_code or 'failed'}" for f in failures
        )
        raise Permanent(f"ABOUT YOU could not {action}: {messages}", code=failures[0].error_code)
