"""The topi Seller API client and the `TopiChannel` sales channel built on it.

`TopiClient` is the transport: OAuth2 client credentials, the bearer header, one renewal on a
401, and the mapping of topi's answers to `Permanent`. `TopiChannel` is the `SalesChannel`: it
turns the hub's calls into topi requests and makes each of them safe to repeat.

Rate limits: topi documents none for the calls made here (its only limit is on concurrent
catalog imports), so no limiter is asked; a 429 or 503 is `Retriable`, honouring `Retry-After`
when sent. topi has no idempotency key either, which is why every write is checked against the
order's state before it is repeated.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import structlog
from pydantic import ValidationError

from connectors.base import (
    Capability,
    ChannelOrder,
    FlowNotSupported,
    NeedsInput,
    OrderView,
    Permanent,
    Resume,
    Retriable,
    WebhookReceiver,
)
from connectors.http import deadline, new_client, send
from connectors.topi.config import TopiSettings
from connectors.topi.transformers import (
    UnmappableLine,
    WireError,
    WireOrder,
    WireOrdersPage,
    WireToken,
    loads,
    parse_order,
    serial_required,
    shipment_body,
    sku_source_of,
    to_channel_order,
    units_to_report,
)
from connectors.topi.webhooks import TopiWebhooks

log = structlog.get_logger(__name__)

CREDENTIALS_HINT = "check TOPI_CLIENT_ID and TOPI_CLIENT_SECRET"
# The scope topi's authentication guide puts in every client-credentials request; the token
# carries the scopes assigned to the client whatever is asked.
TOKEN_SCOPE = "client"
PAGE_SIZE = 100
# topi's order id pattern (`^[0-9A-Za-z\-]+$`); anything else is refused before a request.
ORDER_ID = re.compile(r"^[0-9A-Za-z\-]+$")
# A token is renewed this long before topi says it expires (at most 5 minutes, 10 % of its life),
# so a request never leaves with a token that dies in flight.
MAX_RENEWAL_MARGIN = 300.0

# Order statuses meaning an earlier call of each kind already took effect (a retried call that
# topi refuses because the order moved on).
DONE_AFTER: Mapping[str, frozenset[str]] = {
    "acknowledge": frozenset(
        {"acknowledged", "accepted", "confirmed", "partially_fulfilled", "completed"}
    ),
    "accept": frozenset({"accepted", "confirmed", "partially_fulfilled", "completed"}),
    "reject": frozenset({"rejected"}),
}


class TopiApiError(Permanent):
    """topi refused a request (a 4xx other than a renewable 401); `status` is the HTTP status."""

    def __init__(self, reason: str, code: str | None, status: int) -> None:
        super().__init__(reason, code)
        self.status = status


def _error(method: str, path: str, response: httpx.Response) -> Exception:
    status = response.status_code
    name: str | None = None
    message = response.text[:300]
    try:
        body = loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        try:
            wire = WireError.model_validate(body)
        except ValidationError:
            wire = WireError()
        name = wire.name
        message = wire.message or message
        if wire.temporary or wire.timeout:
            return Retriable(f"topi {method} {path}: {status} {name}: {message}")
    if status == 403:
        return TopiApiError(
            f"topi {method} {path}: 403 forbidden: the client lacks a scope ({message}); "
            f"{CREDENTIALS_HINT}",
            name or "forbidden",
            status,
        )
    if status in (408, 425):
        return Retriable(f"topi {method} {path}: {status} {message}")
    return TopiApiError(
        f"topi {method} {path}: {status} {name or 'error'}: {message}", name or str(status), status
    )


class TopiClient:
    """Authenticated requests to topi's Seller API; thread-safe, one token shared by all."""

    def __init__(
        self,
        settings: TopiSettings,
        http: httpx.Client | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.http = http if http is not None else new_client(settings.base_url)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def _fetch_token(self) -> tuple[str, float]:
        secret = self.settings.client_secret
        if not self.settings.client_id or secret is None:
            raise Permanent(f"topi is not configured: {CREDENTIALS_HINT}", code="not_configured")
        response = send(
            self.http,
            "POST",
            self.settings.token_url,
            data={"grant_type": "client_credentials", "scope": TOKEN_SCOPE},
            auth=(self.settings.client_id, secret.get_secret_value()),
        )
        if response.status_code in (400, 401, 403):
            raise Permanent(
                f"topi refused the client credentials ({response.status_code} "
                f"{response.text[:200]}): {CREDENTIALS_HINT}",
                code="invalid_client",
            )
        if not response.is_success:
            raise Permanent(
                f"topi token endpoint answered {response.status_code}: {response.text[:200]}",
                code=str(response.status_code),
            )
        try:
            token = WireToken.model_validate(loads(response.content))
        except ValueError as exc:
            raise Permanent(f"topi token endpoint answered an unreadable token: {exc}") from exc
        margin = min(MAX_RENEWAL_MARGIN, token.expires_in * 0.1)
        log.info("topi.token.issued", expires_in=token.expires_in)
        return token.access_token, self._clock() + token.expires_in - margin

    def access_token(self, *, rejected: str | None = None) -> str:
        """A valid access token, fetched when there is none, it is about to expire, or topi just
        refused `rejected` (unless another thread has already replaced that one)."""
        with self._lock:
            if rejected is not None and self._token == rejected:
                self._token = None
            if self._token is None or self._clock() >= self._renew_at:
                self._token, self._renew_at = self._fetch_token()
            return self._token

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """One API call, token included, within TOPI_CALL_DEADLINE_SECONDS; the decoded JSON
        body of a 2xx answer (money as Decimal)."""
        with deadline(self.settings.call_deadline_seconds):
            return self._request(method, path, json=json, params=params)

    def _request(
        self, method: str, path: str, *, json: Any, params: Mapping[str, Any] | None
    ) -> Any:
        token = self.access_token()
        response = send(
            self.http, method, self._url(path), json=json, params=params, headers=_bearer(token)
        )
        if response.status_code == 401:
            log.info("topi.token.rejected", path=path)
            token = self.access_token(rejected=token)
            response = send(
                self.http,
                method,
                self._url(path),
                json=json,
                params=params,
                headers=_bearer(token),
            )
            if response.status_code == 401:
                raise Permanent(
                    f"topi {method} {path}: 401 with a freshly issued token: {CREDENTIALS_HINT}",
                    code="unauthorized",
                )
        if not response.is_success:
            raise _error(method, path, response)
        if not response.content:
            return None
        try:
            return loads(response.content)
        except ValueError as exc:
            raise Permanent(f"topi {method} {path}: unreadable answer: {exc}") from exc

    def _url(self, path: str) -> str:
        # A caller-supplied http client (tests, the demo) may have no base URL of its own.
        if str(self.http.base_url):
            return path
        return self.settings.base_url.rstrip("/") + path


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _order_path(channel_order_id: str) -> str:
    if not ORDER_ID.match(channel_order_id):
        raise Permanent(f"{channel_order_id!r} is not a topi order id", code="invalid_order_id")
    return f"/v1/orders/{quote(channel_order_id)}"


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class TopiChannel:
    """topi as a `SalesChannel`: acknowledge, accept or reject orders and report shipped units."""

    name: str = "topi"
    capabilities = frozenset(
        {Capability.ACKNOWLEDGE, Capability.ACCEPT, Capability.REJECT, Capability.SERIAL_NUMBERS}
    )

    def __init__(
        self,
        settings: TopiSettings,
        http: httpx.Client | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.client = TopiClient(settings, http, clock=clock)
        self.webhooks: WebhookReceiver = TopiWebhooks(
            settings.webhook_secret_values(), sku_source=settings.sku_source
        )

    # -- order transitions ----------------------------------------------------------------------

    def acknowledge(self, order: OrderView) -> None:
        """Tell topi the order was received (created -> acknowledged)."""
        self._transition(order.channel_order_id, "acknowledge")

    def accept(self, order: OrderView) -> None:
        """Tell topi the order will be fulfilled (created/acknowledged -> confirmed)."""
        self._transition(order.channel_order_id, "accept")

    def reject(self, order: OrderView, reason: str, *, resume: Resume = None) -> None:
        """Tell topi the order cannot be fulfilled. topi's rejectOrder defines no request body
        (no reason field), so `reason` stays with the hub; after confirmation topi refuses and
        this raises `Permanent`."""
        log.info("topi.order.reject", channel_order_id=order.channel_order_id, reason=reason)
        self._transition(order.channel_order_id, "reject")

    def _operation(self) -> AbstractContextManager[object]:
        """One deadline (TOPI_CALL_DEADLINE_SECONDS) over every request of one hub call."""
        return deadline(self.settings.call_deadline_seconds)

    def _transition(self, channel_order_id: str, action: str) -> None:
        with self._operation():
            self._transition_within(channel_order_id, action)

    def _transition_within(self, channel_order_id: str, action: str) -> None:
        path = f"{_order_path(channel_order_id)}/{action}"
        try:
            self.client.request("POST", path)
        except TopiApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            # A retry of a call that took effect: topi refuses because the order moved on.
            current = self._wire_order(channel_order_id)
            if current.status in DONE_AFTER[action]:
                log.info(
                    "topi.order.already_done",
                    channel_order_id=channel_order_id,
                    action=action,
                    status=current.status,
                )
                return
            raise TopiApiError(
                f"topi refused to {action} order {channel_order_id} in status "
                f"{current.status}: {exc.reason}",
                exc.code,
                exc.status,
            ) from exc

    # -- shipments ----------------------------------------------------------------------------

    def cancel(self, order: OrderView, reason: str, *, resume: Resume = None) -> None:
        """topi's Seller API has no call for the seller to cancel an order: topi or the customer
        cancel, and topi then sends `order.canceled`."""
        raise FlowNotSupported(
            f"topi has no seller cancel call: until order {order.channel_order_id} is confirmed, "
            "reject it instead; once confirmed, ask your topi contact to cancel it. topi's "
            "order.canceled webhook then cancels it here; after a shipment it is a return"
        )

    def push_tracking(self, order: OrderView, shipment_id: str, *, resume: Resume = None) -> None:
        """Report the units of shipment `shipment_id` topi does not have yet (none: no call).
        `NeedsInput` when a unit that topi wants a serial number for has none."""
        with self._operation():
            self._push_tracking(order, shipment_id)

    def _push_tracking(self, order: OrderView, shipment_id: str) -> None:
        shipment = next((s for s in order.shipments if s.shipment_id == shipment_id), None)
        if shipment is None:
            raise Permanent(
                f"order {order.order_id} has no shipment {shipment_id}", code="unknown_shipment"
            )
        topi_order = self._wire_order(order.channel_order_id)
        sku_source = sku_source_of(topi_order, self.settings.sku_source)
        try:
            units = units_to_report(order, shipment, topi_order, sku_source)
        except UnmappableLine as exc:
            raise Permanent(str(exc), code="unmappable_line") from exc
        if not units:
            log.info("topi.shipment.nothing_new", shipment_id=shipment_id)
            return
        missing = Counter(
            unit.reference
            for unit in units
            if not unit.serial_number and serial_required(topi_order, unit.source, unit.reference)
        )
        if missing:
            # Nothing is sent: topi takes the units of a shipment together or not at all, and
            # would refuse these. Once a person enters the serials, the same call sends them.
            needed = ", ".join(f"{count} x {ref}" for ref, count in sorted(missing.items()))
            raise NeedsInput(
                f"serial number needed for {needed} in shipment {shipment_id}: topi takes no "
                "unit that can be rented without its serial number; enter the serials of "
                "those units, then the shipment is sent to topi",
                code="serial_number_missing",
            )
        body = shipment_body(order.channel_order_id, units, shipment)
        self.client.request("POST", "/v1/shipment", json=body)
        log.info("topi.shipment.reported", shipment_id=shipment_id, units=len(units))

    # -- reading orders ---------------------------------------------------------------------------

    def _wire_order(self, channel_order_id: str) -> WireOrder:
        data = self.client.request("GET", _order_path(channel_order_id))
        try:
            return parse_order(data)
        except ValidationError as exc:
            raise Permanent(f"topi order {channel_order_id} is unreadable: {exc}") from exc

    def fetch_order(self, channel_order_id: str) -> ChannelOrder:
        """The full order from `GET /v1/orders/{id}` as a canonical order."""
        with self._operation():
            wire = self._wire_order(channel_order_id)
        try:
            return to_channel_order(wire, self.settings.sku_source)
        except ValueError as exc:
            raise Permanent(f"topi order {channel_order_id} is unreadable: {exc}") from exc

    def list_orders(self, since: datetime, until: datetime) -> Iterator[ChannelOrder]:
        """Every order created in [since, until), all pages, each read in full.

        topi's list filters on `created_at` only, so an older order that changed since is not
        listed; its changes arrive by webhook."""
        page = 1
        while True:
            data = self.client.request(
                "GET",
                "/v1/orders/paginated",
                params={
                    "limit": PAGE_SIZE,
                    "page": page,
                    "sort_by": "created_at",
                    "sort_order": "asc",
                    "created_at_gte": _rfc3339(since),
                    "created_at_lt": _rfc3339(until),
                },
            )
            try:
                listing = WireOrdersPage.model_validate(data)
            except ValidationError as exc:
                raise Permanent(f"topi order list page {page} is unreadable: {exc}") from exc
            for summary in listing.orders:
                yield self.fetch_order(summary.id)
            if not listing.orders or page >= listing.pagination.total_pages:
                return
            page += 1

    def update_listing(self, sku: str, available: int, *, resume: Resume = None) -> None:
        """topi keeps no stock for sellers: there is nothing to update."""
        raise FlowNotSupported("topi has no stock or listing API")
