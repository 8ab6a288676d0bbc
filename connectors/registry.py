"""Name -> connector. A connector whose credentials are not configured is simply absent, so its
webhooks answer 404 and no job calls it."""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.base import FulfilmentProvider, SalesChannel, WebhookReceiver


class NotConfigured(LookupError):
    """No connector of that name is enabled."""


@dataclass
class Registry:
    channels: dict[str, SalesChannel] = field(default_factory=dict)
    providers: dict[str, FulfilmentProvider] = field(default_factory=dict)

    def add_channel(self, channel: SalesChannel) -> None:
        self.channels[channel.name] = channel

    def add_provider(self, provider: FulfilmentProvider) -> None:
        self.providers[provider.name] = provider

    def channel(self, name: str) -> SalesChannel:
        try:
            return self.channels[name]
        except KeyError:
            raise NotConfigured(name) from None

    def provider(self, name: str) -> FulfilmentProvider:
        try:
            return self.providers[name]
        except KeyError:
            raise NotConfigured(name) from None

    def receiver(self, name: str) -> WebhookReceiver:
        """The webhook receiver of channel or provider `name`."""
        if name in self.channels:
            return self.channels[name].webhooks
        provider = self.providers.get(name)
        if provider is not None and provider.webhooks is not None:
            return provider.webhooks
        raise NotConfigured(name)

    def close(self) -> None:
        """Close the HTTP clients the connectors opened for themselves."""
        for connector in [*self.channels.values(), *self.providers.values()]:
            close = getattr(connector, "close", None)
            if callable(close):
                close()
