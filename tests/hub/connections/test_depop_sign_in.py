"""Connecting a Depop shop by the seller signing in, end to end: the hub's admin call, Depop's
authorize page and token endpoint (the simulator, served over HTTP and reached with real httpx
clients), the callback, the connection with its sealed tokens, renewal of an expired access
token by exactly one of two workers, and a revoked grant flagging the connection."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.base import Permanent
from connectors.depop import DepopChannel, DepopSettings
from connectors.depop.oauth import STORE_KEY
from connectors.depop.simulator import TOKEN_PATH, DepopSimulator
from connectors.depop.spec import AUTHORIZE_PATH
from hub.app import create_app
from hub.config import Settings
from hub.connections import repository as connections_repo
from hub.credentials import DatabaseTokenStore
from hub.db import Database
from hub.runtime import Runtime
from hub.secrets import box_for, generate_key
from hub.types import utcnow
from hub.wiring import ScopedTokenStore, build_runtime
from tests.harness import ADMIN_TOKEN, hub_settings
from tests.hub.inbox.live import serving
from tests.hub.test_security import json_log  # noqa: F401  (the fixture)

HUB = "http://hub.test"
CALLBACK = f"{HUB}/connections/depop/callback"
CLIENT = ("hub-depop-app", "hub-depop-app-secret")
WEBHOOK_SECRET = "depop-app-webhook-secret"
READ_TOKEN = "read-only-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Rig:
    settings: Settings
    runtime: Runtime
    hub: TestClient
    sim: DepopSimulator
    sim_url: str

    def channel(self, key: str, runtime: Runtime | None = None) -> DepopChannel:
        channel = (runtime or self.runtime).connectors.channel(key)
        assert isinstance(channel, DepopChannel)
        return channel

    def tokens(self, key: str) -> ScopedTokenStore:
        store = DatabaseTokenStore(self.runtime.db, lambda: box_for(self.settings.hub))
        return ScopedTokenStore(store, key)

    def sim_control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=self.sim_url) as http:
            return http.request(method, path, **kwargs)

    def token_calls(self) -> int:
        return len(self.sim.calls_to("POST", TOKEN_PATH))


@pytest.fixture
def served() -> Iterator[tuple[DepopSimulator, str]]:
    sim = DepopSimulator(
        api_key="not-used-by-signed-in-shops",
        webhook_secret=WEBHOOK_SECRET,
        oauth_client=CLIENT,
        redirect_uris=[CALLBACK],
    )
    with serving(sim.app) as url:
        yield sim, url


def _settings(database_url: str, sim_url: str) -> Settings:
    hub = hub_settings(
        database_url,
        secret_key=SecretStr(generate_key()),
        admin_read_tokens=[SecretStr(f"viewer:{READ_TOKEN}")],
        connections_refresh_seconds=0.0,  # every lookup sees a connection changed just now
    )
    depop = DepopSettings(
        _env_file=None,
        base_url=sim_url,
        client_id=CLIENT[0],
        client_secret=SecretStr(CLIENT[1]),
        webhook_secret=SecretStr(WEBHOOK_SECRET),
        authorize_url=sim_url + AUTHORIZE_PATH,
    )
    return Settings(hub, depop=depop)


@pytest.fixture
def rig(database: Database, served: tuple[DepopSimulator, str]) -> Iterator[Rig]:
    sim, sim_url = served
    settings = _settings(database.url, sim_url)
    runtime = build_runtime(settings, db=database)
    with TestClient(create_app(runtime), base_url=HUB) as hub:
        yield Rig(settings, runtime, hub, sim, sim_url)
    runtime.connectors.close()


def _start(rig: Rig, name: str, **headers: str) -> httpx.Response:
    answer: httpx.Response = rig.hub.post(
        "/admin/connections/depop/authorize", json={"name": name}, headers=headers or AUTH
    )
    return answer


def _seller(rig: Rig, name: str) -> str:
    """The hub starts a sign-in; the seller's browser follows it to Depop (real HTTP), which
    redirects back: the callback URL the browser is sent to."""
    started = _start(rig, name)
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["connection"] == f"depop/{name}"
    assert body["authorization_url"].startswith(rig.sim_url + AUTHORIZE_PATH + "?")
    with httpx.Client() as browser:
        approved = browser.get(body["authorization_url"])
    assert approved.status_code == 302, approved.text
    location = str(approved.headers["location"])
    assert location.startswith(CALLBACK + "?")
    return location


def _connect(rig: Rig, name: str) -> dict[str, Any]:
    answer = rig.hub.get(_seller(rig, name))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _connection(rig: Rig, key: str) -> Any:
    with rig.runtime.db.reader() as session:
        return connections_repo.get(session, key)


def _expire_access_token(rig: Rig, key: str) -> dict[str, str]:
    """Our clock says the access token has a minute left: inside the renewal margin."""
    store = rig.tokens(key)
    stored = dict(store.load(STORE_KEY) or {})
    assert stored, f"no tokens stored for {key}"
    stored["expires_at"] = repr(time.time() + 60)
    store.save(STORE_KEY, stored)
    return stored


# -- the flow -------------------------------------------------------------------------------------


def test_a_seller_signs_in_and_the_shop_is_connected_enabled_and_working(rig: Rig) -> None:
    assert _connect(rig, "shop-b") == {
        "connection": "depop/shop-b",
        "status": "connected",
        "created": True,
    }
    row = _connection(rig, "depop/shop-b")
    assert row is not None and row.enabled and row.attention_reason is None
    rig.sim.add_product("A")
    token_calls = rig.token_calls()
    assert rig.channel("depop/shop-b").client.get_product("A").sku == "A"
    assert rig.token_calls() == token_calls  # the exchange's access token is used as it is
    assert rig.runtime.connectors.channel_keys("depop") == ["depop/shop-b"]


def test_tokens_and_secrets_are_unreadable_in_the_database(rig: Rig) -> None:
    location = _seller(rig, "shop-b")
    state = dict(parse_qsl(urlsplit(location).query))["state"]
    assert rig.hub.get(location).status_code == 200
    stored = rig.tokens("depop/shop-b").load(STORE_KEY)
    assert stored is not None
    secrets = [stored["access_token"], stored["refresh_token"], CLIENT[1], WEBHOOK_SECRET, state]
    engine = sa.create_engine(rig.runtime.db.url)
    with engine.connect() as conn:
        dump = " ".join(
            str(row)
            for table in ("connections", "stored_credentials", "connection_sign_ins")
            for row in conn.execute(sa.text(f"SELECT * FROM {table}"))
        )
    engine.dispose()
    assert "depop/shop-b" in dump
    assert [s for s in secrets if s in dump] == []


def test_the_state_is_single_use(rig: Rig) -> None:
    location = _seller(rig, "shop-b")
    assert rig.hub.get(location).status_code == 200
    again = rig.hub.get(location)
    assert again.status_code == 409
    assert again.json()["error"] == "state_already_used"


@pytest.mark.parametrize("query", [{}, {"state": "made-up", "code": "x"}, {"code": "x"}])
def test_a_callback_without_a_state_the_hub_issued_is_refused(
    rig: Rig, query: dict[str, str]
) -> None:
    answer = rig.hub.get(f"/connections/depop/callback?{urlencode(query)}")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_state"
    assert _connection(rig, "depop/shop-b") is None


def test_a_state_older_than_ten_minutes_is_refused(rig: Rig) -> None:
    location = _seller(rig, "shop-b")
    with rig.runtime.db.transaction() as session:
        session.execute(sa.text("UPDATE connection_sign_ins SET expires_at = created_at"))
    answer = rig.hub.get(location)
    assert answer.status_code == 400
    assert answer.json()["error"] == "state_expired"
    assert _connection(rig, "depop/shop-b") is None


def test_a_seller_who_declines_gets_access_denied_and_nothing_is_connected(rig: Rig) -> None:
    assert rig.sim_control("POST", "/_sim/oauth/seller", params={"approve": "false"}).is_success
    location = _seller(rig, "shop-b")
    assert dict(parse_qsl(urlsplit(location).query))["error"] == "access_denied"
    answer = rig.hub.get(location)
    assert answer.status_code == 400
    assert answer.json()["error"] == "access_denied"
    assert "declined" in answer.json()["detail"]
    assert _connection(rig, "depop/shop-b") is None


def test_a_refused_code_exchange_says_why(rig: Rig) -> None:
    location = urlsplit(_seller(rig, "shop-b"))
    query = dict(parse_qsl(location.query)) | {"code": "not-the-code"}
    answer = rig.hub.get(f"{CALLBACK}?{urlencode(query)}")
    assert answer.status_code == 400
    assert answer.json()["error"] == "code_exchange_refused"
    assert "invalid_grant" in answer.json()["detail"]
    assert _connection(rig, "depop/shop-b") is None


def test_a_failing_token_endpoint_is_a_502_and_the_state_is_spent(rig: Rig) -> None:
    location = _seller(rig, "shop-b")
    rig.sim.fail_next(1, 503)
    answer = rig.hub.get(location)
    assert answer.status_code == 502
    assert answer.json()["error"] == "code_exchange_failed"
    assert "start connecting again" in answer.json()["detail"]
    assert rig.hub.get(location).json()["error"] == "state_already_used"


def test_starting_needs_an_admin_token_that_may_write_and_a_good_name(rig: Rig) -> None:
    assert _start(rig, "shop-b", Authorization="Bearer nope").status_code == 401
    assert _start(rig, "shop-b", Authorization=f"Bearer {READ_TOKEN}").status_code == 403
    for bad in ("Shop B", "default", "-x"):
        answer = _start(rig, bad)
        assert answer.status_code == 422, bad
        assert answer.json()["error"] == "invalid_connection"
    other = rig.hub.post("/admin/connections/topi/authorize", json={"name": "x"}, headers=AUTH)
    assert other.status_code == 404 and other.json()["error"] == "sign_in_not_supported"


def test_without_the_hubs_depop_app_nothing_starts(rig: Rig) -> None:
    rig.runtime.connector_settings = {
        **rig.runtime.connector_settings,
        "depop": DepopSettings(_env_file=None, client_id="only-an-id"),
    }
    answer = _start(rig, "shop-b")
    assert answer.status_code == 409
    assert answer.json()["error"] == "sign_in_not_configured"
    assert "DEPOP_CLIENT_SECRET" in answer.json()["detail"]


# -- renewal under two workers, and a revoked grant -----------------------------------------------


def test_an_expired_access_token_is_renewed_exactly_once_by_two_concurrent_workers(
    rig: Rig,
) -> None:
    _connect(rig, "shop-b")
    rig.sim.add_product("A")
    # A second worker process: its own registry, connectors, token cache and lease owner.
    second = build_runtime(rig.settings, db=Database(rig.runtime.db.url))
    try:
        workers = [rig.channel("depop/shop-b"), rig.channel("depop/shop-b", second)]
        assert workers[0] is not workers[1]
        before = _expire_access_token(rig, "depop/shop-b")
        rig.sim.token_latency = 0.3  # the renewal is slow: the other worker arrives meanwhile
        token_calls = rig.token_calls()
        start = threading.Barrier(2)
        results: list[str] = []
        errors: list[BaseException] = []

        def work(channel: DepopChannel) -> None:
            start.wait()
            try:
                results.append(str(channel.client.get_product("A").sku))
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == [] and results == ["A", "A"]
        assert rig.token_calls() == token_calls + 1
        after = rig.tokens("depop/shop-b").load(STORE_KEY)
        assert after is not None
        assert after["refresh_token"] != before["refresh_token"]
        assert after["access_token"] != before["access_token"]
        # Both called Depop with the one renewed access token.
        used = {c.headers["authorization"] for c in rig.sim.calls_to("GET", "/api/v1/products/")}
        assert f"Bearer {after['access_token']}" in used
    finally:
        second.connectors.close()
        second.db.dispose()


def test_a_revoked_grant_flags_the_connection_and_signing_in_again_clears_it(rig: Rig) -> None:
    _connect(rig, "shop-b")
    rig.sim.add_product("A")
    [grant] = rig.sim_control("GET", "/_sim/oauth/grants").json()
    assert rig.sim_control("POST", f"/_sim/oauth/grants/{grant['id']}/revoke").is_success
    with pytest.raises(Permanent) as refused:
        rig.channel("depop/shop-b").client.get_product("A")
    assert refused.value.code == "invalid_grant"
    row = _connection(rig, "depop/shop-b")
    assert row.attention_reason is not None
    assert "invalid_grant" in row.attention_reason
    assert "connect the Depop shop again" in row.attention_reason

    assert _connect(rig, "shop-b")["created"] is False
    row = _connection(rig, "depop/shop-b")
    assert row.attention_reason is None and row.enabled
    assert rig.channel("depop/shop-b").client.get_product("A").sku == "A"


def test_two_shops_signed_in_keep_their_own_tokens(rig: Rig) -> None:
    _connect(rig, "shop-a")
    _connect(rig, "shop-b")
    a = rig.tokens("depop/shop-a").load(STORE_KEY)
    b = rig.tokens("depop/shop-b").load(STORE_KEY)
    assert a is not None and b is not None
    assert a["refresh_token"] != b["refresh_token"] and a["origin"] != b["origin"]
    assert rig.runtime.connectors.channel_keys("depop") == ["depop/shop-a", "depop/shop-b"]


# -- the console ----------------------------------------------------------------------------------


def _console(rig: Rig, token: str = ADMIN_TOKEN) -> str:
    """Sign the hub client in to the console; the CSRF token of the connections page."""
    signed = rig.hub.post(
        "/console/login", data={"token": token, "next": "/console"}, follow_redirects=False
    )
    assert signed.status_code == 303, signed.text
    page = rig.hub.get("/console/connections")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    return found.group(1) if found else ""


def _console_seller(rig: Rig, name: str) -> str:
    csrf = _console(rig)
    started = rig.hub.post(
        "/console/connections/depop/connect",
        data={"csrf": csrf, "name": name},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    url = started.headers["location"]
    assert url.startswith(rig.sim_url + AUTHORIZE_PATH)
    with httpx.Client() as browser:
        approved = browser.get(url)
    assert approved.status_code == 302
    return str(approved.headers["location"])


def test_the_console_button_connects_a_shop_and_comes_back_to_the_console(rig: Rig) -> None:
    _console(rig)
    page = rig.hub.get("/console/connections")
    assert "Connect a Depop shop" in page.text
    back = rig.hub.get(_console_seller(rig, "shop-b"), follow_redirects=False)
    assert back.status_code == 303
    assert back.headers["location"] == "/console/connections?connected=depop%2Fshop-b"
    shown = rig.hub.get(back.headers["location"])
    assert "Connected depop/shop-b." in shown.text
    assert '<a href="/console/connections/depop/shop-b">depop/shop-b</a>' in shown.text
    assert _connection(rig, "depop/shop-b").enabled


def test_a_console_sign_in_finished_in_another_browser_is_refused(rig: Rig) -> None:
    location = _console_seller(rig, "shop-b")
    rig.hub.cookies.clear()  # another browser: without the cookie that binds the state
    answer = rig.hub.get(location)
    assert answer.status_code == 403
    assert answer.json()["error"] == "state_not_bound_to_this_browser"
    assert _connection(rig, "depop/shop-b") is None


def test_a_read_only_operator_sees_no_connect_button(rig: Rig) -> None:
    assert _console(rig, READ_TOKEN) == ""
    page = rig.hub.get("/console/connections")
    assert "Connect a Depop shop" in page.text  # the heading says what could be done
    assert "/console/connections/depop/connect" not in page.text


def test_sign_ins_nobody_finished_are_forgotten_after_a_day(rig: Rig) -> None:
    _seller(rig, "shop-a")
    with rig.runtime.db.transaction() as session:
        session.execute(
            sa.text("UPDATE connection_sign_ins SET expires_at = :past"),
            {"past": utcnow() - timedelta(days=2)},
        )
    _seller(rig, "shop-b")
    with rig.runtime.db.reader() as session:
        names = session.execute(sa.text("SELECT name FROM connection_sign_ins")).scalars().all()
    assert names == ["shop-b"]


def test_no_code_state_or_token_of_a_sign_in_reaches_the_logs_or_an_answer(
    rig: Rig,
    json_log: io.StringIO,  # noqa: F811  (the fixture imported above)
) -> None:
    location = _seller(rig, "shop-b")
    query = dict(parse_qsl(urlsplit(location).query))
    answers = [rig.hub.get(location).text, rig.hub.get(location).text]  # connected, then reused
    stored = rig.tokens("depop/shop-b").load(STORE_KEY)
    assert stored is not None
    [grant] = rig.sim_control("GET", "/_sim/oauth/grants").json()
    rig.sim_control("POST", f"/_sim/oauth/grants/{grant['id']}/revoke")
    with pytest.raises(Permanent):
        rig.channel("depop/shop-b").client.get_product("A")
    answers.append(rig.hub.get("/admin/connections/depop/shop-b", headers=AUTH).text)
    answers.append(rig.hub.get("/admin/connections", headers=AUTH).text)

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    events = {line["event"] for line in lines}
    assert {"hub.connections.signed_in", "hub.connections.flagged"} <= events, events
    # The hub's own log: the test's browser (httpx) logging the URLs it visits is not the hub.
    hub_log = json.dumps([line for line in lines if not line["event"].startswith("HTTP Request")])
    secrets = {
        "code": query["code"],
        "state": query["state"],
        "access token": stored["access_token"],
        "refresh token": stored["refresh_token"],
        "client secret": CLIENT[1],
        "webhook secret": WEBHOOK_SECRET,
    }
    assert [what for what, value in secrets.items() if value in hub_log] == []
    assert [what for what, value in secrets.items() if any(value in a for a in answers)] == []


def test_two_callbacks_with_one_state_at_once_connect_once(rig: Rig) -> None:
    location = urlsplit(_seller(rig, "shop-b"))
    token_calls = rig.token_calls()
    rig.sim.token_latency = 0.2
    start = threading.Barrier(2)
    statuses: list[int] = []
    with serving(create_app(rig.runtime)) as hub_url:

        def callback() -> None:
            with httpx.Client(base_url=hub_url, timeout=30) as browser:
                start.wait()
                statuses.append(browser.get(f"{location.path}?{location.query}").status_code)

        threads = [threading.Thread(target=callback) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert sorted(statuses) == [200, 409]
    assert rig.token_calls() == token_calls + 1  # the code was exchanged once


def test_two_sign_ins_of_one_name_at_once_leave_a_working_connection(rig: Rig) -> None:
    locations = [urlsplit(_seller(rig, "shop-b")) for _ in range(2)]
    rig.sim.token_latency = 0.3
    rig.sim.add_product("A")
    start = threading.Barrier(2)
    answers: dict[int, httpx.Response] = {}
    with serving(create_app(rig.runtime)) as hub_url:

        def callback(index: int) -> None:
            location = locations[index]
            with httpx.Client(base_url=hub_url, timeout=30) as browser:
                start.wait()
                answers[index] = browser.get(f"{location.path}?{location.query}")

        threads = [threading.Thread(target=callback, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        statuses = sorted(a.status_code for a in answers.values())
        assert statuses == [200, 409], [a.text for a in answers.values()]
        [(late, busy)] = [(i, a) for i, a in answers.items() if a.status_code == 409]
        assert busy.json()["error"] == "sign_in_in_progress"
        assert rig.channel("depop/shop-b").client.get_product("A").sku == "A"
        # The one told to try again may: its state was not spent.
        location = locations[late]
        with httpx.Client(base_url=hub_url, timeout=30) as browser:
            again = browser.get(f"{location.path}?{location.query}")
    assert again.status_code == 200 and again.json()["created"] is False
    assert rig.channel("depop/shop-b").client.get_product("A").sku == "A"


def test_a_revoked_grant_of_depop_refresh_token_flags_the_default_connection(rig: Rig) -> None:
    seed = rig.sim.grant()
    depop = rig.settings.connectors["depop"]
    assert isinstance(depop, DepopSettings)
    settings = Settings(
        rig.settings.hub, depop=depop.model_copy(update={"refresh_token": SecretStr(seed)})
    )
    runtime = build_runtime(settings, db=rig.runtime.db)
    try:
        rig.sim.revoke(seed)
        with pytest.raises(Permanent):
            rig.channel("depop/default", runtime).client.get_product("A")
    finally:
        runtime.connectors.close()
    reason = _connection(rig, "depop/default").attention_reason
    assert reason is not None and "DEPOP_REFRESH_TOKEN" in reason
