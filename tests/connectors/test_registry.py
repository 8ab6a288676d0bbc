"""The registry's look-up for the webhook path: never reads the database, and steps aside
(None) whenever `receiver` would."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from connectors.base import SalesChannel
from connectors.registry import Registry


def test_known_receiver_answers_without_a_refresh_until_one_is_due() -> None:
    now = [100.0]
    refreshes: list[float] = []
    registry = Registry(
        refresh=lambda _: refreshes.append(now[0]), refresh_interval=5.0, clock=lambda: now[0]
    )
    webhooks = object()
    registry.add_channel(cast(SalesChannel, SimpleNamespace(name="depop", webhooks=webhooks)))

    # Never refreshed yet: a refresh is due, so the caller must ask `receiver`.
    assert registry.known_receiver("depop") is None
    assert registry.receiver("depop") is webhooks
    assert refreshes == [100.0]

    now[0] = 104.0
    assert registry.known_receiver("depop") is webhooks
    assert registry.known_receiver("depop/default") is webhooks
    assert registry.known_receiver("depop/shop-b") is None  # a miss: `receiver` refreshes
    assert refreshes == [100.0]

    now[0] = 105.0
    assert registry.known_receiver("depop") is None
    assert refreshes == [100.0]


def test_known_receiver_without_a_refresh_only_knows_what_was_added() -> None:
    registry = Registry()
    webhooks = object()
    registry.add_channel(cast(SalesChannel, SimpleNamespace(name="topi", webhooks=webhooks)))
    assert registry.known_receiver("topi") is webhooks
    assert registry.known_receiver("depop") is None
