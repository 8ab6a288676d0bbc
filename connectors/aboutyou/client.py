"""The ABOUT YOU Seller Center client and the `SalesChannel` built on it.

`AboutYouClient` is the transport: the `X-API-Key` header, ABOUT YOU's documented rate limit
per endpoint asked of a `RateLimiter` before each call, one method per endpoint, and the mapping
of ABOUT YOU's answers to `Permanent` (`Retriable` for network trouble, 429 with its Retry-After,
and 5xx comes from `connectors.http.send`). `AboutYouChannel` is what the hub calls: it turns an
`OrderView` into batch calls and polls their results.

Every write at ABOUT YOU is an asynchronous batch: the call answers `{"batchRequestId"}` and the
outcome is polled from `/api/v1/results/<kind>` until it is `completed` or `failed`. A channel
call submits the batch and polls it a few times; a batch still running raises `Pending` whose
`resume` names the batch, so the next attempt (from any worker, after any restart) polls that
batch instead of submitting the change again. A result ABOUT YOU no longer knows is not taken
for a failure: what ABOUT YOU shows of the items decides whether anything is left to send.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from connectors.base import (
    Capability,
    ChannelOrder,
    FlowNotSupported,
    ListingNotFound,
    NeedsInput,
    OrderView,
    Pending,
    Permanent,
    Resume,
    ShipmentView,
    WebhookReceiver,
)
from connectors.http import new_client, send
from connectors.ratelimit import LocalRateLimiter, RateLimit, RateLimiter

from .config import MAX_TRACKING_KEY, AboutYouSettings, ReturnLabelPolicy
from .transformers import (
    CHANNEL,
    SENT,
    BatchAccepted,
    BatchResult,
    BatchStatus,
    FulfillmentType,
    ItemStatus,
    OrdersPage,
    WireError,
    WireOrder,
    cancel_body,
    channel_order,
    first_error,
    fulfillment_type,
    iso,
    item_status,
    loads,
    return_body,
    ship_body,
    ship_item,
    stocks_body,
    to_utc,
)
from .webhooks import AboutYouWebhooks

ORDERS = "/api/v1/orders/"
# Third-party clients page with 50 or 100; ABOUT YOU documents no maximum.
PAGE_SIZE = 50
# ABOUT YOU takes absolute quantities from 0 to 1,000,000.
MAX_STOCK = 1_000_000
# A call waits at most this long for a rate-limit slot, well under a job's lease.
MAX_LIMIT_WAIT = 10.0
# When to ask again for a batch still queued or running, and for one ABOUT YOU will retry.
PENDING_AFTER = 15.0
RETRY_AFTER = 120.0

_Model = TypeVar("_Model", bound=BaseModel)


def _per_minute(endpoint: str, requests: int) -> RateLimit:
    # Limits apply per API key and per endpoint; one hub holds one key.
    return RateLimit(f"aboutyou:{endpoint}", requests, 60.0)


class Operation(StrEnum):
    """The batch kinds the hub submits, each with its endpoint and its results endpoint."""

    SHIP = "ship"
    CANCEL = "cancel"
    RETURN = "return"
    STOCKS = "stocks"


SUBMIT: dict[Operation, tuple[str, str]] = {
    Operation.SHIP: ("POST", "/api/v1/orders/ship"),
    Operation.CANCEL: ("POST", "/api/v1/orders/cancel"),
    Operation.RETURN: ("POST", "/api/v1/orders/return"),
    Operation.STOCKS: ("PUT", "/api/v1/products/stocks"),
}
RESULTS: dict[Operation, str] = {
    Operation.SHIP: "/api/v1/results/ship-orders",
    Operation.CANCEL: "/api/v1/results/cancel-orders",
    Operation.RETURN: "/api/v1/results/return-orders",
    Operation.STOCKS: "/api/v1/results/stocks",
}

# ABOUT YOU's documented limits, per minute. Ship is 200 on its endpoint page and 50 in the
# overview table: the lower figure until ABOUT YOU confirms one. The results limits of return
# and stocks are inferred from the other results endpoints (200).
ORDERS_LIMIT = _per_minute("GET /api/v1/orders/", 100)
SUBMIT_LIMITS: dict[Operation, RateLimit] = {
    Operation.SHIP: _per_minute("POST /api/v1/orders/ship", 50),
    Operation.CANCEL: _per_minute("POST /api/v1/orders/cancel", 50),
    Operation.RETURN: _per_minute("POST /api/v1/orders/return", 50),
    Operation.STOCKS: _per_minute("PUT /api/v1/products/stocks", 1000),
}
RESULT_LIMITS: dict[Operation, RateLimit] = {
    op: _per_minute(f"GET {path}", 200) for op, path in RESULTS.items()
}
RATE_LIMITS: tuple[RateLimit, ...] = (
    ORDERS_LIMIT,
    *SUBMIT_LIMITS.values(),
    *RESULT_LIMITS.values(),
)

# A stock item's errors are free text (no codes are documented); these words are how the
# connector tells "ABOUT YOU has no such SKU" from other refusals (unverified wording).
_UNKNOWN_SKU = re.compile(r"not found|does not exist|doesn't exist|unknown|no such", re.I)


class AboutYouClient:
    """One method per Seller Center endpoint the hub uses; errors classified, bodies typed."""

    def __init__(
        self,
        settings: AboutYouSettings,
        http: httpx.Client | None = None,
        *,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.http = http if http is not None else new_client(settings.base_url)
        self.limiter: RateLimiter = limiter if limiter is not None else LocalRateLimiter()

    def _headers(self) -> dict[str, str]:
        if self.settings.api_key is None:
            raise Permanent("ABOUTYOU_API_KEY is not set", code="not_configured")
        return {"X-API-Key": self.settings.api_key.get_secret_value(), "Accept": "application/json"}

    def _send(
        self,
        limit: RateLimit,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        headers = self._headers()
        self.limiter.acquire(limit, max_wait=MAX_LIMIT_WAIT)
        return send(self.http, method, url, json=json, params=params, headers=headers)

    @staticmethod
    def _read(method: str, url: str, response: httpx.Response, model: type[_Model]) -> _Model:
        if response.status_code >= 400:
            raise _refusal(method, url, response)
        try:
            return model.model_validate(loads(response.content))
        except ValidationError as exc:
            detail = first_error(exc)
        except ValueError as exc:
            detail = str(exc)
        # A 2xx we cannot read will not read better next time: a person must look.
        raise Permanent(
            f"{method} {url}: unexpected answer from ABOUT YOU: {detail}", code="bad_response"
        )

    def orders_page(self, params: Mapping[str, Any]) -> OrdersPage:
        """`GET /api/v1/orders/` with filters. The filter names (order_number, orders_from,
        orders_to, page, per_page) come from third-party clients (unverified)."""
        response = self._send(ORDERS_LIMIT, "GET", ORDERS, params=params)
        return self._read("GET", ORDERS, response, OrdersPage)

    def order(self, order_number: str) -> WireOrder | None:
        """The order numbered `order_number`, read through the list's `order_number` filter
        (ABOUT YOU documents no single-order endpoint); None when there is none."""
        page = self.orders_page({"order_number": order_number, "per_page": PAGE_SIZE})
        matching = [order for order in page.items if order.order_number == order_number]
        if page.items and not matching:
            # The filter is undocumented: if ABOUT YOU ignored it, say so rather than guess.
            raise Permanent(
                f"ABOUT YOU answered the order_number filter for {order_number!r} with other "
                "orders; the filter may not be supported",
                code="filter_ignored",
            )
        return matching[0] if matching else None

    def submit(self, operation: Operation, body: Mapping[str, Any]) -> str:
        """Submit one batch; its `batchRequestId`."""
        method, url = SUBMIT[operation]
        response = self._send(SUBMIT_LIMITS[operation], method, url, json=body)
        return self._read(method, url, response, BatchAccepted).batch_request_id

    def result(self, operation: Operation, batch_request_id: str) -> BatchResult | None:
        """The batch's result so far; None when ABOUT YOU does not know the batch (any more).

        How ABOUT YOU answers for an expired batch is not documented: 404 and 410 are read as
        "unknown"; any other refusal is an error.
        """
        url = RESULTS[operation]
        response = self._send(
            RESULT_LIMITS[operation], "GET", url, params={"batch_request_id": batch_request_id}
        )
        if response.status_code in (404, 410):
            return None
        return self._read("GET", url, response, BatchResult)


def _refusal(method: str, url: str, response: httpx.Response) -> Permanent:
    """The `Permanent` failure for a 4xx answer, carrying ABOUT YOU's own message."""
    try:
        message = WireError.model_validate(loads(response.content)).describe()
    except (ValueError, ValidationError):
        message = ""
    message = message or response.text[:200]
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
    `push_tracking`, `cancel`, `reject`, `update_listing` and `mark_returned` submit a batch and
    poll its result up to `poll_attempts` times, `poll_interval` seconds apart (`sleep` is
    injectable so tests never wait). When the batch is still running they raise `Pending`;
    called again with its `resume`, they poll that batch instead of submitting again.
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
        limiter: RateLimiter | None = None,
        poll_attempts: int = 3,
        poll_interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.client = AboutYouClient(settings, http, limiter=limiter)
        self.webhooks = AboutYouWebhooks(settings.webhook_key)
        self.poll_attempts = max(1, poll_attempts)
        self.poll_interval = poll_interval
        self._sleep = sleep
        self._clock = clock

    # -- order flow ---------------------------------------------------------------------------

    def acknowledge(self, order: OrderView) -> None:
        raise FlowNotSupported("ABOUT YOU has no acknowledge call; order.created is the receipt")

    def accept(self, order: OrderView) -> None:
        raise FlowNotSupported("ABOUT YOU has no accept call; a dropshipping order is ours")

    def reject(self, order: OrderView, reason: str, *, resume: Resume = None) -> None:
        """Refuse an order: its unshipped items are cancelled, as `cancel` does."""
        self.cancel(order, reason, resume=resume)

    def cancel(self, order: OrderView, reason: str, *, resume: Resume = None) -> None:
        """Cancel every item of the order the hub has not shipped (ABOUT YOU takes no reason).

        Done when ABOUT YOU shows each of them cancelled; `Permanent` with ABOUT YOU's
        messages names those it shipped or refused to cancel.
        """
        number = order.channel_order_id
        wanted = [
            _item_id(line.channel_line_id)
            for line in order.lines
            if line.shipped_quantity < line.quantity
        ]
        if not wanted:
            return
        what = f"cancelling order {number}"
        batch = _resumed(resume, Operation.CANCEL, number)
        result: BatchResult | None = None
        if batch is not None:
            result = self._await(Operation.CANCEL, batch, resume, what)
        wire: WireOrder | None = None
        done: set[int] = set()
        if result is None:
            wire = self._order(number)
            open_ids = [i for i in wanted if _status(wire, i) is ItemStatus.OPEN]
            if open_ids:
                batch = self.client.submit(Operation.CANCEL, cancel_body(open_ids))
                result = self._await_new(Operation.CANCEL, batch, number, what)
                if result.state is BatchStatus.COMPLETED and result.items and _all_ok(result):
                    done = set(open_ids)
                else:
                    wire = None
        # Unless the batch cancelled all it was asked to, ABOUT YOU's items now are the outcome.
        wire = wire or self._order(number)
        left = [i for i in wanted if i not in done and _status(wire, i) is not ItemStatus.CANCELLED]
        if left:
            states = ", ".join(f"{i} ({_status(wire, i)})" for i in left)
            raise Permanent(
                f"ABOUT YOU did not cancel items {states} of order {number}" + _messages(result),
                code="cancel_refused",
            )

    def push_tracking(self, order: OrderView, shipment_id: str, *, resume: Resume = None) -> None:
        """Report one parcel: its items, carrier_key, tracking key and return tracking key.

        Safe to call again: items ABOUT YOU already shows shipped are left out, and a resumed
        batch is polled, not sent again. Items ABOUT YOU shows cancelled are left out of the
        report and named in a `Permanent` once the rest is reported.
        """
        shipment = _shipment(order, shipment_id)
        wanted = _shipment_items(shipment)
        number = order.channel_order_id
        what = f"shipment {shipment_id} of order {number}"
        batch = _resumed(resume, Operation.SHIP, shipment_id)
        if batch is not None:
            result = self._await(Operation.SHIP, batch, resume, what)
            if result is not None:
                self._settle_sent(number, wanted, result, what)
                return
            # ABOUT YOU no longer knows the batch: what it shows of the items decides below.
        wire = self._order(number)
        cancelled = [i for i in wanted if _status(wire, i) is ItemStatus.CANCELLED]
        todo = [i for i in wanted if _status(wire, i) is ItemStatus.OPEN]
        strange = [i for i in wanted if _status(wire, i) is ItemStatus.UNSUPPORTED]
        if strange:
            raise Permanent(
                f"{what}: items {_ids(strange)} are not items of ABOUT YOU order {number}, or "
                "have a status this connector does not know",
                code="unknown_item",
            )
        if todo:
            item = ship_item(
                todo,
                carrier_key=self._carrier_key(shipment),
                tracking_key=_tracking_key(shipment),
                return_key=self._return_key(shipment),
            )
            batch = self.client.submit(Operation.SHIP, ship_body([item]))
            result = self._await_new(Operation.SHIP, batch, shipment_id, what)
            self._settle_sent(number, todo, result, what)
        if cancelled:
            raise Permanent(
                f"{what}: ABOUT YOU shows items {_ids(cancelled)} cancelled, so they were not "
                "reported as shipped; check what left the warehouse",
                code="shipped_cancelled_items",
            )

    def mark_returned(
        self, order: OrderView, channel_line_ids: Sequence[str], *, resume: Resume = None
    ) -> None:
        """Accept the return of shipped items, which starts the buyer's refund at ABOUT YOU.

        ABOUT YOU expects the seller to review a returned parcel within 24 hours of receipt.
        Each item is returned under the return tracking key reported when it shipped.
        """
        number = order.channel_order_id
        wanted = [_item_id(line_id) for line_id in channel_line_ids]
        subject = f"{number}:{','.join(str(i) for i in wanted)}"
        what = f"return of items {_ids(wanted)} of order {number}"
        batch = _resumed(resume, Operation.RETURN, subject)
        result: BatchResult | None = None
        if batch is not None:
            result = self._await(Operation.RETURN, batch, resume, what)
        wire: WireOrder | None = None
        if result is None:
            wire = self._order(number)
            groups: dict[str, list[int]] = {}
            for item_id in wanted:
                status = _status(wire, item_id)
                if status is ItemStatus.RETURNED:
                    continue
                item = wire.item(item_id)
                if status is not ItemStatus.SHIPPED or item is None:
                    raise Permanent(
                        f"{what}: item {item_id} is {status} at ABOUT YOU; only shipped items "
                        "can be returned",
                        code="not_returnable",
                    )
                if not item.return_tracking_key:
                    raise Permanent(
                        f"{what}: ABOUT YOU has no return tracking key for item {item_id}",
                        code="no_return_key",
                    )
                groups.setdefault(item.return_tracking_key, []).append(item_id)
            if not groups:
                return
            batch = self.client.submit(Operation.RETURN, return_body(groups))
            result = self._await_new(Operation.RETURN, batch, subject, what)
            wire = None
        wire = wire or self._order(number)
        left = [i for i in wanted if _status(wire, i) is not ItemStatus.RETURNED]
        if left:
            raise Permanent(
                f"ABOUT YOU did not mark items {_ids(left)} of order {number} returned"
                + _messages(result),
                code="return_refused",
            )

    # -- batches ------------------------------------------------------------------------------

    def _await(
        self, operation: Operation, batch: str, resume: Mapping[str, str] | None, what: str
    ) -> BatchResult | None:
        """The final (completed or failed) result of `batch`, None when ABOUT YOU does not
        know it, or `Pending` carrying `resume` while it is still queued or running."""
        state = BatchStatus.PENDING
        for attempt in range(self.poll_attempts):
            if attempt:
                self._sleep(self.poll_interval)
            result = self.client.result(operation, batch)
            if result is None:
                return None
            state = result.state
            if state in (BatchStatus.COMPLETED, BatchStatus.FAILED):
                return result
            if state is BatchStatus.UNSUPPORTED:
                raise Permanent(
                    f"{what}: ABOUT YOU batch {batch} has unknown status {result.status!r}",
                    code="unsupported_batch_status",
                )
            if state is BatchStatus.RETRY:
                break  # ABOUT YOU retries it itself; asking again at once tells nothing new
        raise Pending(
            f"{what}: ABOUT YOU batch {batch} is {state}",
            resume=dict(resume or {}),
            after=RETRY_AFTER if state is BatchStatus.RETRY else PENDING_AFTER,
        )

    def _await_new(
        self, operation: Operation, batch: str, subject: str, what: str, **extra: str
    ) -> BatchResult:
        """`_await` for a batch just submitted, whose `resume` is built here."""
        resume = {
            "operation": operation.value,
            "subject": subject,
            "batch_request_id": batch,
            **extra,
        }
        result = self._await(operation, batch, resume, what)
        if result is None:
            # ABOUT YOU gave this id a moment ago; not knowing it now is its hiccup.
            raise Pending(
                f"{what}: ABOUT YOU does not know batch {batch} yet",
                resume=resume,
                after=PENDING_AFTER,
            )
        return result

    def _settle_sent(
        self, number: str, wanted: Sequence[int], result: BatchResult, what: str
    ) -> None:
        """Done when every item of `wanted` left the warehouse at ABOUT YOU's books; a failure
        in the batch is only final once a fresh read shows the items still unsent."""
        if result.state is BatchStatus.COMPLETED and result.items and _all_ok(result):
            return
        wire = self._order(number)
        left = [i for i in wanted if _status(wire, i) not in SENT]
        if left:
            raise Permanent(
                f"ABOUT YOU did not ship items {_ids(left)} ({what})" + _messages(result),
                code="ship_refused",
            )

    # -- reading orders -----------------------------------------------------------------------

    def _order(self, number: str) -> WireOrder:
        order = self.client.order(number)
        if order is None:
            raise Permanent(f"ABOUT YOU has no order {number!r}", code="not_found")
        return order

    def fetch_order(self, channel_order_id: str) -> ChannelOrder:
        return channel_order(self._order(channel_order_id))

    def list_orders(self, since: datetime, until: datetime) -> Iterator[ChannelOrder]:
        """Dropshipping orders placed in [since, until); marketplace-fulfilled ones are not ours.

        ABOUT YOU's only time filter (`orders_from` / `orders_to`, third-party, unverified) is on
        the creation time, so a later change to an older order is not found here; its webhook
        is what reports it. No sort order is documented, and neither is `pagination.pages`:
        paging stops at `pages` when given, else at a short or empty page, and at a page that
        repeats the previous one (a server ignoring `page` would otherwise loop forever).
        """
        page_number = 1
        previous: list[str] | None = None
        while True:
            page = self.client.orders_page(
                {
                    "orders_from": iso(since),
                    "orders_to": iso(until),
                    "page": page_number,
                    "per_page": PAGE_SIZE,
                }
            )
            numbers = [order.order_number for order in page.items]
            if not numbers or numbers == previous:
                return
            for order in page.items:
                if fulfillment_type(order.fulfillment_type) is not FulfillmentType.DROPSHIPPING:
                    continue
                if since <= order.created_at < until:
                    yield channel_order(order)
            pages = page.pagination.pages
            if pages is not None and page_number >= pages:
                return
            if pages is None and len(numbers) < (page.pagination.per_page or PAGE_SIZE):
                return
            previous = numbers
            page_number += 1

    # -- stock --------------------------------------------------------------------------------

    def update_listing(self, sku: str, available: int, *, resume: Resume = None) -> None:
        """Set the sellable quantity of `sku`. An absolute figure stamped `valid_at` is safe to
        send again. A resumed batch is awaited first; if the figure has changed since, the new
        one is sent after it, with a later `valid_at`."""
        quantity = min(max(0, available), MAX_STOCK)
        what = f"stock of {sku}"
        batch = _resumed(resume, Operation.STOCKS, sku)
        valid_at = self._clock()
        if batch is not None and resume is not None:
            result = self._await(Operation.STOCKS, batch, resume, what)
            if resume.get("quantity") == str(quantity):
                if result is not None:
                    _settle_stock(sku, result)
                    return
                # ABOUT YOU lost the result: send the same figure, stamped as it was.
                valid_at = to_utc(resume.get("valid_at") or valid_at)
        batch = self.client.submit(Operation.STOCKS, stocks_body(sku, quantity, valid_at))
        result = self._await_new(
            Operation.STOCKS, batch, sku, what, quantity=str(quantity), valid_at=iso(valid_at)
        )
        _settle_stock(sku, result)

    # -- shipment details ---------------------------------------------------------------------

    def _carrier_key(self, shipment: ShipmentView) -> str:
        carrier_key = self.settings.carrier_key(shipment.carrier)
        if carrier_key is None:
            raise Permanent(
                f"carrier {shipment.carrier!r} has no ABOUT YOU carrier_key; "
                "add it to ABOUTYOU_CARRIER_MAP",
                code="unmapped_carrier",
            )
        return carrier_key

    def _return_key(self, shipment: ShipmentView) -> str:
        """The return label's tracking key, as ABOUTYOU_RETURN_LABEL_POLICY decides. Never the
        outbound tracking number: ABOUT YOU would track the buyer's return on the wrong parcel."""
        policy = self.settings.return_label_policy
        match policy:
            case ReturnLabelPolicy.FIXED:
                key = self.settings.return_label_number
                assert key is not None  # the settings refuse `fixed` without a key
                return key
            case ReturnLabelPolicy.NEEDS_INPUT:
                raise NeedsInput(
                    f"shipment {shipment.shipment_id}: ABOUT YOU needs the return label's "
                    "tracking key, which the fulfilment provider did not report; supply it, or "
                    "set ABOUTYOU_RETURN_LABEL_POLICY=fixed with ABOUTYOU_RETURN_LABEL_NUMBER",
                    code="return_tracking_key",
                )
            case _:
                raise AssertionError(policy)


def _resumed(resume: Resume, operation: Operation, subject: str) -> str | None:
    """The batch a previous attempt of this same call submitted, or None on a first attempt."""
    if resume is None:
        return None
    batch = resume.get("batch_request_id")
    if resume.get("operation") != operation.value or resume.get("subject") != subject or not batch:
        raise Permanent(
            f"resume {dict(resume)!r} does not belong to ABOUT YOU {operation} of {subject}",
            code="bad_resume",
        )
    return batch


def _all_ok(result: BatchResult) -> bool:
    return all(item.success for item in result.items)


def _messages(result: BatchResult | None) -> str:
    """ABOUT YOU's own words for what failed in `result`, to show to a person."""
    if result is None:
        return ""
    failed = [item for item in result.items if not item.success]
    parts = [f"{_subject(item.request_item)}: {item.describe()}" for item in failed]
    if result.state is BatchStatus.FAILED and not parts:
        parts.append(f"batch {result.batch_request_id} failed without item messages")
    return ": " + "; ".join(parts) if parts else ""


def _subject(request_item: Mapping[str, Any] | None) -> str:
    if not request_item:
        return "item"
    if "sku" in request_item:
        return f"SKU {request_item['sku']}"
    if "id" in request_item:
        return f"item {request_item['id']}"
    ids = request_item.get("order_items")
    if isinstance(ids, list):
        return f"items {', '.join(str(i) for i in ids)}"
    return "item"


def _settle_stock(sku: str, result: BatchResult) -> None:
    if result.state is BatchStatus.COMPLETED and result.items and _all_ok(result):
        return
    messages = _messages(result)
    failed = [item for item in result.items if not item.success]
    if any(_UNKNOWN_SKU.search(error) for item in failed for error in item.errors or ()):
        raise ListingNotFound(f"ABOUT YOU does not list SKU {sku}{messages}")
    raise Permanent(
        f"ABOUT YOU did not take the stock of {sku}{messages or ': no outcome reported'}",
        code="stock_refused",
    )


def _status(order: WireOrder, item_id: int) -> ItemStatus:
    item = order.item(item_id)
    return ItemStatus.UNSUPPORTED if item is None else item_status(item.status)


def _ids(item_ids: Sequence[int]) -> str:
    return ", ".join(str(i) for i in item_ids)


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


def _tracking_key(shipment: ShipmentView) -> str:
    if not shipment.tracking_numbers:
        raise Permanent(
            f"shipment {shipment.shipment_id} has no tracking number; ABOUT YOU requires one",
            code="no_tracking_number",
        )
    key = shipment.tracking_numbers[0]
    if not 1 <= len(key) <= MAX_TRACKING_KEY:
        raise Permanent(
            f"shipment {shipment.shipment_id}: tracking number of {len(key)} characters; "
            f"ABOUT YOU takes 1 to {MAX_TRACKING_KEY}",
            code="bad_tracking_number",
        )
    return key
