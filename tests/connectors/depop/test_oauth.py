"""Depop OAuth: hour-long access tokens renewed with single-use refresh tokens, never spent
twice, stored before they are used."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.base import Permanent, Retriable
from connectors.depop import DepopChannel, DepopSettings
from connectors.depop.oauth import GRANT_PREFIX, STORE_KEY
from connectors.depop.simulator import HOST, TOKEN_PATH, DepopSimulator
from connectors.tokens import LocalTokenStore
from hub.credentials import DatabaseTokenStore
from hub.db import Database
from hub.secrets import SecretBox, generate_key
from tests.connectors.depop.conftest import Clock

CLIENT_ID, CLIENT_SECRET = "depop-app", "depop-app-secret"
WEBHOOK_SECRET = "depop-webhook-secret"


@pytest.fixture
def sim(clock: Clock) -> DepopSimulator:
    return DepopSimulator(
        api_key="unused-key",
        webhook_secret=WEBHOOK_SECRET,
        clock=clock,
        oauth_client=(CLIENT_ID, CLIENT_SECRET),
    )


@pytest.fixture
def http(sim: DepopSimulator) -> Iterator[TestClient]:
    with TestClient(sim.app, base_url=HOST) as client:
        yield client


def oauth_settings(refresh_token: str) -> DepopSettings:
    return DepopSettings(
        base_url=HOST,
        webhook_secret=SecretStr(WEBHOOK_SECRET),
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        refresh_token=SecretStr(refresh_token),
    )


def token_calls(sim: DepopSimulator) -> int:
    return len(sim.calls_to("POST", TOKEN_PATH))


def test_oauth_settings_configure_the_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPOP_CLIENT_ID", "app")
    monkeypatch.setenv("DEPOP_CLIENT_SECRET", "s")
    monkeypatch.setenv("DEPOP_REFRESH_TOKEN", "prt_1")
    monkeypatch.setenv("DEPOP_WEBHOOK_SECRET", "w")
    monkeypatch.delenv("DEPOP_API_KEY", raising=False)
    settings = DepopSettings(_env_file=None)
    assert settings.uses_oauth and settings.configured
    without_refresh_token = DepopSettings(_env_file=None, refresh_token=None)
    assert not without_refresh_token.configured


def test_the_first_call_renews_stores_the_new_pair_and_succeeds(
    sim: DepopSimulator, http: TestClient
) -> None:
    seed = sim.grant()
    sim.add_product("A")
    purchase_id = sim.purchase("A")
    store = LocalTokenStore()
    channel = DepopChannel(oauth_settings(seed), http=http, token_store=store)
    assert channel.fetch_order(purchase_id).channel_order_id == purchase_id
    stored = store.load(STORE_KEY)
    assert stored is not None
    assert stored["refresh_token"] != seed and stored["refresh_token"].startswith("prt_")
    assert sim.calls[-1].headers["authorization"] == f"Bearer {stored['access_token']}"
    channel.fetch_order(purchase_id)
    assert token_calls(sim) == 1  # the hour is not up: no renewal


def test_a_token_within_minutes_of_expiry_is_renewed_before_use(
    sim: DepopSimulator, http: TestClient
) -> None:
    seed, store = sim.grant(), LocalTokenStore()
    sim.add_product("A")
    DepopChannel(oauth_settings(seed), http=http, token_store=store).client.get_product("A")
    stored = dict(store.load(STORE_KEY) or {})
    store.save(STORE_KEY, stored | {"expires_at": repr(time.time() + 60)})  # a minute left
    other_worker = DepopChannel(oauth_settings(seed), http=http, token_store=store)
    other_worker.client.get_product("A")
    assert token_calls(sim) == 2
    assert [c.status for c in sim.calls_to("GET", "/api/v1/products/")] == [200, 200]


def test_a_401_renews_once_and_the_call_succeeds_with_the_new_token(
    sim: DepopSimulator, http: TestClient, clock: Clock
) -> None:
    channel = DepopChannel(oauth_settings(sim.grant()), http=http, token_store=LocalTokenStore())
    sim.add_product("A")
    channel.client.get_product("A")
    clock.now += timedelta(hours=2)  # Depop's hour is over, though our clock disagrees
    assert channel.client.get_product("A").sku == "A"
    assert token_calls(sim) == 2
    assert [c.status for c in sim.calls_to("GET", "/api/v1/products/")] == [200, 401, 200]


def test_a_revoked_refresh_token_is_permanent_telling_the_seller_to_reconnect(
    sim: DepopSimulator, http: TestClient
) -> None:
    seed = sim.grant()
    sim.revoke(seed)
    channel = DepopChannel(oauth_settings(seed), http=http, token_store=LocalTokenStore())
    with pytest.raises(Permanent) as refused:
        channel.fetch_order("1")
    assert refused.value.code == "invalid_grant"
    assert "reconnect" in refused.value.reason and "DEPOP_REFRESH_TOKEN" in refused.value.reason


def test_a_restart_continues_the_stored_chain_not_the_spent_setting(
    sim: DepopSimulator, http: TestClient, clock: Clock
) -> None:
    seed, store = sim.grant(), LocalTokenStore()
    sim.add_product("A")
    DepopChannel(oauth_settings(seed), http=http, token_store=store).client.get_product("A")
    clock.now += timedelta(hours=2)
    restarted = DepopChannel(oauth_settings(seed), http=http, token_store=store)
    restarted.client.get_product("A")  # 401, then renewal with the stored refresh token
    assert token_calls(sim) == 2


def test_a_new_refresh_token_in_the_settings_starts_a_new_chain(
    sim: DepopSimulator, http: TestClient
) -> None:
    store = LocalTokenStore()
    sim.add_product("A")
    DepopChannel(oauth_settings(sim.grant()), http=http, token_store=store).client.get_product("A")
    reconnected = sim.grant()
    DepopChannel(oauth_settings(reconnected), http=http, token_store=store).client.get_product("A")
    stored = store.load(STORE_KEY)
    assert token_calls(sim) == 2 and stored is not None
    assert stored["refresh_token"] != reconnected


@pytest.mark.postgres_only
def test_an_expired_token_is_renewed_exactly_once_by_two_workers_at_once(
    postgres_database: Database, sim: DepopSimulator, http: TestClient
) -> None:
    seed = sim.grant()
    sim.add_product("A", quantity=2)
    purchase_id = sim.purchase("A")
    # An earlier worker started the chain; its access token has since run out.
    # Sealed with one key every worker holds, as HUB_SECRET_KEY gives them.
    box = SecretBox([generate_key()])
    store = DatabaseTokenStore(postgres_database, lambda: box)
    DepopChannel(oauth_settings(seed), http=http, token_store=store).client.get_product("A")
    stored = dict(store.load(STORE_KEY) or {})
    store.save(STORE_KEY, stored | {"expires_at": repr(time.time() - 10)})
    spent_before = token_calls(sim)
    sim.token_latency = 0.3  # a slow identity service widens the window for a double spend
    workers = [
        DepopChannel(
            oauth_settings(seed),
            http=http,
            token_store=DatabaseTokenStore(postgres_database, lambda: box),
        )
        for _ in range(2)
    ]
    start = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def work(channel: DepopChannel) -> None:
        start.wait()
        try:
            results.append(channel.fetch_order(purchase_id).channel_order_id)
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert results == [purchase_id, purchase_id]
    assert token_calls(sim) - spent_before == 1
    renewed = store.load(STORE_KEY)
    assert renewed is not None and renewed["refresh_token"] != stored["refresh_token"]
    order_reads = sim.calls_to("GET", f"/api/v1/orders/{purchase_id}/")
    assert {c.headers["authorization"] for c in order_reads} == {
        f"Bearer {renewed['access_token']}"
    }


def test_a_connector_seeded_from_a_refresh_token_never_writes_over_a_sign_in(
    sim: DepopSimulator, http: TestClient, clock: Clock
) -> None:
    store = LocalTokenStore()
    sim.add_product("A")
    typed_in = DepopChannel(oauth_settings(sim.grant()), http=http, token_store=store)
    typed_in.client.get_product("A")
    # The seller signs in again: the hub stores the new grant's pair under the same key.
    signed_in = {**dict(store.load(STORE_KEY) or {}), "origin": f"{GRANT_PREFIX}abc"}
    store.save(STORE_KEY, signed_in)
    clock.now += timedelta(hours=2)  # its access token has expired: it must read the store

    with pytest.raises(Retriable):
        typed_in.client.get_product("A")  # its token is refused, its renewal defers

    assert store.load(STORE_KEY) == signed_in
