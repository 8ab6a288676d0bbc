"""Which ship method a fulfilment provider is asked for, from the delivery the buyer chose.

A channel reports the buyer's delivery service in its own words (`ChannelOrder.shipping_service`,
carried to `FulfilmentRequest.shipping_service`); a provider wants its own ship methods. A seller
writes the translation once, as JSON in a provider setting (DELIVERR_SHIP_METHODS, for example):

    {"depop:express": "UPS 2ND DAY AIR", "depop": "Standard", "*": "Standard"}

The most specific key wins: `channel:service`, then `channel`, then `*`, then the provider's
configured default. Keys are matched without regard to case or surrounding blanks, because
channels spell the same service differently over time ("Express", "express ").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ANY_CHANNEL = "*"


def _key(text: str) -> str:
    return text.strip().lower()


@dataclass(frozen=True, slots=True)
class ShipMethodMap:
    """A seller's translation from (channel, buyer's service) to a provider's ship method."""

    methods: Mapping[str, str] = field(default_factory=dict)
    default: str | None = None

    def __post_init__(self) -> None:
        normalised: dict[str, str] = {}
        for key, method in self.methods.items():
            problem = _key_problem(key) or _method_problem(method)
            if problem:
                raise ValueError(f"ship method mapping {key!r}: {problem}")
            if _key(key) in normalised:
                raise ValueError(f"ship method mapping names {key!r} twice")
            normalised[_key(key)] = method.strip()
        object.__setattr__(self, "methods", normalised)
        if self.default is not None and _method_problem(self.default):
            raise ValueError("the default ship method is blank")

    def resolve(self, channel: str, service: str | None) -> str | None:
        """The provider's ship method for an order of `channel` whose buyer chose `service`;
        the default (possibly None: let the provider decide) when nothing matches."""
        candidates = [_key(channel), ANY_CHANNEL]
        if service and service.strip():
            candidates.insert(0, f"{_key(channel)}:{_key(service)}")
        for candidate in candidates:
            if candidate in self.methods:
                return self.methods[candidate]
        return self.default


def _key_problem(key: object) -> str | None:
    if not isinstance(key, str) or not key.strip():
        return "a key is a channel, `channel:service` or `*`"
    channel, colon, service = key.partition(":")
    if not channel.strip() or (colon and not service.strip()):
        return "a key is a channel, `channel:service` or `*`"
    if channel.strip() == ANY_CHANNEL and colon:
        return "`*` stands alone: it matches every channel and every service"
    return None


def _method_problem(method: object) -> str | None:
    if not isinstance(method, str) or not method.strip():
        return "the ship method is blank"
    return None
