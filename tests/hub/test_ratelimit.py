"""The channels' rate limits held by every worker process together: the database limiter,
and the limiter the hub lends its connectors."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import pytest

from connectors.base import Retriable
from connectors.depop.client import DepopChannel
from connectors.ratelimit import RateLimit
from hub.connections import service as connections
from hub.db import Database
from hub.ratelimit import DatabaseRateLimiter
from hub.secrets import box_for
from hub.wiring import build_runtime
from tests.harness import all_settings

THREADS = 8
LISTINGS = RateLimit("depop:listings", 20, 1.0)


class Clock:
    """One timeline for every thread of several limiters: each read moves it on a little.
    `sleep` moves nothing; it notes, per thread, how long the limiter made the caller wait."""

    def __init__(self, seed: int) -> None:
        self.now = 1_800_000_000.0
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.mine = threading.local()

    def __call__(self) -> float:
        with self.lock:
            self.now += self.random.uniform(0, 0.004)
            self.mine.read = self.now
            return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.mine.slept = seconds

    def call(self, limiter: DatabaseRateLimiter, limit: RateLimit, max_wait: float) -> float:
        """Acquire a slot the way a connector does; when the call goes (clock time)."""
        self.mine.slept = 0.0
        limiter.acquire(limit, max_wait=max_wait)
        went: float = self.mine.read + self.mine.slept
        return went


@pytest.fixture
def engines(database_url: str, database: Database) -> Iterator[list[Database]]:
    """Two independent engines on one database, as two worker processes have."""
    found = [Database(database_url), Database(database_url)]
    yield found
    for db in found:
        db.dispose()


def in_threads(work: list[threading.Thread]) -> None:
    for thread in work:
        thread.start()
    for thread in work:
        thread.join(120)


@pytest.mark.parametrize("seed", [1, 2])
def test_two_limiters_on_one_database_never_exceed_the_limit_together(
    engines: list[Database], seed: int
) -> None:
    clock = Clock(seed)
    limiters = [DatabaseRateLimiter(db, clock=clock, sleep=clock.sleep) for db in engines]
    went: list[float] = []
    failures: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for _ in range(15):
                # Long enough a wait that every call of the burst gets its turn.
                went.append(clock.call(limiters[i % 2], LISTINGS, max_wait=60))
        except BaseException as exc:
            failures.append(exc)

    in_threads([threading.Thread(target=worker, args=(i,)) for i in range(THREADS)])

    assert not failures, failures[0]
    assert len(went) == THREADS * 15
    went.sort()
    # No window of a second, wherever it starts, holds more than 20 calls: the 21st call
    # after any call goes at least a second after it.
    spans = [went[i + LISTINGS.requests] - went[i] for i in range(len(went) - LISTINGS.requests)]
    assert min(spans) >= LISTINGS.per_seconds - 1e-6


def test_a_call_that_would_wait_too_long_is_retried_later_and_takes_no_slot(
    engines: list[Database],
) -> None:
    clock = Clock(3)
    limiters = [DatabaseRateLimiter(db, clock=clock, sleep=clock.sleep) for db in engines]
    frozen = RateLimit("aboutyou:stocks", 6, 60.0)  # a slot every 10 s
    went: list[float] = []
    refused: list[Retriable] = []
    for n in range(12):
        try:
            went.append(clock.call(limiters[n % 2], frozen, max_wait=25))
        except Retriable as exc:
            refused.append(exc)

    # Slots at +0, +10 and +20 s are within the wait; the rest would be later, and reserve
    # nothing, so the next slot is still +30 s.
    assert len(went) == 3
    assert len(refused) == 9
    assert all(exc.after is not None and 25 < exc.after <= 31 for exc in refused)


def test_the_hub_lends_every_process_a_limiter_shared_through_the_database(
    postgres_database: Database,
) -> None:
    url = postgres_database.url
    first, second = Database(url), Database(url)
    try:
        channels: list[DepopChannel] = []
        for db in (first, second):
            channel = build_runtime(all_settings(url), db=db).connectors.channel("depop")
            assert isinstance(channel, DepopChannel)
            channels.append(channel)
        hourly = RateLimit("depop:test-hourly", 1, 3600.0)

        channels[0].client.limiter.acquire(hourly, max_wait=0)

        # The other process's connector knows that the hour's one call is spent.
        with pytest.raises(Retriable) as refused:
            channels[1].client.limiter.acquire(hourly, max_wait=0)
        assert refused.value.after is not None and refused.value.after > 3000
    finally:
        first.dispose()
        second.dispose()


def test_two_shops_never_spend_each_others_rate_limit(postgres_database: Database) -> None:
    """Depop limits calls per API key: each connection has its own budget, which every
    process of the hub shares."""
    runtime = build_runtime(all_settings(postgres_database.url), db=postgres_database)
    with runtime.db.transaction() as session:
        connections.create(
            session,
            box_for(runtime.settings),
            system="depop",
            name="shop-b",
            values={"api_key": "key-b", "webhook_secret": "secret-b"},
        )
    runtime.connectors.reload()
    shop_a = runtime.connectors.channel("depop")
    shop_b = runtime.connectors.channel("depop/shop-b")
    assert isinstance(shop_a, DepopChannel) and isinstance(shop_b, DepopChannel)
    hourly = RateLimit("depop:test-hourly", 1, 3600.0)

    shop_b.client.limiter.acquire(hourly, max_wait=0)
    shop_a.client.limiter.acquire(hourly, max_wait=0)  # its own hour, not shop B's

    with pytest.raises(Retriable):
        shop_b.client.limiter.acquire(hourly, max_wait=0)
