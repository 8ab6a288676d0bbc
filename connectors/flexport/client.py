"""The Flexport fulfilment provider: Bearer-authenticated calls to the Logistics API under
`{FLEXPORT_BASE_URL}/logistics/api/{FLEXPORT_API_VERSION}`, the SKU map, the events feed, and
the classification of every answer into success, `Retriable` or `Permanent`.

Never two orders for one: a create first looks the order up by its external id (the hub's order
id), and sends an `idempotency-key` drawn from the order, so a create whose answer was lost is
replayed, not repeated. A found order whose `error.retriable` is true is retried through the
retry call: creating it again would only be refused as a duplicate.

SKUs: Flexport's lines name its `logisticsSku`. The map from the seller's SKU comes from
`GET /products` (paged by `limit`/`offset`, advancing by the rows a page returned and stopping
at an empty page, as the bulk endpoints may return short pages) and lives in the `SkuMapStore`
the hub lends; a SKU the map lacks refreshes it once, and a SKU still missing holds the order
with "SKU not at Flexport" (`NeedsInput`) until a person adds the product.

Errors: RFC 7807 problem+json. 429 and 5xx are `Retriable` (429 with its `Retry-After`) with the
body kept in the reason; 401 (a token expired or revoked: Flexport tokens may live about a year),
403 (a scope missing), 423 (account locked) and refusals of the request are `Permanent` with the
problem's title and detail.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from connectors.base import (
    Capability,
    FeedPage,
    FulfilmentRequest,
    FulfilmentStatus,
    MalformedPayload,
    NeedsInput,
    Permanent,
    ProviderOrderNotFound,
    SkuMapStore,
    WebhookReceiver,
)
from connectors.flexport.config import FlexportSettings
from connectors.flexport.transformers import (
    InternalStatus,
    Order,
    create_order_body,
    idempotency_key,
    load_json,
    parse_feed,
    parse_order,
    parse_problem,
    parse_products,
    sku_pairs,
    to_fulfilment_status,
)
from connectors.flexport.webhooks import FlexportWebhooks
from connectors.http import deadline, new_client, send

NAME = "flexport"
IDEMPOTENCY_HEADER = "idempotency-key"
CANCELLED_AFTER_SHIPMENT = "cancelled after shipment: return needed"
SKU_NOT_AT_FLEXPORT = "SKU not at Flexport"
PRODUCTS_PAGE = 100
EVENTS_PAGE = 100  # the feed refuses more than 100
# Event types subscribed by `hub flexport subscribe`: the ones that move a DTC order.
SUBSCRIBED_EVENTS = (
    "Order.Cancelled",
    "Order.Shipped",
    "Shipment.Cancelled",
    "Shipment.Created",
    "Shipment.Shipped",
)


def _segment(value: str) -> str:
    """A path segment: marketplace ids may hold `/`, which must not change the route."""
    return quote(value, safe="")


class MemorySkuMaps:
    """A SKU map store for a provider built without the hub's (a script, a test of the client)."""

    def __init__(self) -> None:
        self._maps: dict[str, dict[str, str]] = {}

    def load(self, provider: str) -> Mapping[str, str]:
        return dict(self._maps.get(provider, {}))

    def replace(self, provider: str, mapping: Mapping[str, str]) -> None:
        self._maps[provider] = dict(mapping)


def next_cursor(response: httpx.Response) -> str | None:
    """`page_info` of the `Link: <...>; rel="next"` header, when there is a next page."""
    link = response.links.get("next")
    if not link or "url" not in link:
        return None
    values = parse_qs(urlsplit(link["url"]).query).get("page_info")
    return values[0] if values else None


class FlexportProvider:
    """Sends hub orders to Flexport and reads them back (a `FulfilmentProvider`, `SkuMapping`,
    `EventFeed`)."""

    name = NAME
    capabilities = frozenset({Capability.CANCEL, Capability.SKU_MAP, Capability.EVENT_FEED})

    def __init__(
        self,
        settings: FlexportSettings,
        http: httpx.Client | None = None,
        sku_maps: SkuMapStore | None = None,
    ) -> None:
        self._settings = settings
        self._http = http if http is not None else new_client(settings.base_url)
        self._prefix = settings.api_prefix
        self._ship_methods = settings.ship_method_map()
        self._sku_maps: SkuMapStore = sku_maps if sku_maps is not None else MemorySkuMaps()
        self._refresh_lock = threading.Lock()
        self.webhooks: WebhookReceiver | None = FlexportWebhooks(settings)

    # -- FulfilmentProvider -----------------------------------------------------------------

    def create_order(self, request: FulfilmentRequest) -> str:
        """Flexport's order id for the hub order; one already there is found (and retried when
        its error is retriable), never created twice."""
        with deadline(self._settings.call_deadline_seconds):
            return self._create(request)

    def _create(self, request: FulfilmentRequest) -> str:
        existing = self.find_order(request.order_id)
        if existing is not None:
            return self._reuse(existing, request.order_id)
        context = f"create Flexport order for {request.order_id}"
        skus = self._logistics_skus([line.sku for line in request.lines])
        ship_method = self._ship_methods.resolve(request.channel, request.shipping_service)
        body = create_order_body(request, skus, ship_method)
        headers = {IDEMPOTENCY_HEADER: idempotency_key(request.order_id, body)}
        response = self._call("POST", "/orders", json=body, headers=headers)
        if response.is_success:
            return self._order(response).id
        if response.status_code in (400, 409, 422):
            # A taken externalOrderId is refused (a duplicate): another attempt won the race
            # since our lookup, and its order is ours.
            existing = self.find_order(request.order_id)
            if existing is not None:
                return self._reuse(existing, request.order_id)
        raise self._failure(response, context)

    def find_order_id(self, order_id: str) -> str | None:
        found = self.find_order(order_id)
        return None if found is None else found.id

    def get_order(self, provider_order_id: str) -> FulfilmentStatus:
        with deadline(self._settings.call_deadline_seconds):
            response = self._call("GET", f"/orders/{_segment(provider_order_id)}")
            if response.status_code == 404:
                raise ProviderOrderNotFound(
                    f"Flexport has no order {provider_order_id}", code="not_found"
                )
            if not response.is_success:
                raise self._failure(response, f"get Flexport order {provider_order_id}")
            return self._status(self._order(response))

    def cancel_order(self, provider_order_id: str) -> None:
        """Cancel at Flexport; `Permanent("cancelled after shipment: return needed")` once
        anything shipped. A refusal is confirmed by reading the order."""
        with deadline(self._settings.call_deadline_seconds):
            path = f"/orders/{_segment(provider_order_id)}"
            response = self._call("POST", f"{path}/cancel")
            if response.is_success:
                return
            if response.status_code == 404:
                raise ProviderOrderNotFound(
                    f"Flexport has no order {provider_order_id}", code="not_found"
                )
            if response.status_code in (400, 409, 422):
                current = self._call("GET", path)
                if current.is_success:
                    order = self._order(current)
                    if order.anything_shipped() or order.internal_status in (
                        InternalStatus.SHIPPED,
                        InternalStatus.DELIVERED,
                    ):
                        raise Permanent(CANCELLED_AFTER_SHIPMENT, code="already_shipped")
                    if order.internal_status == InternalStatus.CANCELLED:
                        return
            raise self._failure(response, f"cancel Flexport order {provider_order_id}")

    # -- beyond the Protocol ----------------------------------------------------------------

    def find_order(self, external_order_id: str) -> Order | None:
        """The Flexport order created for hub order `external_order_id`, if there is one."""
        path = f"/orders/external_id/{_segment(external_order_id)}"
        with deadline(self._settings.call_deadline_seconds):
            response = self._call("GET", path)
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self._failure(response, f"look up Flexport order for {external_order_id}")
        return self._order(response)

    def retry_order(self, provider_order_id: str) -> str:
        """Ask Flexport to try an order in a retriable error again; its id."""
        response = self._call("POST", f"/orders/{_segment(provider_order_id)}/retry")
        if not response.is_success:
            raise self._failure(response, f"retry Flexport order {provider_order_id}")
        return self._order(response).id

    def refresh_sku_map(self) -> int:
        """Read every product (`GET /products`) and store merchantSku -> logisticsSku."""
        with self._refresh_lock, deadline(self._settings.call_deadline_seconds):
            mapping: dict[str, str] = {}
            offset = 0
            while True:
                params = {"limit": PRODUCTS_PAGE, "offset": offset}
                response = self._call("GET", "/products", params=params)
                if not response.is_success:
                    raise self._failure(response, "list Flexport products")
                try:
                    page = parse_products(response.content)
                except MalformedPayload as exc:
                    raise Permanent(str(exc), code="malformed_answer") from exc
                if not page:
                    break
                mapping.update(sku_pairs(page))
                offset += len(page)
            self._sku_maps.replace(NAME, mapping)
            return len(mapping)

    def read_events(self, cursor: str | None) -> FeedPage:
        """One page of `GET /events`: the order ids its events name, and the next cursor from
        the `Link` header."""
        params: dict[str, Any] = {"limit": EVENTS_PAGE}
        if cursor:
            params["page_info"] = cursor
        with deadline(self._settings.call_deadline_seconds):
            response = self._call("GET", "/events", params=params)
        if not response.is_success:
            raise self._failure(response, "read Flexport events")
        try:
            events = parse_feed(response.content)
        except MalformedPayload as exc:
            raise Permanent(str(exc), code="malformed_answer") from exc
        ids = tuple(dict.fromkeys(e.order_id for e in events if e.order_id is not None))
        return FeedPage(provider_order_ids=ids, next_cursor=next_cursor(response))

    def list_webhooks(self) -> list[dict[str, Any]]:
        response = self._call("GET", "/webhooks")
        if not response.is_success:
            raise self._failure(response, "list Flexport webhooks")
        found = load_json(response.content)
        return [dict(hook) for hook in found] if isinstance(found, list) else []

    def subscribe(self, url: str) -> list[dict[str, Any]]:
        """One subscription per event type the hub acts on that `url` does not have yet,
        authenticated as FLEXPORT_WEBHOOK_AUTH says; the subscriptions created."""
        existing = {(h.get("type"), h.get("url")) for h in self.list_webhooks()}
        auth = self._settings.webhook_auth
        secret: dict[str, str] = {"authMethod": auth.value}
        if auth == "BASIC_AUTH":
            password = self._settings.webhook_password
            secret["username"] = self._settings.webhook_username or ""
            secret["password"] = password.get_secret_value() if password else ""
        else:
            token = self._settings.webhook_token
            secret["token"] = token.get_secret_value() if token else ""
            secret["tokenHeader"] = self._settings.webhook_token_header
        created = []
        for event_type in SUBSCRIBED_EVENTS:
            if (event_type, url) in existing:
                continue
            body = {"type": event_type, "url": url, "method": "POST", **secret}
            response = self._call("POST", "/webhooks", json=body)
            if not response.is_success:
                raise self._failure(response, f"subscribe to {event_type}")
            created.append(dict(load_json(response.content)))
        return created

    def close(self) -> None:
        self._http.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _logistics_skus(self, skus: list[str]) -> dict[str, str]:
        """Flexport's id of each SKU; the map is refreshed once on a miss."""
        known = self._sku_maps.load(NAME)
        if any(sku not in known for sku in skus):
            self.refresh_sku_map()
            known = self._sku_maps.load(NAME)
        missing = sorted({sku for sku in skus if sku not in known})
        if missing:
            raise NeedsInput(
                f"{SKU_NOT_AT_FLEXPORT}: {', '.join(missing)}", code="sku_not_at_provider"
            )
        return {sku: known[sku] for sku in skus}

    def _status(self, order: Order) -> FulfilmentStatus:
        merchant = {dsku: sku for sku, dsku in self._sku_maps.load(NAME).items()}
        if any(
            item.logisticsSku not in merchant
            for shipment in order.shipments
            for package in shipment.packages
            for item in package.lineItems
        ):
            self.refresh_sku_map()
            merchant = {dsku: sku for sku, dsku in self._sku_maps.load(NAME).items()}
        return to_fulfilment_status(order, merchant)

    def _reuse(self, order: Order, external_order_id: str) -> str:
        if order.internal_status == InternalStatus.CANCELLED:
            raise Permanent(
                f"Flexport order {order.id} for {external_order_id} is cancelled; "
                "it cannot be created again under the same id",
                code="previously_cancelled",
            )
        if order.internal_status == InternalStatus.ERROR and order.error and order.error.retriable:
            return self.retry_order(order.id)
        return order.id

    @staticmethod
    def _order(response: httpx.Response) -> Order:
        try:
            return parse_order(response.content)
        except MalformedPayload as exc:
            raise Permanent(str(exc), code="malformed_answer") from exc

    @staticmethod
    def _failure(response: httpx.Response, context: str) -> Exception:
        """The failure of an answer that is neither a success nor handled by the caller."""
        problem = parse_problem(response.content)
        status = response.status_code
        said = problem.describe()
        if status == 401:
            return Permanent(
                f"{context}: Flexport rejected FLEXPORT_ACCESS_TOKEN (401, {said}); "
                "issue a new token in the portal",
                code="unauthenticated",
            )
        if status == 403:
            return Permanent(
                f"{context}: the token lacks a scope (403, {said}); it needs read/write "
                "logistics orders and webhooks, read logistics events and products",
                code="forbidden",
            )
        if status == 423:
            return Permanent(f"{context}: the Flexport account is locked (423, {said})", "locked")
        return Permanent(f"{context}: Flexport answered {status}: {said}", code=f"http_{status}")

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        token = self._settings.access_token
        if token is None or not token.get_secret_value():
            raise Permanent("FLEXPORT_ACCESS_TOKEN is not set", code="unauthenticated")
        auth = {"Authorization": f"Bearer {token.get_secret_value()}"}
        return send(
            self._http,
            method,
            f"{self._prefix}{path}",
            json=json,
            params=params,
            headers={**(headers or {}), **auth},
        )
