"""`POST /webhooks/{channel}`: authenticate, store once, queue, answer; and what the admin API
shows and replays afterwards. Driven through the hub app with the fake channel's signing."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hub.db import Database
from tests.fake_channel import order_json, signed, webhook
from tests.harness import Hub, make_hub
from tests.hub.inbox.live import serving

MIB = 1 << 20


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, fake=True)
    yield h
    h.close()


def post(hub: Hub, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    response: httpx.Response = hub.client.post(
        "/webhooks/fake", content=body, headers=signed(body) if headers is None else headers
    )
    return response


def events(hub: Hub, **params: Any) -> list[dict[str, Any]]:
    response = hub.admin("GET", "/admin/events", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def jobs(hub: Hub, **params: Any) -> list[dict[str, Any]]:
    response = hub.admin("GET", "/admin/jobs", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def new_order(event_id: str, order_id: str) -> bytes:
    return webhook(event_id, "order.new", order_json(order_id, ("SKU-1", 1)))


def test_signed_webhook_is_stored_queued_and_becomes_an_order(hub: Hub) -> None:
    response = post(hub, new_order("evt-1", "A-1"))

    assert response.status_code == 200
    receipt = response.json()
    assert receipt["status"] == "accepted"
    [stored] = events(hub)
    assert (stored["id"], stored["external_id"], stored["status"]) == (
        receipt["event_id"],
        "evt-1",
        "pending",
    )
    assert [j["kind"] for j in jobs(hub)] == ["inbox.process"]

    hub.drain()

    order = hub.order("fake", "A-1")
    assert order["status"] == "confirmed"
    [processed] = events(hub)
    assert processed["status"] == "processed"
    assert processed["order_id"] == order["id"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-headers"),
        pytest.param(
            {"x-fake-timestamp": str(int(datetime.now(UTC).timestamp()))}, id="no-signature"
        ),
        pytest.param(signed(b"another body"), id="signature-of-another-body"),
        pytest.param(
            signed(new_order("evt-1", "A-1"), datetime.now(UTC) - timedelta(minutes=6)),
            id="six-minutes-old",
        ),
        pytest.param({**signed(new_order("evt-1", "A-1")), "x-fake-signature": "zz"}, id="not-hex"),
    ],
)
def test_unauthenticated_webhook_answers_401_and_stores_nothing(
    hub: Hub, headers: dict[str, str]
) -> None:
    response = post(hub, new_order("evt-1", "A-1"), headers)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert events(hub) == []
    assert jobs(hub) == []


def _padded(size: int) -> bytes:
    """A valid fake order webhook of exactly `size` bytes."""
    empty = webhook("evt-big", "order.new", {**order_json("BIG", ("SKU-1", 1)), "pad": ""})
    pad = size - len(empty)
    body = webhook("evt-big", "order.new", {**order_json("BIG", ("SKU-1", 1)), "pad": "x" * pad})
    assert len(body) == size
    return body


def test_body_over_one_mebibyte_answers_413_and_stores_nothing(hub: Hub) -> None:
    body = _padded(MIB + 1)

    response = post(hub, body)

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert events(hub) == []


def test_streamed_body_over_one_mebibyte_without_a_length_answers_413(hub: Hub) -> None:
    body = _padded(MIB + 1)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = hub.client.post("/webhooks/fake", content=chunks(), headers=signed(body))

    assert response.status_code == 413
    assert events(hub) == []


def test_body_of_exactly_one_mebibyte_is_accepted(hub: Hub) -> None:
    response = post(hub, _padded(MIB))

    assert response.status_code == 200
    assert response.json()["status"] == "accepted"


def test_unknown_channel_answers_404_channel_not_configured(hub: Hub) -> None:
    body = new_order("evt-1", "A-1")

    response = hub.client.post("/webhooks/nowhere", content=body, headers=signed(body))

    assert response.status_code == 404
    assert response.json()["error"] == "channel_not_configured"
    assert events(hub) == []


def test_channel_without_credentials_answers_404_channel_not_configured(
    database: Database,
) -> None:
    hub = make_hub(database, deliverr=False, flexport=False)
    try:
        response = hub.client.post(
            "/webhooks/deliverr", content=b"{}", headers={"x-deliverr-token": "anything"}
        )
    finally:
        hub.close()

    assert response.status_code == 404
    assert response.json() == {
        "error": "channel_not_configured",
        "detail": "channel 'deliverr' is not configured",
    }


def test_duplicate_delivery_answers_duplicate_and_creates_nothing(hub: Hub) -> None:
    body = new_order("evt-1", "A-1")
    first = post(hub, body).json()
    hub.drain()
    before = hub.order("fake", "A-1")
    jobs_before = jobs(hub)

    again = post(hub, body)
    hub.drain()

    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "event_id": first["event_id"]}
    assert len(events(hub)) == 1
    assert jobs(hub) == jobs_before
    assert hub.order("fake", "A-1")["history"] == before["history"]
    assert hub.fake is not None and hub.fake.count("acknowledge") == 1


def test_authenticated_unreadable_body_is_stored_as_failed_and_replayable(hub: Hub) -> None:
    body = b"this is not json"

    response = post(hub, body)

    assert response.status_code == 200
    receipt = response.json()
    assert receipt["status"] == "accepted"
    [failed] = events(hub, status="failed")
    assert failed["id"] == receipt["event_id"]
    assert failed["event_type"] == "unreadable"
    assert failed["error"].startswith("unreadable payload")
    assert jobs(hub) == [], "an unreadable event is not processed until someone replays it"
    detail = hub.admin("GET", f"/admin/events/{failed['id']}").json()
    assert detail["body"] == "this is not json"
    # The same bytes again are the same event: stored once.
    assert post(hub, body).json() == {"status": "duplicate", "event_id": failed["id"]}

    replay = hub.admin("POST", f"/admin/events/{failed['id']}/replay")
    assert replay.status_code == 202
    hub.drain()

    [still_failed] = events(hub)
    assert still_failed["status"] == "failed"
    assert still_failed["replays"] == 1
    assert "unreadable" in still_failed["error"]
    assert [j["state"] for j in jobs(hub, kind="inbox.process")] == ["done"]


def test_event_whose_content_cannot_be_parsed_is_marked_failed_when_processed(hub: Hub) -> None:
    body = json.dumps({"id": "evt-2", "type": "order.new", "order": {"id": "A-2"}}).encode()

    receipt = post(hub, body).json()
    hub.drain()

    [event] = events(hub)
    assert (event["id"], event["status"]) == (receipt["event_id"], "failed")
    assert "unreadable" in event["error"]
    assert hub.orders(channel="fake") == []


def test_replaying_a_processed_event_changes_nothing(hub: Hub) -> None:
    receipt = post(hub, new_order("evt-1", "A-1")).json()
    hub.drain()
    before = hub.order("fake", "A-1")

    response = hub.admin("POST", f"/admin/events/{receipt['event_id']}/replay")
    hub.drain()

    assert response.status_code == 202
    after = hub.order("fake", "A-1")
    assert after["history"] == before["history"]
    assert after["status"] == before["status"]
    [event] = events(hub)
    assert (event["status"], event["replays"]) == ("processed", 1)
    assert hub.fake is not None and hub.fake.count("acknowledge") == 1


def test_replaying_an_unknown_event_answers_404(hub: Hub) -> None:
    response = hub.admin("POST", "/admin/events/424242/replay")

    assert response.status_code == 404
    assert response.json()["error"] == "event_not_found"


def test_event_admin_needs_the_admin_token(hub: Hub) -> None:
    assert hub.client.get("/admin/events").status_code == 401


@pytest.mark.postgres_only
def test_same_webhook_delivered_three_times_at_once_is_stored_and_processed_once(
    postgres_database: Database,
) -> None:
    hub = make_hub(postgres_database, fake=True)
    deliveries = 3
    rounds = 4
    try:
        with serving(hub.client.app) as base_url:  # type: ignore[arg-type]
            clients = [httpx.Client(base_url=base_url, timeout=30) for _ in range(deliveries)]
            answers: list[list[dict[str, Any]]] = []
            for n in range(rounds):
                body = new_order(f"evt-{n}", f"A-{n}")
                headers = signed(body)
                gate = threading.Barrier(deliveries)
                got: list[dict[str, Any]] = []
                lock = threading.Lock()

                def deliver(
                    client: httpx.Client,
                    body: bytes = body,
                    headers: dict[str, str] = headers,
                    gate: threading.Barrier = gate,
                    got: list[dict[str, Any]] = got,
                    lock: threading.Lock = lock,
                ) -> None:
                    gate.wait()
                    response = client.post("/webhooks/fake", content=body, headers=headers)
                    assert response.status_code == 200, response.text
                    with lock:
                        got.append(response.json())

                threads = [threading.Thread(target=deliver, args=(c,)) for c in clients]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                answers.append(got)
            for client in clients:
                client.close()

        hub.drain()

        for got in answers:
            assert len(got) == deliveries
            assert sorted(a["status"] for a in got) == ["accepted", "duplicate", "duplicate"]
            assert len({a["event_id"] for a in got}) == 1
        assert len(events(hub)) == rounds
        orders = hub.orders(channel="fake")
        assert len(orders) == rounds
        assert {o["status"] for o in orders} == {"confirmed"}
        for order in orders:
            kinds = Counter(j["kind"] for j in jobs(hub, order_id=order["id"]))
            assert kinds and set(kinds.values()) == {1}, kinds
        assert Counter(j["kind"] for j in jobs(hub, kind="inbox.process")) == {
            "inbox.process": rounds
        }
        assert hub.fake is not None
        assert (hub.fake.count("acknowledge"), hub.fake.count("accept")) == (rounds, rounds)
        assert len(hub.deliverr.orders) == rounds
    finally:
        hub.close()
