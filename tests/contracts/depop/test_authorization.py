"""Depop's seller authorization against what Depop describes: the authorization request the
hub builds fits the authorize operation written from the description (`spec.AUTHORIZE`), and
the code exchange the client sends, with every answer the simulator gives to it, fits the
description's `exchangeToken` operation (validated by the same openapi-core contract as every
other call)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient

from connectors.base import Permanent
from connectors.contracts import ContractLog, watch
from connectors.depop.oauth import HUB_SCOPES, authorization_url, exchange_code
from connectors.depop.simulator import HOST, TOKEN_PATH, DepopSimulator
from connectors.depop.spec import AUTHORIZE, AUTHORIZE_HOST, AUTHORIZE_PATH, CONTRACT, SCOPES
from connectors.pkce import Pkce, new_state

CLIENT = ("depop-app", "depop-app-secret")
REDIRECT_URI = "https://hub.example.com/connections/depop/callback"
AUTHORIZE_URL = AUTHORIZE_HOST + AUTHORIZE_PATH


@pytest.fixture
def sim() -> DepopSimulator:
    return DepopSimulator(oauth_client=CLIENT, redirect_uris=[REDIRECT_URI])


@pytest.fixture
def watched(sim: DepopSimulator) -> Iterator[tuple[TestClient, ContractLog]]:
    with TestClient(sim.app, base_url=HOST, follow_redirects=False) as http:
        yield http, watch(http, CONTRACT, strict=True)


def _url(pkce: Pkce, *, base: str = AUTHORIZE_URL, state: str | None = None) -> str:
    return authorization_url(
        client_id=CLIENT[0],
        redirect_uri=REDIRECT_URI,
        scopes=HUB_SCOPES,
        state=state or new_state(),
        code_challenge=pkce.challenge,
        base=base,
    )


def test_the_scopes_are_the_ones_the_description_lists(shared_specs: Path) -> None:
    preamble = (shared_specs / "depop-selling-openapi.yml").read_text().split("\npaths:")[0]
    assert tuple(re.findall(r"- \*\*`(\w+)`\*\*", preamble)) == SCOPES
    assert set(HUB_SCOPES) <= set(SCOPES)


def test_the_authorization_request_fits_the_authorize_operation() -> None:
    url = _url(Pkce.new())
    assert AUTHORIZE.request_problems("GET", url, {}, None) == []
    query = parse_qs(urlsplit(url).query, strict_parsing=True)
    assert {name: len(values) for name, values in query.items()} == {
        "response_type": 1,
        "client_id": 1,
        "redirect_uri": 1,
        "scope": 1,
        "state": 1,
        "code_challenge": 1,
        "code_challenge_method": 1,
    }
    assert query["response_type"] == ["code"] and query["code_challenge_method"] == ["S256"]
    assert query["scope"] == [" ".join(HUB_SCOPES)]
    assert urlsplit(url)._replace(query="").geturl() == AUTHORIZE_URL


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("code_challenge_method", "plain", "code_challenge_method"),
        ("code_challenge", "too-short", "code_challenge"),
        ("scope", "orders_read,orders_write", "scope"),
        ("response_type", "token", "response_type"),
    ],
)
def test_the_authorize_operation_refuses_a_request_pkce_s256_does_not_allow(
    name: str, value: str, problem: str
) -> None:
    parts = urlsplit(_url(Pkce.new()))
    query = [(k, value if k == name else v) for k, v in parse_qsl(parts.query)]
    bad = parts._replace(query="&".join(f"{k}={v}" for k, v in query)).geturl()
    problems = AUTHORIZE.request_problems("GET", bad, {}, None)
    assert any(problem in p for p in problems), problems


def test_the_simulators_authorize_answer_fits_and_the_code_exchange_fits_the_description(
    sim: DepopSimulator, watched: tuple[TestClient, ContractLog]
) -> None:
    http, log = watched
    pkce, state = Pkce.new(), new_state()
    # The seller's browser, not the watched client: the authorize page is no API operation.
    with TestClient(sim.app, base_url=HOST, follow_redirects=False) as browser:
        answer = browser.get(_url(pkce, base=HOST + AUTHORIZE_PATH, state=state))
    assert answer.status_code == 302
    assert AUTHORIZE.response_problems("GET", str(answer.url), 302, answer.headers, b"") == []
    location = urlsplit(answer.headers["location"])
    assert location._replace(query="").geturl() == REDIRECT_URI
    back = dict(parse_qsl(location.query))
    assert back["state"] == state

    tokens = exchange_code(
        http,
        client_id=CLIENT[0],
        client_secret=CLIENT[1],
        code=back["code"],
        redirect_uri=REDIRECT_URI,
        code_verifier=pkce.verifier,
    )
    assert tokens.access_token.startswith("pat_") and tokens.refresh_token.startswith("prt_")
    assert tokens.expires_in == 3600
    exchange = log.exchanges[-1]
    assert exchange.operation is not None and exchange.operation.path == TOKEN_PATH
    assert exchange.status == 200 and log.problems == []


def _code(sim: DepopSimulator, pkce: Pkce, redirect_uri: str = REDIRECT_URI) -> str:
    return sim.authorization_code(pkce.challenge, redirect_uri, HUB_SCOPES)


@pytest.mark.parametrize(
    ("spoil", "status", "error", "kind"),
    [
        ("reused_code", 400, "invalid_grant", "invalid_grant"),
        ("other_redirect_uri", 400, "invalid_grant", "invalid_grant"),
        ("wrong_verifier", 400, "invalid_request", "invalid_request"),
        ("wrong_secret", 401, "client secret does not match", "invalid_client"),
    ],
)
def test_every_refused_code_exchange_fits_the_description_and_is_permanent(
    sim: DepopSimulator,
    watched: tuple[TestClient, ContractLog],
    spoil: str,
    status: int,
    error: str,
    kind: str,
) -> None:
    http, log = watched
    pkce = Pkce.new()
    code = _code(sim, pkce)
    form = {
        "client_id": CLIENT[0],
        "client_secret": CLIENT[1],
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
    }
    if spoil == "reused_code":
        exchange_code(http, **form)
    elif spoil == "other_redirect_uri":
        form["redirect_uri"] = "https://elsewhere.example.com/callback"
    elif spoil == "wrong_verifier":
        form["code_verifier"] = Pkce.new().verifier
    else:
        form["client_secret"] = "not-the-secret"
    with pytest.raises(Permanent) as refused:
        exchange_code(http, **form)
    assert refused.value.code == kind
    last = log.exchanges[-1]
    assert last.status == status and last.response_problems == ()
    assert log.problems == []
    assert error in refused.value.reason or kind == "invalid_client"
