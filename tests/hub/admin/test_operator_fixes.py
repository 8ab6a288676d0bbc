"""What an operator needs from the API beyond CONTRACT.md: the buyer's address for admin tokens,
a stock list, times on movements, the status code of a failed call, a request id on every
answer and log line, an access log, rejected webhooks on record, named tokens in an audit log,
and /docs that works offline."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.base import Permanent
from hub.config import HubSettings
from hub.db import Database
from hub.deps import identify, known_tokens
from hub.sim import environment
from tests.harness import ADMIN_TOKEN, Hub, all_settings, make_hub
from tests.hub.test_security import json_log

from .conftest import error, ok, place, send

READER = "read-only-token"
__all__ = ["json_log"]  # the fixture, used by name


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, fake=True, admin_read_tokens=[SecretStr(f"viewer:{READER}")])
    yield h
    h.close()


def lines(log: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]


def test_the_order_shows_the_buyer_and_address_to_admin_tokens_only(hub: Hub) -> None:
    hub.topi.create_order({"SKU-1": 1}, email="ada@example.com")
    hub.drain()
    order = hub.orders(channel="topi")[0]
    reader = {"authorization": f"Bearer {READER}"}

    assert order["buyer_email"] == "ada@example.com"
    assert order["shipping_address"]["country_code"]
    detail = hub.order_by_id(order["id"])
    assert detail["buyer_email"] == "ada@example.com" and detail["shipping_address"]
    hidden = ok(hub.client.get(f"/admin/orders/{order['id']}", headers=reader))
    assert hidden["buyer_email"] is None and hidden["shipping_address"] is None
    listed = ok(hub.client.get("/admin/orders", headers=reader))["data"][0]
    assert listed["buyer_email"] is None and listed["shipping_address"] is None


def test_stock_is_listed_in_sku_order_searched_and_paged(hub: Hub) -> None:
    ok(
        hub.admin(
            "PUT",
            "/admin/stock",
            json={
                "items": [{"sku": f"TEE-{n}", "on_hand": n} for n in range(5)]
                + [{"sku": "MUG_1", "on_hand": 1}]
            },
        )
    )

    first = ok(hub.admin("GET", "/admin/stock", params={"limit": 4}))
    rest = ok(hub.admin("GET", "/admin/stock", params={"limit": 4, "cursor": first["next_cursor"]}))

    assert [s["sku"] for s in first["data"]] == ["MUG_1", "TEE-0", "TEE-1", "TEE-2"]
    assert [s["sku"] for s in rest["data"]] == ["TEE-3", "TEE-4"] and rest["next_cursor"] is None
    found = ok(hub.admin("GET", "/admin/stock", params={"q": "tee-4"}))["data"]
    assert found == [{"sku": "TEE-4", "on_hand": 4, "reserved": 0, "available": 4}]
    # `_` is a character here, not SQL's any-one-character wildcard.
    assert ok(hub.admin("GET", "/admin/stock", params={"q": "G_"}))["data"][0]["sku"] == "MUG_1"
    assert ok(hub.admin("GET", "/admin/stock", params={"q": "E_"}))["data"] == []


def test_movements_say_when_they_happened(hub: Hub) -> None:
    hub.set_stock("SKU-1", 4)
    place(hub, "M-1", ("SKU-1", 1))

    movements = ok(hub.admin("GET", "/admin/stock/SKU-1/movements"))

    assert [m["reason"] for m in movements] == ["reserve", "restock"]
    assert all(m["at"].endswith("Z") or "+00:00" in m["at"] for m in movements)
    assert movements[0]["id"] > movements[1]["id"]


def attempts(hub: Hub) -> list[tuple[str, str, int | None]]:
    """(kind, outcome, status code) of every attempt of every job, oldest first."""
    found = []
    for job in ok(hub.admin("GET", "/admin/jobs", params={"limit": 500}))["data"]:
        for a in ok(hub.admin("GET", f"/admin/jobs/{job['id']}"))["history"]:
            found.append((job["kind"], a["outcome"], a["status_code"]))
    return found


def test_a_failed_call_keeps_the_status_code_the_other_side_answered(hub: Hub) -> None:
    hub.deliverr.fail_next(1, status=503)
    place(hub, "S-1", ("SKU-1", 1))

    tried = [a[1:] for a in attempts(hub) if a[0] == "fulfilment.route"]

    assert tried == [("retry", 503), ("ok", None)]


def test_a_refused_call_keeps_its_4xx_and_a_job_without_a_call_keeps_none(hub: Hub) -> None:
    assert hub.fake is not None
    hub.deliverr.set_error_for_next_create("ORDER_MISSING_ADDRESS_LINE")
    place(hub, "S-2", ("SKU-1", 1))
    hub.fake.failures["acknowledge"] = [Permanent("refused without a call")]
    place(hub, "S-3", ("SKU-1", 1))

    found = attempts(hub)

    assert ("fulfilment.route", "dead", 400) in found, found
    assert ("order.acknowledge", "dead", None) in found, found


def test_every_answer_carries_a_request_id_and_a_sensible_incoming_one_is_kept(
    hub: Hub, json_log: io.StringIO
) -> None:
    kept = hub.client.get("/admin/orders", headers={"x-request-id": "lb-7f3a:42"})
    made = hub.client.get("/admin/orders")
    forged = hub.client.get("/healthz", headers={"x-request-id": "a b\tc" + "x" * 200})
    too_big = hub.client.post(
        "/admin/stock", content=b"x", headers={"content-length": str(2 << 20)}
    )

    assert kept.headers["x-request-id"] == "lb-7f3a:42"
    assert len(made.headers["x-request-id"]) == 32
    assert forged.headers["x-request-id"] != "a b\tc" and " " not in forged.headers["x-request-id"]
    assert too_big.status_code == 413 and too_big.headers["x-request-id"]
    access = [line for line in lines(json_log) if line["event"] == "hub.http.request"]
    assert {"method": "GET", "path": "/admin/orders", "status": 401} == {
        k: access[0][k] for k in ("method", "path", "status")
    }
    assert access[0]["request_id"] == "lb-7f3a:42"
    assert [line["status"] for line in access] == [401, 401, 200, 413]


def test_every_line_logged_while_serving_a_request_carries_its_id(
    hub: Hub, json_log: io.StringIO
) -> None:
    send(hub, "L-1", ("SKU-1", 1))
    response = hub.client.get("/healthz", headers={"x-request-id": "probe-1"})

    received = [line for line in lines(json_log) if line["event"] == "hub.inbox.received"]
    assert received and received[0]["request_id"]
    assert response.headers["x-request-id"] == "probe-1"
    # The id is the request's: nothing logged outside a request keeps an old one.
    hub.drain()
    assert all("request_id" not in line for line in lines(json_log) if "job_id" in line)


def test_a_rejected_webhook_is_logged_and_kept_without_body_or_secret(
    hub: Hub, json_log: io.StringIO
) -> None:
    body = b'{"id": "evt-1", "type": "order.new", "order": {"card": "4111111111111111"}}'
    response = hub.client.post(
        "/webhooks/fake",
        content=body,
        headers={"x-fake-timestamp": "1", "x-fake-signature": "deadbeef"},
    )
    hub.client.post("/webhooks/nowhere", content=b"{}")

    error(response, 401, "unauthenticated")
    [logged] = [line for line in lines(json_log) if line["event"] == "hub.inbox.rejected"][:1]
    assert logged["channel"] == "fake" and logged["remote_addr"] == "testclient"
    assert logged["reason"] and logged["request_id"]
    assert "4111" not in json_log.getvalue() and "deadbeef" not in json_log.getvalue()
    kept = ok(hub.admin("GET", "/admin/webhooks/deliveries", params={"outcome": "rejected"}))
    assert [(d["channel"], d["remote_addr"]) for d in kept["data"]] == [
        ("nowhere", "testclient"),
        ("fake", "testclient"),
    ]
    assert kept["data"][1]["reason"] == logged["reason"]


def test_a_duplicate_delivery_is_kept_with_the_event_it_repeated(hub: Hub) -> None:
    send(hub, "D-1", ("SKU-1", 1))
    send(hub, "D-1", ("SKU-1", 1))

    [duplicate] = ok(hub.admin("GET", "/admin/webhooks/deliveries"))["data"]

    assert duplicate["outcome"] == "duplicate" and duplicate["event_id"] == 1


def test_a_change_is_audited_under_the_token_name_with_the_reason_given(hub: Hub) -> None:
    hub.set_stock("SKU-1", 4)
    order = place(hub, "A-1", ("SKU-1", 1))

    ok(
        hub.admin(
            "POST",
            f"/admin/orders/{order['id']}/cancel",
            json={"reason": "fraud check failed"},
        )
    )

    entries = ok(hub.admin("GET", "/admin/audit", params={"order_id": order["id"]}))["data"]
    assert [(e["actor"], e["action"], e["reason"]) for e in entries] == [
        ("ops", "order.cancel", "fraud check failed")
    ]
    history = hub.order_by_id(order["id"])["history"][-1]
    assert history["source"] == "admin:ops" and history["detail"] == {
        "reason": "fraud check failed"
    }
    everything = json.dumps(ok(hub.admin("GET", "/admin/audit"))["data"])
    assert ADMIN_TOKEN not in everything
    assert ok(hub.admin("GET", "/admin/audit", params={"action": "stock.set"}))["data"][0][
        "detail"
    ] == {"on_hand": 4}


def test_tokens_are_named_in_configuration_or_by_a_stable_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUB_ADMIN_TOKENS", "alice:tok-alpha-91, tok-beta-92")
    monkeypatch.setenv("HUB_ADMIN_READ_TOKENS", "tok-viewer-93")
    settings = HubSettings()

    names = [(t.name, t.may_write) for t in known_tokens(settings)]

    assert names[0] == ("alice", True)
    assert names[1][0].startswith("admin-") and names[2][0].startswith("reader-")
    assert names == [(t.name, t.may_write) for t in known_tokens(HubSettings())]
    assert identify(settings, "tok-alpha-91") == identify(settings, " tok-alpha-91 ")
    assert identify(settings, "alice:tok-alpha-91") is None
    assert identify(settings, "tok-viewer-93") is not None
    assert not any("tok-" in name for name, _ in names)


def test_docs_work_offline_from_vendored_assets(hub: Hub) -> None:
    page = hub.client.get("/docs")

    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "//unpkg" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/console/static/vendor/swagger-ui/{asset}" in page.text
        assert hub.client.get(f"/console/static/vendor/swagger-ui/{asset}").status_code == 200
    assert hub.client.get("/redoc").status_code == 404  # it would need a CDN


def test_the_simulated_environment_names_every_connector_setting(tmp_path: Any) -> None:
    settings = all_settings(f"sqlite:///{tmp_path}/unused.db")

    env = environment(settings.connectors)

    assert env["DEPOP_BASE_URL"] == "https://partnerapi.depop.com"
    assert env["DEPOP_WEBHOOK_SECRET"] == "depop-webhook-secret"
    assert env["TOPI_WEBHOOK_SECRETS"].startswith("whsec_")
    assert json.loads(env["ABOUTYOU_CARRIER_MAP"])["dhl"] == "DHL"
