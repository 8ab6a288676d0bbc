"""Connection key -> connector. A connection is one account on one external system; its key is
`system/name` (`depop/default`, `depop/shop-b`). A system's `default` connection is the one its
environment variables describe; a bare system name stands for it wherever a key is asked for.
A connection whose credentials are not configured, or which is disabled, is simply absent, so
its webhooks answer 404 and no job calls it."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog

from connectors.base import FulfilmentProvider, SalesChannel, WebhookReceiver

DEFAULT = "default"
# A connection's name: what its webhook URL and its key carry, so plain and short.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def connection_key(system: str, name: str = DEFAULT) -> str:
    return f"{system}/{name}"


def resolve(key: str) -> str:
    """`key` as a full connection key: a bare system name means its default connection."""
    return key if "/" in key else connection_key(key)


def system_of(key: str) -> str:
    return key.partition("/")[0]


def name_of(key: str) -> str:
    return resolve(key).partition("/")[2]


log = structlog.get_logger("connectors.registry")


class NotConfigured(LookupError):
    """No connection of that key is enabled."""


@dataclass
class Registry:
    """The connectors built for every enabled connection, by connection key.

    `refresh`, when given, brings the registry up to date with the connections stored in the
    database; it is called on a miss (a connection created since) and at most every
    `refresh_interval` seconds on a lookup (one edited or disabled since), so every process
    follows an operator's change within seconds without a restart."""

    channels: dict[str, SalesChannel] = field(default_factory=dict)
    providers: dict[str, FulfilmentProvider] = field(default_factory=dict)
    refresh: Callable[[Registry], None] | None = None
    refresh_interval: float = 5.0
    clock: Callable[[], float] | None = None
    _checked: float = field(default=float("-inf"), init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    # Set by hand (tests, tools): kept over what a refresh reads from the database.
    _pinned_channels: dict[str, SalesChannel] = field(default_factory=dict, init=False)
    _pinned_providers: dict[str, FulfilmentProvider] = field(default_factory=dict, init=False)
    _removed: set[str] = field(default_factory=set, init=False)

    def add_channel(self, channel: SalesChannel, key: str | None = None) -> None:
        """Use `channel` for the connection `key` (default: its system's default connection)."""
        key = resolve(key or channel.name)
        self._pinned_channels[key] = channel
        self._removed.discard(key)
        self.channels = {**self.channels, key: channel}

    def add_provider(self, provider: FulfilmentProvider, key: str | None = None) -> None:
        key = resolve(key or provider.name)
        self._pinned_providers[key] = provider
        self._removed.discard(key)
        self.providers = {**self.providers, key: provider}

    def remove(self, key: str) -> None:
        """Leave the connection `key` out, whatever the database says."""
        key = resolve(key)
        self._removed.add(key)
        self._pinned_channels.pop(key, None)
        self._pinned_providers.pop(key, None)
        self.channels = {k: v for k, v in self.channels.items() if k != key}
        self.providers = {k: v for k, v in self.providers.items() if k != key}

    def replace(
        self,
        channels: dict[str, SalesChannel],
        providers: dict[str, FulfilmentProvider],
    ) -> None:
        """Swap in a whole new set (a lookup in another thread sees the old or the new one)."""
        removed = self._removed
        self.channels = {
            **{k: v for k, v in channels.items() if k not in removed},
            **self._pinned_channels,
        }
        self.providers = {
            **{k: v for k, v in providers.items() if k not in removed},
            **self._pinned_providers,
        }

    def _maybe_refresh(self, *, missed: bool) -> None:
        if self.refresh is None:
            return
        now = (self.clock or time.monotonic)()
        with self._lock:
            # A miss refreshes at once unless a refresh just ran; a hit only now and then.
            wait = 0.5 if missed else self.refresh_interval
            if now - self._checked < wait:
                return
            self._checked = now
        try:
            self.refresh(self)
        except Exception as exc:
            # The database hiccupped: the connectors built so far stay in use, and the next
            # lookup after the interval tries again.
            log.warning("connectors.registry.refresh_failed", error=type(exc).__name__)

    def reload(self) -> None:
        """Read the connections again now (after this process changed one)."""
        if self.refresh is not None:
            with self._lock:
                self._checked = (self.clock or time.monotonic)()
            self.refresh(self)

    def channel(self, key: str) -> SalesChannel:
        key = resolve(key)
        self._maybe_refresh(missed=key not in self.channels)
        try:
            return self.channels[key]
        except KeyError:
            raise NotConfigured(key) from None

    def provider(self, key: str) -> FulfilmentProvider:
        key = resolve(key)
        self._maybe_refresh(missed=key not in self.providers)
        try:
            return self.providers[key]
        except KeyError:
            raise NotConfigured(key) from None

    def has_channel(self, key: str) -> bool:
        try:
            self.channel(key)
        except NotConfigured:
            return False
        return True

    def receiver(self, key: str) -> WebhookReceiver:
        """The webhook receiver of the channel or provider connection `key`."""
        key = resolve(key)
        self._maybe_refresh(missed=key not in self.channels and key not in self.providers)
        if key in self.channels:
            return self.channels[key].webhooks
        provider = self.providers.get(key)
        if provider is not None and provider.webhooks is not None:
            return provider.webhooks
        raise NotConfigured(key)

    def known_receiver(self, key: str) -> WebhookReceiver | None:
        """The webhook receiver of `key` when the registry holds it and no refresh is due, else
        None (then ask `receiver`). Never reads the database, so an event loop may call it:
        the webhook path does, sparing a thread hand-off per delivery."""
        key = resolve(key)
        if self.refresh is not None:
            now = (self.clock or time.monotonic)()
            if now - self._checked >= self.refresh_interval:
                return None
        channel = self.channels.get(key)
        if channel is not None:
            return channel.webhooks
        provider = self.providers.get(key)
        return provider.webhooks if provider is not None else None

    def channel_keys(self, system: str | None = None) -> list[str]:
        """The enabled channel connections, of `system` if given, in key order."""
        self._maybe_refresh(missed=False)
        return sorted(k for k in self.channels if system is None or system_of(k) == system)

    def provider_keys(self, system: str | None = None) -> list[str]:
        self._maybe_refresh(missed=False)
        return sorted(k for k in self.providers if system is None or system_of(k) == system)

    def systems(self) -> list[str]:
        """The systems with at least one enabled connection."""
        return sorted({system_of(k) for k in [*self.channels, *self.providers]})

    def close(self) -> None:
        """Close the HTTP clients the connectors opened for themselves."""
        close_all([*self.channels.values(), *self.providers.values()])


def close_all(connectors: Iterable[object]) -> None:
    for connector in connectors:
        close = getattr(connector, "close", None)
        if callable(close):
            close()
