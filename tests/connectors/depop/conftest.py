"""Fixtures shared by the Depop connector tests: a simulator, a channel wired to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.depop import DepopChannel, DepopSettings
from connectors.depop.simulator import HOST, DepopSimulator

API_KEY = "depop-test-key"
WEBHOOK_SECRET = "depop-test-secret"


def make_settings(
    api_key: str | None = API_KEY, webhook_secret: str | None = WEBHOOK_SECRET
) -> DepopSettings:
    return DepopSettings(
        base_url=HOST,
        api_key=SecretStr(api_key) if api_key is not None else None,
        webhook_secret=SecretStr(webhook_secret) if webhook_secret is not None else None,
    )


@pytest.fixture
def sim() -> DepopSimulator:
    return DepopSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)


@pytest.fixture
def channel(sim: DepopSimulator) -> Iterator[DepopChannel]:
    with TestClient(sim.app, base_url=HOST) as http:
        yield DepopChannel(make_settings(), http=http)


class Clock:
    """A clock a test moves by hand (`clock.now += timedelta(...)`)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
