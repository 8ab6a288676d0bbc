"""Depop OAuth for a third-party app: the seller's authorization (authorization code with
PKCE, S256), and access tokens that last an hour, renewed with refresh tokens that are spent by
their use.

Authorization: the hub keeps a random PKCE verifier and a random state, sends the seller to
`authorization_url(...)`, and Depop redirects back with `code` and `state`; `exchange_code`
trades the code (with the verifier and the redirect_uri used at authorize) for the first pair.
Depop's description requires PKCE with S256 (RFC 7636) on every authorization code exchange.

The pair lives in a `LeasedTokenStore` (the hub's database) under the key `depop` (the hub
scopes it to the connection), so every worker in every process uses the newest. Renewal
happens before the access token expires and after a 401. One worker renews at a time (the
store's lease); it reads the stored pair after taking the lease (another may have just
renewed), calls the token endpoint holding no transaction, and stores the new pair with a
compare-and-set before anyone uses it. Two workers therefore never spend the same refresh
token. A refresh Depop answers `invalid_grant` (revoked,
expired, or spent) cannot be retried: the seller has to authorize the app again, and the
`attention` callback (the hub flags the connection) says so once, beside the failing call.

The chain starts from `DEPOP_REFRESH_TOKEN` (a pair is seeded from it), or, for a shop the
seller connected by signing in, from the pair the hub stored at the callback (`stored_pair`),
named by the connection's `oauth_grant`: nothing is seeded then, and a connector built for an
older grant leaves the newer pair alone.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from pydantic import ValidationError

from connectors.base import LeasedTokenStore, Permanent, Retriable
from connectors.connector import Lent
from connectors.depop.config import DepopSettings
from connectors.depop.transformers import DepopTokenResponse, loads, parse_oauth_error
from connectors.http import new_client, send
from connectors.tokens import LocalTokenStore

TOKEN_PATH = "/api/v1/oauth2/access-token/"
STORE_KEY = "depop"
RENEW_BEFORE = 300.0  # seconds before expiry a token counts as spent: calls take time
LEASE_SECONDS = 60.0  # far above a token call's timeout, so a live renewer never loses it
WAIT_FOR_RENEWAL = 20.0  # how long a worker waits for another's renewal before retrying later
RECONNECT = (
    "the seller must reconnect the Depop app (authorize it again) and set DEPOP_REFRESH_TOKEN "
    "to the new refresh token"
)
RECONNECT_SIGNED_IN = "the seller must connect the Depop shop again (Connect a Depop shop)"
# Where the seller signs in and approves an app (Depop's "your first OAuth connection" guide),
# and the scopes the hub asks for: the settings' defaults.
AUTHORIZE_URL: str = DepopSettings.model_fields["authorize_url"].default
HUB_SCOPES: tuple[str, ...] = tuple(DepopSettings.model_fields["scopes"].default.split())


# -- authorization (code with PKCE; `connectors.pkce` makes the verifier and the state) ----------


def authorization_url(
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Iterable[str],
    state: str,
    code_challenge: str,
    base: str = AUTHORIZE_URL,
) -> str:
    """Where to send the seller: Depop's authorize page with the authorization request
    (RFC 6749 4.1.1 plus RFC 7636 4.3). Scopes are space-separated, as RFC 6749 3.3 says."""
    scope = " ".join(scopes)
    if not scope:
        raise ValueError("ask for at least one scope")
    query = urlencode(
        [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scope),
            ("state", state),
            ("code_challenge", code_challenge),
            ("code_challenge_method", "S256"),
        ],
        quote_via=quote,  # %20 between scopes: every parser reads it, not all read "+"
    )
    return f"{base}{'&' if urlsplit(base).query else '?'}{query}"


def exchange_code(
    http: httpx.Client,
    *,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> DepopTokenResponse:
    """The seller's first token pair, for the code Depop's redirect carried: `POST
    /api/v1/oauth2/access-token/` with `grant_type=authorization_code`, the PKCE verifier, the
    redirect_uri used at authorize, and the client's credentials in the body (as Depop's
    description puts them). A refused code is `Permanent`: codes are single-use and short-lived,
    so only a new authorization helps."""
    return request_tokens(
        http,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "client_id": client_id,
            "client_secret": client_secret,
        },
    )


def sign_in_unavailable(settings: DepopSettings) -> str | None:
    """What the hub's Depop app lacks to connect a shop by signing in, or None."""
    missing = [
        variable
        for variable, present in (
            ("DEPOP_CLIENT_ID", bool(settings.client_id)),
            (
                "DEPOP_CLIENT_SECRET",
                settings.client_secret is not None
                and bool(settings.client_secret.get_secret_value()),
            ),
            (
                "DEPOP_WEBHOOK_SECRET",
                settings.webhook_secret is not None
                and bool(settings.webhook_secret.get_secret_value()),
            ),
        )
        if not present
    ]
    if missing:
        return f"the hub's Depop app is not configured: set {', '.join(missing)}"
    return None


def sign_in_url(settings: DepopSettings, redirect_uri: str, state: str, challenge: str) -> str:
    assert settings.client_id is not None
    return authorization_url(
        client_id=settings.client_id,
        redirect_uri=redirect_uri,
        scopes=settings.scopes.split(),
        state=state,
        code_challenge=challenge,
        base=settings.authorize_url,
    )


def connect_signed_in(
    settings: DepopSettings, lent: Lent, redirect_uri: str, code: str, verifier: str
) -> dict[str, Any]:
    """The seller approved the app: the code's first pair, stored under the new connection's
    key (the lent store) as a new grant's chain, and the connection's settings. The shop is
    reached with the hub's app and webhook secret; no API key or refresh token setting rides
    along, so it signs in with the stored pair alone."""
    if (reason := sign_in_unavailable(settings)) is not None:
        raise Permanent(reason, code="not_configured")
    assert settings.client_secret is not None and settings.webhook_secret is not None
    if lent.token_store is None:
        raise ValueError("a signed-in Depop connection keeps its tokens in the lent store")
    http = lent.http if lent.http is not None else new_client(settings.base_url)
    try:
        tokens = exchange_code(
            http,
            client_id=settings.client_id or "",
            client_secret=settings.client_secret.get_secret_value(),
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=verifier,
        )
        seller_id = _seller_id(http, tokens.access_token)
    finally:
        if lent.http is None:
            http.close()
    grant = GRANT_PREFIX + uuid.uuid4().hex
    lent.token_store.save(STORE_KEY, stored_pair(tokens, grant, time.time()))
    return {
        "base_url": settings.base_url,
        "client_id": settings.client_id,
        "client_secret": settings.client_secret.get_secret_value(),
        "webhook_secret": settings.webhook_secret.get_secret_value(),
        "oauth_grant": grant,
        "scopes": settings.scopes,
        "seller_id": seller_id,
    }


SHOP_PATH = "/api/v1/shop/"


def _seller_id(http: httpx.Client, access_token: str) -> int:
    """The signed-in shop's seller id (`GET /api/v1/shop/`): its webhooks name it, and the
    shops of one app share the app's webhook secret, so it is what tells them apart."""
    response = send(
        http,
        "GET",
        SHOP_PATH,
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
    )
    if response.status_code != 200:
        raise Permanent(
            f"Depop refused to name the shop ({response.status_code}); the app needs the "
            "shop_read scope",
            code="shop_unreadable",
        )
    try:
        return int(loads(response.content)["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Permanent(f"Depop's shop details are unreadable: {exc}") from None


def request_tokens(http: httpx.Client, form: Mapping[str, str]) -> DepopTokenResponse:
    """One call to the token endpoint, its refusals classified: transport failures, 429 and
    5xx are `Retriable` (raised by `send`); `invalid_grant` (a code or refresh token that is
    invalid, expired, revoked or spent, or a redirect_uri mismatch), a refused client (401) and
    any other refusal are `Permanent`, their `code` the OAuth error."""
    grant = form.get("grant_type", "")
    response = send(
        http, "POST", TOKEN_PATH, data=dict(form), headers={"Accept": "application/json"}
    )
    if response.is_success:
        try:
            return DepopTokenResponse.model_validate(loads(response.content))
        except (ValueError, UnicodeDecodeError, ValidationError) as exc:
            raise Permanent(
                f"Depop's token endpoint answered an unreadable body: {exc}",
                code="malformed_answer",
            ) from exc
    error = parse_oauth_error(response.content)
    name = error.error if error is not None else f"http_{response.status_code}"
    detail = error.explanation if error is not None else response.text[:200]
    if response.status_code == 401:
        raise Permanent(
            f"Depop refused the OAuth client id/secret ({name}: {detail})", code="invalid_client"
        )
    if name == "invalid_grant" and grant == "authorization_code":
        raise Permanent(
            f"Depop refused the authorization code (invalid_grant: {detail}); it is single-use "
            "and short-lived, so the seller must connect the shop again",
            code="invalid_grant",
        )
    if name == "invalid_grant":
        raise Permanent(
            f"Depop refused the OAuth refresh token (invalid_grant: {detail})", code="invalid_grant"
        )
    raise Permanent(
        f"Depop refused the token request ({response.status_code} {name}: {detail})", code=name
    )


@dataclass(frozen=True, slots=True)
class _Pair:
    access_token: str
    refresh_token: str
    expires_at: float  # Unix seconds; 0 when no access token was issued yet
    # Which authorization the chain belongs to: a digest of the DEPOP_REFRESH_TOKEN it started
    # from (never the token), or the `oauth_grant` of a signed-in connection.
    origin: str

    def fresh(self, now: float) -> bool:
        return bool(self.access_token) and self.expires_at - RENEW_BEFORE > now

    def stored(self) -> dict[str, str]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": repr(self.expires_at),
            "origin": self.origin,
        }

    @classmethod
    def read(cls, value: Mapping[str, str]) -> _Pair:
        return cls(
            value.get("access_token", ""),
            value.get("refresh_token", ""),
            float(value.get("expires_at", "0") or 0),
            value.get("origin", ""),
        )


# A chain a sign-in started is named so; one started from a typed-in refresh token by its
# digest. A connector seeding from a refresh token never writes over a signed-in chain.
GRANT_PREFIX = "grant-"


def stored_pair(tokens: DepopTokenResponse, grant: str, now: float) -> dict[str, str]:
    """What the hub stores under a signed-in connection's key right after the code exchange:
    the first pair of the chain `grant` names (`DepopSettings.oauth_grant`)."""
    return _Pair(tokens.access_token, tokens.refresh_token, now + tokens.expires_in, grant).stored()


class DepopOAuth:
    """Bearer tokens for Depop calls made as an OAuth app, renewed safely across workers."""

    def __init__(
        self,
        settings: DepopSettings,
        http: httpx.Client,
        store: LeasedTokenStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        before_call: Callable[[], None] | None = None,
        attention: Callable[[str], None] | None = None,
    ) -> None:
        if not settings.uses_oauth:
            raise ValueError(
                "DEPOP_CLIENT_ID, DEPOP_CLIENT_SECRET and DEPOP_REFRESH_TOKEN or an oauth_grant"
            )
        assert settings.client_secret is not None
        self._client_id = settings.client_id or ""
        self._client_secret = settings.client_secret.get_secret_value()
        if settings.oauth_grant:
            # Signed in through the hub: the stored pair is the only start of the chain.
            self._seed: str | None = None
            self._origin = settings.oauth_grant
            self._reconnect = RECONNECT_SIGNED_IN
        else:
            assert settings.refresh_token is not None
            self._seed = settings.refresh_token.get_secret_value()
            self._origin = hashlib.sha256(self._seed.encode()).hexdigest()[:16]
            self._reconnect = RECONNECT
        self._attention = attention or (lambda reason: None)
        self._http = http
        self._store: LeasedTokenStore = store if store is not None else LocalTokenStore()
        self._clock = clock
        self._sleep = sleep
        self._before_call = before_call or (lambda: None)
        self._owner = f"{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()  # one renewal per process at a time; others wait here
        self._cached: _Pair | None = None

    def bearer(self) -> str:
        """An access token with some life left, renewed first when it has none."""
        pair = self._cached
        if pair is None or not pair.fresh(self._clock()):
            pair = self._renew(rejected=None)
        return pair.access_token

    def rejected(self, token: str) -> None:
        """Depop answered 401 to `token`: renew, unless another call already has."""
        self._renew(rejected=token)

    # -- renewal ------------------------------------------------------------------------------

    def _usable(self, pair: _Pair, rejected: str | None) -> bool:
        return pair.fresh(self._clock()) and pair.access_token != rejected

    def _renew(self, rejected: str | None) -> _Pair:
        with self._lock:
            deadline = self._clock() + WAIT_FOR_RENEWAL
            while True:
                stored = self._load()
                if self._usable(stored, rejected):
                    self._cached = stored
                    return stored
                if self._store.acquire(STORE_KEY, self._owner, LEASE_SECONDS):
                    try:
                        pair = self._renew_holding_lease(rejected)
                    finally:
                        self._store.release(STORE_KEY, self._owner)
                    self._cached = pair
                    return pair
                if self._clock() >= deadline:
                    raise Retriable("another worker is renewing the Depop access token", after=1.0)
                self._sleep(0.05)

    def _renew_holding_lease(self, rejected: str | None) -> _Pair:
        # Read again under the lease: the last holder may have renewed since we looked.
        current = self._load()
        if self._usable(current, rejected):
            return current
        issued = self._exchange(current.refresh_token)
        pair = _Pair(
            issued.access_token,
            issued.refresh_token,
            self._clock() + issued.expires_in,
            current.origin,
        )
        # Stored before it is used: the spent refresh token must never be the stored one.
        if self._store.compare_and_set(STORE_KEY, current.stored(), pair.stored()):
            return pair
        # Someone stored another pair meanwhile (this worker outlived its lease, or the
        # seller reconnected): the stored one wins, and the next attempt uses it.
        raise Retriable("the stored Depop tokens changed during renewal", after=0.0)

    def _load(self) -> _Pair:
        """The stored pair; a DEPOP_REFRESH_TOKEN that differs from the one the stored chain
        started from (the seller reconnected) starts a new chain. A signed-in connection's
        chain is started by the hub alone (`stored_pair`)."""
        while True:
            value = self._store.load(STORE_KEY)
            if value is not None and value.get("origin") == self._origin:
                return _Pair.read(value)
            if value is not None and str(value.get("origin", "")).startswith(GRANT_PREFIX):
                # The seller signed in since this connector was built from a typed-in refresh
                # token: the new chain wins, and this connector is rebuilt within seconds.
                raise Retriable("the Depop shop was connected again; using the new tokens", 1.0)
            if self._seed is None:
                if value is None:
                    reason = f"no Depop tokens are stored for this connection; {self._reconnect}"
                    self._attention(reason)
                    raise Permanent(reason, code="not_connected")
                # The seller signed in again: this connector was built for the old grant and
                # is rebuilt within seconds; the new pair is not this one's to renew.
                raise Retriable("the Depop shop was connected again; using the new tokens", 1.0)
            seed = _Pair("", self._seed, 0.0, self._origin)
            if self._store.compare_and_set(STORE_KEY, value, seed.stored()):
                return seed

    def _exchange(self, refresh_token: str) -> DepopTokenResponse:
        """`POST /api/v1/oauth2/access-token/` with the refresh grant (client in the body)."""
        self._before_call()
        try:
            return request_tokens(
                self._http,
                {
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token,
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                },
            )
        except Permanent as exc:
            if exc.code != "invalid_grant":
                raise
            reason = f"{exc.reason}; {self._reconnect}"
            self._attention(reason)
            raise Permanent(reason, code="invalid_grant") from exc
