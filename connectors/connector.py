"""What a connector package says about itself (a `Connector`): its name, its role, its
settings, how to build it and how to simulate its system. `connectors.catalog` lists them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import httpx

from connectors.base import FulfilmentProvider, LeasedTokenStore, SalesChannel, SkuMapStore
from connectors.ratelimit import RateLimiter

if TYPE_CHECKING:
    from connectors.simulation import SimulatorBase


class Role(StrEnum):
    CHANNEL = "channel"  # orders come from it
    PROVIDER = "provider"  # it ships orders


class ConnectorSettings(Protocol):
    """A connector's settings: a pydantic-settings class with its own environment prefix."""

    @property
    def configured(self) -> bool:
        """True when the credentials it needs are set; otherwise the connector is off."""
        ...

    def model_dump(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Lent:
    """What the hub lends a connector it builds."""

    http: httpx.Client | None = None  # None: the connector opens its own pooled client
    token_store: LeasedTokenStore | None = None  # where renewed credentials are kept
    limiter: RateLimiter | None = None  # None: the connector limits this process only
    sleep: Callable[[float], None] = time.sleep  # how it waits between polls
    sku_maps: SkuMapStore | None = None  # where a provider's SKU map is kept (Capability.SKU_MAP)
    # Called with a reason when the account cannot work until a person acts (a revoked OAuth
    # grant): the hub flags the connection. None: the failing call alone says so.
    attention: Callable[[str], None] | None = None


S = TypeVar("S", bound=ConnectorSettings)


@dataclass(frozen=True, slots=True)
class SignIn(Generic[S]):
    """How an account's owner connects it by signing in to the system (OAuth 2.0 authorization
    code with PKCE). The hub keeps the state and the PKCE verifier and serves the callback; the
    connector knows the system's URLs, its token exchange, where the tokens are kept and what a
    connection made from them holds. Each callable gets the system's environment settings
    (`S`), which hold the hub's OAuth app."""

    # What the button that starts it says, e.g. "Connect a Depop shop".
    label: str
    # Why a sign-in cannot start with these settings (a sentence naming what is missing), or
    # None when it can.
    unavailable: Callable[[S], str | None]
    # The callback URL registered with the system, when the settings name one; None: the hub
    # uses its own URL for the callback.
    redirect_uri: Callable[[S], str | None]
    # (settings, redirect_uri, state, PKCE S256 challenge) -> where to send the owner.
    authorization_url: Callable[[S, str, str, str], str]
    # (settings, what is lent to the new connection, redirect_uri, code, PKCE verifier) ->
    # the new connection's settings, secrets among them. Exchanges the code, and keeps the
    # tokens in the lent token store; raises `Permanent` / `Retriable` as any call does.
    connect: Callable[[S, Lent, str, str, str], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Connector(Generic[S]):
    """One external system the hub can use."""

    name: str
    role: Role
    settings: Callable[[], S]  # read from the environment
    build: Callable[[S, Lent], SalesChannel | FulfilmentProvider]
    # A simulator of the system that accepts exactly the credentials in `S` (tests, demo).
    simulator: Callable[[S], SimulatorBase]
    # Settings for a simulated account whose every URL is under `base_url`, with fresh random
    # credentials.
    simulated: Callable[[str], S]
    # Its own commands under `hub <name> ...` (a click group), loaded only when the CLI starts.
    commands: Callable[[], Any] | None = None
    # How an owner connects an account by signing in; None: connections are made with
    # credentials typed in.
    sign_in: SignIn[S] | None = None
