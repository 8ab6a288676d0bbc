"""Fuzzing: schemathesis over the hub's own OpenAPI, and hostile bodies on every webhook.

The schemathesis run sends generated requests (bounded examples per operation, data that fits
the schema and data that does not) with a valid admin token to a hub holding real orders,
events, jobs and a reconciliation run, and fails on any 5xx or any response the document does
not describe. SQLite only: the run is about the API's shapes, not the backend.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from connectors.registry import Registry
from connectors.signatures import sign_standard_webhook, sign_timestamped_hex
from hub.app import create_app
from hub.config import HubSettings
from hub.db import Database
from hub.runtime import Runtime
from tests.harness import (
    ADMIN_TOKEN,
    AY_HOOK,
    DELIVERR_HOOK,
    DEPOP_SECRET,
    TOPI_WHSEC,
    Hub,
    make_hub,
)


def _operations() -> list[tuple[str, str, GenerationMode]]:
    """Every documented operation with data that fits its schema, and, when it takes input,
    data that does not. Read from an app that never opens its database."""
    url = f"sqlite:///{Path(tempfile.gettempdir()) / 'hub-fuzz-never-opened.db'}"
    app = create_app(Runtime(HubSettings(database_url=url), Database(url), Registry()))
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            found.append((method.upper(), path, GenerationMode.POSITIVE))
            if operation.get("parameters") or operation.get("requestBody"):
                found.append((method.upper(), path, GenerationMode.NEGATIVE))
    return found


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def fuzz_hub(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One seeded hub for the whole module: the fuzzer only needs something to find."""
    path = tmp_path_factory.mktemp("fuzz") / "hub.db"
    shutil.copy(sqlite_template, path)
    hub = make_hub(Database(f"sqlite:///{path}"))
    hub.depop.add_product("FUZZ-1", quantity=5)
    hub.set_stock("FUZZ-1", 5)
    purchase = hub.depop.purchase("FUZZ-1")
    hub.topi.create_order({"FUZZ-2": 1})  # no stock row: sold untracked
    hub.drain()
    hub.deliverr.ship(hub.order("depop", purchase)["fulfilment_ref"])
    hub.drain()
    assert hub.admin("POST", "/admin/reconcile/depop", json={}).status_code == 202
    hub.drain()
    yield hub
    hub.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_hub: Hub) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_hub.client.app)


CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_api_answers_no_5xx_and_only_what_its_schema_describes(
    api_schema: schemathesis.schemas.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=12,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, checks=CHECKS)

    call()


# -- hostile bodies on every webhook, with valid authentication -------------------------------

CHANNELS = ["depop", "topi", "deliverr", "aboutyou"]


def authenticated(channel: str, body: bytes) -> dict[str, str]:
    """The headers that make `body` pass `channel`'s authentication, whatever the body is."""
    now = str(int(time.time()))
    if channel == "depop":
        signature = sign_timestamped_hex(secret=DEPOP_SECRET, timestamp=now, body=body)
        return {"x-depop-timestamp": now, "x-depop-signature": signature}
    if channel == "topi":
        msg_id = f"msg_{uuid.uuid4().hex}"
        signature = sign_standard_webhook(
            secret=TOPI_WHSEC, msg_id=msg_id, timestamp=now, body=body
        )
        return {"svix-id": msg_id, "svix-timestamp": now, "svix-signature": signature}
    if channel == "deliverr":
        return {"x-deliverr-token": DELIVERR_HOOK}
    return {"x-api-key": AY_HOOK}


# Each channel's envelope, so generated values land on the fields its reader looks at.
ENVELOPE_KEYS = {
    "depop": ["id", "event_type", "created_at", "data"],
    "topi": ["id", "status", "seller_offer_reference", "line_items", "shipping_address"],
    "deliverr": ["eventId", "eventTime", "type", "updateType", "newStatus", "orderId", "shipments"],
    "aboutyou": ["id", "event", "timestamp", "subscription_id", "message"],
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    # Ids and types no column holds: long, with NULs and lone surrogates.
    | st.text(st.characters(exclude_categories=()), min_size=60, max_size=300),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

FIXED_BODIES = {
    "empty": b"",
    "not-json": b"{not json",
    "truncated": b'{"id": "x", "event_type": ',
    "array": b"[1, 2, 3]",
    "number": b"42",
    "null": b"null",
    "invalid-utf8": b"\xff\xfe\x00\x81",
    "deeply-nested": b"[" * 50_000 + b"]" * 50_000,
    "nul-character": b'{"id": "a\\u0000b", "eventId": "a\\u0000b", "event": "x\\u0000"}',
    "lone-surrogate": b'{"id": "a\\ud800", "eventId": "\\udfff", "event": "x\\ud800", '
    b'"event_type": "\\ud800", "type": "\\udc00"}',
    "long-identifiers": json.dumps(
        {key: "x" * 5000 for keys in ENVELOPE_KEYS.values() for key in keys}
    ).encode(),
    "just-under-a-mebibyte": b'{"pad": "' + b"x" * ((1 << 20) - 20) + b'"}',
}


@pytest.fixture
def webhook_hub(database: Database) -> Iterator[Hub]:
    hub = make_hub(database)
    yield hub
    hub.close()


def assert_settled_without_a_crash(hub: Hub) -> None:
    """Every stored event ended as failed, ignored or processed, and no job died of a bug."""
    hub.drain()
    events = hub.admin("GET", "/admin/events", params={"limit": 500}).json()["data"]
    waiting = [e for e in events if e["status"] == "pending"]
    assert waiting == [], waiting
    dead = hub.admin("GET", "/admin/jobs", params={"state": "dead", "limit": 500}).json()["data"]
    assert dead == [], [(j["kind"], j["last_error"]) for j in dead]


@pytest.mark.parametrize("channel", CHANNELS)
def test_malformed_authenticated_webhooks_are_stored_and_answered_2xx(
    webhook_hub: Hub, channel: str
) -> None:
    for name, body in FIXED_BODIES.items():
        response = webhook_hub.client.post(
            f"/webhooks/{channel}", content=body, headers=authenticated(channel, body)
        )

        assert response.status_code == 200, (name, response.text)
        event_id = response.json()["event_id"]
        event = webhook_hub.admin("GET", f"/admin/events/{event_id}").json()
        assert event["body"] == body.decode("utf-8", "replace"), name
    assert_settled_without_a_crash(webhook_hub)


def test_webhooks_over_a_mebibyte_answer_413_and_store_nothing(webhook_hub: Hub) -> None:
    body = b'{"pad": "' + b"x" * (1 << 20) + b'"}'
    for channel in CHANNELS:
        response = webhook_hub.client.post(
            f"/webhooks/{channel}", content=body, headers=authenticated(channel, body)
        )

        assert response.status_code == 413, channel
        assert response.json()["error"] == "payload_too_large"
    assert webhook_hub.admin("GET", "/admin/events").json()["data"] == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_authenticated_envelopes_with_wrong_types_are_stored_and_answered_2xx(
    webhook_hub: Hub, channel: str
) -> None:
    keys = ENVELOPE_KEYS[channel]

    @given(envelope=st.fixed_dictionaries({}, optional={key: json_values for key in keys}))
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def post(envelope: dict[str, object]) -> None:
        body = json.dumps(envelope).encode()
        response = webhook_hub.client.post(
            f"/webhooks/{channel}", content=body, headers=authenticated(channel, body)
        )
        assert response.status_code == 200, (envelope, response.text)

    post()
    assert_settled_without_a_crash(webhook_hub)
