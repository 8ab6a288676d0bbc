"""The Deliverr fulfilment provider: Bearer-authenticated calls to the Orders API, token renewal,
and the classification of every answer into success, `Retriable` or `Permanent`.

Token renewal: on a 401, when a refresh token is known, the client calls
`POST /oauth/v1/token` once with the form `grant_type=refresh_token&refresh_token=<token>`,
expects `{"access_token", "refresh_token"?, "token_type", "expires_in"}`, saves the new pair
with `token_store.save("deliverr", {"access_token", "refresh_token"})` and repeats the call.

Never two orders for one: a create first looks the order up by its external id (the hub's order
id), and sends an `idempotency-key` drawn from the order, so a create whose answer was lost and
that Deliverr stored late is replayed, not repeated, even while the lookup cannot see it yet.
Each operation runs within DELIVERR_CALL_DEADLINE_SECONDS.

Rate limits: Deliverr documents none, so no limiter is asked; a 429 is `Retriable`, honouring
`Retry-After` when sent.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from connectors.base import (
    Capability,
    FulfilmentRequest,
    FulfilmentStatus,
    MalformedPayload,
    Permanent,
    ProviderOrderNotFound,
    TokenStore,
    WebhookReceiver,
)
from connectors.deliverr.config import DeliverrSettings
from connectors.deliverr.transformers import (
    SHIPPED_STATUSES,
    CreateOrderResponse,
    DeliverrOrderStatus,
    Order,
    TokenResponse,
    UnshippableAddress,
    create_order_body,
    error_for,
    idempotency_key,
    is_seed_error,
    load_json,
    parse_error,
    parse_order,
    to_fulfilment_status,
)
from connectors.deliverr.webhooks import DeliverrWebhooks
from connectors.http import deadline, new_client, send

NAME = "deliverr"
TOKEN_PATH = "/oauth/v1/token"
ORDERS_PATH = "/orders/v1/order"
IDEMPOTENCY_HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"
# How many fresh keys one create may try after Deliverr replayed an earlier refusal under the
# last one (a product inbounded since, say); each round is a request, so it stays small.
KEY_ROUNDS = 4
CANCELLED_AFTER_SHIPMENT = "cancelled after shipment: return needed"


def _segment(value: str) -> str:
    """A path segment: ids come from outside, so `/` or `?` in one must not change the route."""
    return quote(value, safe="")


class DeliverrProvider:
    """Sends hub orders to Deliverr and reads their shipments back (a `FulfilmentProvider`)."""

    name = NAME
    capabilities = frozenset({Capability.CANCEL})

    def __init__(
        self,
        settings: DeliverrSettings,
        http: httpx.Client | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        self._settings = settings
        self._http = http if http is not None else new_client(settings.base_url)
        self._token_store = token_store
        self._token_lock = threading.Lock()
        self._ship_methods = settings.ship_method_map()
        # Typed as the Protocol declares it: a narrower type would not satisfy the mutable member.
        self.webhooks: WebhookReceiver | None = DeliverrWebhooks(settings)
        access = settings.access_token.get_secret_value() if settings.access_token else None
        refresh = settings.refresh_token.get_secret_value() if settings.refresh_token else None
        # Tokens renewed earlier outlive the process in the store; the settings still hold the
        # original pair, whose refresh token Deliverr may already have rotated away.
        stored = token_store.load(NAME) if token_store is not None else None
        if stored:
            access = stored.get("access_token") or access
            refresh = stored.get("refresh_token") or refresh
        self._access_token: str | None = access or None
        self._refresh_token: str | None = refresh or None

    # -- FulfilmentProvider -----------------------------------------------------------------

    def create_order(self, request: FulfilmentRequest) -> str:
        """Deliverr's orderId for the hub order; an order already there is found, not duplicated.

        The lookup by external id comes first on every retry: a create that timed out after
        Deliverr stored it would otherwise be created twice. Should Deliverr not show it yet,
        the create's idempotency key makes Deliverr replay the first answer. A first try
        (`request.first_try`) has nothing to find and skips the lookup: the key alone covers it.
        """
        with deadline(self._settings.call_deadline_seconds):
            return self._create(request)

    def _create(self, request: FulfilmentRequest) -> str:
        existing = None if request.first_try else self.find_order(request.order_id)
        if existing is not None:
            return self._reuse(existing, request.order_id)
        context = f"create Deliverr order for {request.order_id}"
        ship_method = self._ship_methods.resolve(request.channel, request.shipping_service)
        try:
            body = create_order_body(request, ship_method)
        except UnshippableAddress as exc:
            raise Permanent(f"{context}: {exc}", code="address_unfit") from exc
        for round_ in range(KEY_ROUNDS):
            key = idempotency_key(request.order_id, body, round_)
            response = self._call("POST", ORDERS_PATH, json=body, headers={IDEMPOTENCY_HEADER: key})
            # Deliverr stores the first answer under a key and replays it; a replayed refusal
            # may no longer hold (the product was inbounded since), so it is asked anew under
            # the next key. A replayed success is the order the first request created.
            if response.is_success or response.headers.get(REPLAYED_HEADER) != "true":
                break
        if response.is_success:
            try:
                return CreateOrderResponse.model_validate(load_json(response.content)).orderId
            except (ValueError, ValidationError) as exc:
                raise Permanent(
                    f"{context}: unreadable answer {response.text[:200]}", code="malformed_answer"
                ) from exc
        error = parse_error(response.content)
        if response.status_code in (400, 409, 422) and not is_seed_error(error):
            # Deliverr documents no answer for a taken externalOrderId: a refusal that names
            # no order error may be another attempt that won the race since our lookup.
            existing = self.find_order(request.order_id)
            if existing is not None:
                return self._reuse(existing, request.order_id)
        raise self._failure(response, context)

    def find_order_id(self, order_id: str) -> str | None:
        found = self.find_order(order_id)
        return None if found is None else found.orderId

    def get_order(self, provider_order_id: str) -> FulfilmentStatus:
        """The order's status and shipments as Deliverr reports them now."""
        with deadline(self._settings.call_deadline_seconds):
            response = self._call("GET", f"{ORDERS_PATH}/{_segment(provider_order_id)}")
        if response.status_code == 404:
            raise ProviderOrderNotFound(
                f"Deliverr has no order {provider_order_id}", code="not_found"
            )
        if not response.is_success:
            raise self._failure(response, f"get Deliverr order {provider_order_id}")
        return to_fulfilment_status(self._order(response))

    def cancel_order(self, provider_order_id: str) -> None:
        """Cancel at Deliverr; `Permanent("cancelled after shipment: return needed")` once shipped.

        A refusal is confirmed by reading the order, whatever code it came with: a shipped order
        needs a return, an order already cancelled needs nothing.
        """
        with deadline(self._settings.call_deadline_seconds):
            self._cancel(provider_order_id)

    def _cancel(self, provider_order_id: str) -> None:
        context = f"cancel Deliverr order {provider_order_id}"
        path = f"{ORDERS_PATH}/{_segment(provider_order_id)}/cancel"
        response = self._call("POST", path)
        if response.is_success:
            return
        if response.status_code == 404:
            raise ProviderOrderNotFound(
                f"Deliverr has no order {provider_order_id}", code="not_found"
            )
        if response.status_code in (400, 409, 422):
            status = self.get_order(provider_order_id).raw_status
            if status in SHIPPED_STATUSES:
                raise Permanent(CANCELLED_AFTER_SHIPMENT, code="already_shipped")
            if status == DeliverrOrderStatus.CANCELLED:
                return
        raise self._failure(response, context)

    # -- beyond the Protocol ----------------------------------------------------------------

    def find_order(self, external_order_id: str) -> Order | None:
        """The Deliverr order created for hub order `external_order_id`, if there is one."""
        path = f"{ORDERS_PATH}/externalId/{_segment(external_order_id)}"
        with deadline(self._settings.call_deadline_seconds):
            response = self._call("GET", path)
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self._failure(response, f"look up Deliverr order for {external_order_id}")
        return self._order(response)

    def get_order_by_external_id(self, external_order_id: str) -> FulfilmentStatus | None:
        """The fulfilment status of the Deliverr order for hub order `external_order_id`."""
        order = self.find_order(external_order_id)
        return to_fulfilment_status(order) if order is not None else None

    def close(self) -> None:
        """Release the pooled connections."""
        self._http.close()

    # -- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _reuse(order: Order, external_order_id: str) -> str:
        if order.status == DeliverrOrderStatus.CANCELLED:
            # Deliverr keys orders by externalOrderId, so a cancelled one cannot be created anew.
            raise Permanent(
                f"Deliverr order {order.orderId} for {external_order_id} is cancelled; "
                "it cannot be created again under the same id",
                code="previously_cancelled",
            )
        return order.orderId

    @staticmethod
    def _order(response: httpx.Response) -> Order:
        try:
            return parse_order(response.content)
        except MalformedPayload as exc:
            raise Permanent(str(exc), code="malformed_answer") from exc

    @staticmethod
    def _failure(response: httpx.Response, context: str) -> Exception:
        """The failure of an answer that is neither a success nor handled by the caller."""
        if response.status_code == 403:
            return Permanent(
                f"{context}: Deliverr refused the call (403); the token needs the api/orders "
                "and api/products scopes",
                code="forbidden",
            )
        error = parse_error(response.content)
        if error.type is None:
            return Permanent(
                f"{context}: Deliverr answered {response.status_code} {response.text[:200]}",
                code=f"http_{response.status_code}",
            )
        return error_for(error.type, error.message, context=context)

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One authenticated call; a 401 renews the token once and repeats the call."""
        token = self._current_token()
        response = send(
            self._http, method, path, json=json, headers={**(headers or {}), **self._bearer(token)}
        )
        if response.status_code != 401:
            return response
        self._renew(token)
        response = send(
            self._http,
            method,
            path,
            json=json,
            headers={**(headers or {}), **self._bearer(self._current_token())},
        )
        if response.status_code == 401:
            raise Permanent(
                "Deliverr rejected the renewed DELIVERR_ACCESS_TOKEN", code="unauthenticated"
            )
        return response

    @staticmethod
    def _bearer(token: str) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def _current_token(self) -> str:
        with self._token_lock:
            token = self._access_token
        if token is None:
            raise Permanent("DELIVERR_ACCESS_TOKEN is not set", code="unauthenticated")
        return token

    def _renew(self, rejected: str) -> None:
        """Trade the refresh token for a new access token, unless another call already did."""
        with self._token_lock:
            if self._access_token != rejected:
                return
            if self._refresh_token is None:
                raise Permanent(
                    "Deliverr rejected DELIVERR_ACCESS_TOKEN and no DELIVERR_REFRESH_TOKEN is set",
                    code="unauthenticated",
                )
            response = send(
                self._http,
                "POST",
                TOKEN_PATH,
                data={"grant_type": "refresh_token", "refresh_token": self._refresh_token},
            )
            if not response.is_success:
                raise Permanent(
                    "Deliverr rejected DELIVERR_ACCESS_TOKEN and renewing it with "
                    f"DELIVERR_REFRESH_TOKEN failed: {response.status_code} {response.text[:200]}",
                    code="unauthenticated",
                )
            try:
                tokens = TokenResponse.model_validate(load_json(response.content))
            except (ValueError, ValidationError) as exc:
                raise Permanent(
                    "Deliverr rejected DELIVERR_ACCESS_TOKEN and its token renewal answer "
                    f"was unreadable: {response.text[:200]}",
                    code="unauthenticated",
                ) from exc
            self._access_token = tokens.access_token
            # Deliverr may rotate the refresh token; without a new one, the old one stays good.
            self._refresh_token = tokens.refresh_token or self._refresh_token
            if self._token_store is not None:
                self._token_store.save(
                    NAME,
                    {"access_token": self._access_token, "refresh_token": self._refresh_token},
                )
