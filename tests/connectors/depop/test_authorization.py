"""Connecting a Depop shop: PKCE (S256), the authorization URL, the code exchange and its
refusals, and the simulator's authorize page, single-use codes and revocable grants."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.base import Permanent, Retriable
from connectors.depop import DepopChannel, DepopSettings
from connectors.depop.oauth import (
    HUB_SCOPES,
    STORE_KEY,
    authorization_url,
    exchange_code,
    stored_pair,
)
from connectors.depop.simulator import HOST, DepopSimulator
from connectors.depop.spec import AUTHORIZE_PATH
from connectors.depop.transformers import DepopTokenResponse
from connectors.pkce import Pkce, new_code_verifier, new_state, s256_challenge
from connectors.tokens import LocalTokenStore
from tests.connectors.depop.conftest import Clock

CLIENT_ID, CLIENT_SECRET = "depop-app", "depop-app-secret"
REDIRECT_URI = "https://hub.example.com/connections/depop/callback?via=console"


@pytest.fixture
def sim(clock: Clock) -> DepopSimulator:
    return DepopSimulator(
        clock=clock, oauth_client=(CLIENT_ID, CLIENT_SECRET), redirect_uris=[REDIRECT_URI]
    )


@pytest.fixture
def http(sim: DepopSimulator) -> Iterator[TestClient]:
    with TestClient(sim.app, base_url=HOST, follow_redirects=False) as client:
        yield client


def _authorize(http: TestClient, pkce: Pkce, state: str, **overrides: str) -> dict[str, str]:
    """The seller's browser at the authorize page; the query the redirect carried back."""
    url = authorization_url(
        client_id=overrides.pop("client_id", CLIENT_ID),
        redirect_uri=overrides.pop("redirect_uri", REDIRECT_URI),
        scopes=HUB_SCOPES,
        state=state,
        code_challenge=overrides.pop("code_challenge", pkce.challenge),
        base=HOST + AUTHORIZE_PATH,
    )
    answer = http.get(url)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    assert location.path == urlsplit(REDIRECT_URI).path
    return dict(parse_qsl(location.query))


def _exchange(http: TestClient, code: str, verifier: str, **overrides: str) -> DepopTokenResponse:
    return exchange_code(
        http,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        code=code,
        redirect_uri=overrides.get("redirect_uri", REDIRECT_URI),
        code_verifier=verifier,
    )


# -- PKCE -----------------------------------------------------------------------------------


def test_the_s256_challenge_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_verifier_is_long_random_and_of_the_unreserved_alphabet() -> None:
    verifiers = {new_code_verifier() for _ in range(50)}
    assert len(verifiers) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", v) for v in verifiers)
    pkce = Pkce.new()
    assert pkce.method == "S256" and pkce.challenge == s256_challenge(pkce.verifier)


@pytest.mark.parametrize("verifier", ["short", "x" * 129, "a" * 42 + "+", "é" * 43])
def test_a_verifier_outside_rfc_7636_is_refused(verifier: str) -> None:
    with pytest.raises(ValueError, match="43 to 128"):
        s256_challenge(verifier)


def test_the_authorization_url_keeps_a_query_the_base_already_has() -> None:
    url = authorization_url(
        client_id="c",
        redirect_uri="https://h/cb",
        scopes=["orders_read"],
        state="s" * 20,
        code_challenge="c" * 43,
        base="https://auth.example/authorize?tenant=1",
    )
    assert url.startswith("https://auth.example/authorize?tenant=1&response_type=code&")
    assert dict(parse_qsl(urlsplit(url).query))["redirect_uri"] == "https://h/cb"


def test_no_scope_is_no_authorization_request() -> None:
    with pytest.raises(ValueError, match="scope"):
        authorization_url(
            client_id="c", redirect_uri="https://h/cb", scopes=[], state="s", code_challenge="c"
        )


# -- the whole flow, and the seller's choices --------------------------------------------------


def test_approval_redirects_with_code_and_state_and_the_code_buys_a_working_pair(
    sim: DepopSimulator, http: TestClient
) -> None:
    pkce, state = Pkce.new(), new_state()
    back = _authorize(http, pkce, state)
    assert back["state"] == state and back["via"] == "console"  # the redirect_uri's own query
    tokens = _exchange(http, back["code"], pkce.verifier)
    sim.add_product("A")
    settings = DepopSettings(
        base_url=HOST,
        webhook_secret=SecretStr("w"),
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        refresh_token=SecretStr(tokens.refresh_token),
    )
    channel = DepopChannel(settings, http=http, token_store=LocalTokenStore())
    assert channel.client.get_product("A").sku == "A"
    assert [g["scopes"] for g in sim.grants()] == [sorted(HUB_SCOPES)]


def test_a_seller_who_declines_sends_access_denied_with_the_state(
    sim: DepopSimulator, http: TestClient
) -> None:
    assert http.post("/_sim/oauth/seller", params={"approve": "false"}).status_code == 200
    state = new_state()
    back = _authorize(http, Pkce.new(), state)
    assert back["error"] == "access_denied" and back["state"] == state
    assert "code" not in back and sim.grants() == []


def test_a_bad_challenge_goes_back_as_invalid_request(http: TestClient) -> None:
    back = _authorize(http, Pkce.new(), new_state(), code_challenge="plainly-not-s256")
    assert back["error"] == "invalid_request" and "code_challenge" in back["error_description"]


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"redirect_uri": "https://attacker.example/cb"}, "invalid_request"),
    ],
)
def test_an_unknown_client_or_unregistered_redirect_uri_is_never_redirected_to(
    http: TestClient, override: dict[str, str], error: str
) -> None:
    pkce = Pkce.new()
    url = authorization_url(
        client_id=override.get("client_id", CLIENT_ID),
        redirect_uri=override.get("redirect_uri", REDIRECT_URI),
        scopes=HUB_SCOPES,
        state=new_state(),
        code_challenge=pkce.challenge,
        base=HOST + AUTHORIZE_PATH,
    )
    answer = http.get(url)
    assert answer.status_code == 400 and "location" not in answer.headers
    assert answer.json()["error"] == error


# -- the code: single-use, short-lived, bound to its verifier and redirect_uri ------------------


def test_a_code_is_spent_even_by_a_failed_exchange(http: TestClient) -> None:
    pkce = Pkce.new()
    back = _authorize(http, pkce, new_state())
    with pytest.raises(Permanent) as wrong:
        _exchange(http, back["code"], Pkce.new().verifier)
    assert wrong.value.code == "invalid_request"
    with pytest.raises(Permanent) as spent:
        _exchange(http, back["code"], pkce.verifier)
    assert spent.value.code == "invalid_grant" and "connect the shop again" in spent.value.reason


def test_a_code_older_than_ten_minutes_is_refused(http: TestClient, clock: Clock) -> None:
    pkce = Pkce.new()
    back = _authorize(http, pkce, new_state())
    clock.now += timedelta(minutes=10, seconds=1)
    with pytest.raises(Permanent) as refused:
        _exchange(http, back["code"], pkce.verifier)
    assert refused.value.code == "invalid_grant"


def test_a_failing_token_endpoint_is_retriable(sim: DepopSimulator, http: TestClient) -> None:
    pkce = Pkce.new()
    back = _authorize(http, pkce, new_state())
    sim.fail_next(1, 503)
    with pytest.raises(Retriable):
        _exchange(http, back["code"], pkce.verifier)


# -- revoking a grant ---------------------------------------------------------------------------


def test_a_revoked_grant_refuses_its_refresh_token_and_its_access_token(
    sim: DepopSimulator, http: TestClient
) -> None:
    pkce = Pkce.new()
    tokens = _exchange(http, _authorize(http, pkce, new_state())["code"], pkce.verifier)
    sim.add_product("A")
    auth = {"Authorization": f"Bearer {tokens.access_token}"}
    assert http.get("/api/v1/products/by-sku/A/", headers=auth).status_code == 200
    [grant] = http.get("/_sim/oauth/grants").json()
    assert http.post(f"/_sim/oauth/grants/{grant['id']}/revoke").json()["revoked"] is True
    assert http.get("/api/v1/products/by-sku/A/", headers=auth).status_code == 401
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens.refresh_token,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    answer = http.post("/api/v1/oauth2/access-token/", data=refresh)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert http.post("/_sim/oauth/grants/nope/revoke").status_code == 404


def test_revoking_by_a_spent_refresh_token_ends_the_whole_grant(sim: DepopSimulator) -> None:
    first = sim.grant()
    second = sim.exchange_token(
        {
            "grant_type": "refresh_token",
            "refresh_token": first,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
    )["refresh_token"]
    sim.revoke(first)
    assert [g["revoked"] for g in sim.grants()] == [True]
    with pytest.raises(Exception, match="invalid_grant"):
        sim.exchange_token(
            {
                "grant_type": "refresh_token",
                "refresh_token": second,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            }
        )


# -- a shop connected by signing in: the chain starts from the stored pair -----------------------


def _signed_in(
    http: TestClient, store: LocalTokenStore, grant: str, attention: list[str] | None = None
) -> DepopChannel:
    settings = DepopSettings(
        base_url=HOST,
        webhook_secret=SecretStr("w"),
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        oauth_grant=grant,
    )
    assert settings.uses_oauth and settings.configured
    sink = attention if attention is not None else []
    return DepopChannel(settings, http=http, token_store=store, attention=sink.append)


def _connect(http: TestClient, store: LocalTokenStore, grant: str) -> DepopTokenResponse:
    pkce = Pkce.new()
    tokens = _exchange(http, _authorize(http, pkce, new_state())["code"], pkce.verifier)
    store.save(STORE_KEY, stored_pair(tokens, grant, time.time()))
    return tokens


def test_a_signed_in_shop_calls_with_the_stored_access_token_and_renews_it_when_rejected(
    sim: DepopSimulator, http: TestClient, clock: Clock
) -> None:
    store = LocalTokenStore()
    tokens = _connect(http, store, "grant-1")
    sim.add_product("A")
    channel = _signed_in(http, store, "grant-1")
    channel.client.get_product("A")
    assert sim.calls[-1].headers["authorization"] == f"Bearer {tokens.access_token}"
    assert len(sim.calls_to("POST", "/api/v1/oauth2/access-token/")) == 1  # the exchange only
    clock.now += timedelta(hours=2)  # Depop's hour is over
    channel.client.get_product("A")
    stored = store.load(STORE_KEY)
    assert stored is not None and stored["origin"] == "grant-1"
    assert stored["refresh_token"] != tokens.refresh_token


def test_a_signed_in_shop_without_stored_tokens_is_permanent_and_needs_attention(
    http: TestClient,
) -> None:
    attention: list[str] = []
    channel = _signed_in(http, LocalTokenStore(), "grant-1", attention)
    with pytest.raises(Permanent) as refused:
        channel.fetch_order("1")
    assert refused.value.code == "not_connected"
    assert attention == [refused.value.reason] and "connect the Depop shop again" in attention[0]


def test_a_connector_of_an_older_grant_leaves_the_new_pair_alone(
    sim: DepopSimulator, http: TestClient
) -> None:
    store = LocalTokenStore()
    _connect(http, store, "grant-2")
    before = store.load(STORE_KEY)
    with pytest.raises(Retriable):
        _signed_in(http, store, "grant-1").fetch_order("1")
    assert store.load(STORE_KEY) == before


def test_a_revoked_grant_asks_for_attention_once_per_refusal(
    sim: DepopSimulator, http: TestClient, clock: Clock
) -> None:
    store, attention = LocalTokenStore(), list[str]()
    tokens = _connect(http, store, "grant-1")
    sim.revoke(tokens.refresh_token)
    channel = _signed_in(http, store, "grant-1", attention)
    with pytest.raises(Permanent) as refused:
        channel.fetch_order("1")  # the access token is gone with the grant: 401, then refresh
    assert refused.value.code == "invalid_grant"
    assert attention == [refused.value.reason]
    assert "invalid_grant" in attention[0] and "connect the Depop shop again" in attention[0]


# -- the connector's sign-in, as the hub drives it ------------------------------------------------


def test_the_connectors_sign_in_makes_a_connection_that_works() -> None:
    from connectors.connector import Lent
    from connectors.depop import CONNECTOR

    sign_in = CONNECTOR.sign_in
    assert sign_in is not None
    app = CONNECTOR.simulated(HOST)
    assert sign_in.unavailable(app) is None
    sim = CONNECTOR.simulator(app)
    assert isinstance(sim, DepopSimulator)
    with TestClient(sim.app, base_url=HOST, follow_redirects=False) as http:
        redirect_uri = "https://hub.example.com/connections/depop/callback"
        assert sign_in.redirect_uri(app) is None  # the hub's own URL is used
        pkce, state = Pkce.new(), new_state()
        answer = http.get(sign_in.authorization_url(app, redirect_uri, state, pkce.challenge))
        back = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
        assert back["state"] == state
        store = LocalTokenStore()
        values = sign_in.connect(
            app, Lent(http=http, token_store=store), redirect_uri, back["code"], pkce.verifier
        )
        assert "api_key" not in values and "refresh_token" not in values
        assert store.load(STORE_KEY) is not None
        sim.add_product("A")
        channel = CONNECTOR.build(
            DepopSettings(_env_file=None, **values),
            Lent(http=http, token_store=store),
        )
        assert isinstance(channel, DepopChannel)
        assert channel.client.get_product("A").sku == "A"


def test_sign_in_names_what_the_hubs_app_lacks() -> None:
    from connectors.depop.oauth import sign_in_unavailable

    reason = sign_in_unavailable(DepopSettings(_env_file=None, client_id="app"))
    assert reason is not None
    assert "DEPOP_CLIENT_SECRET" in reason and "DEPOP_WEBHOOK_SECRET" in reason
    assert "DEPOP_CLIENT_ID" not in reason
