"""The reconciliation admin API: the run's shape, and the input it refuses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.harness import Hub
from tests.hub.reconcile.support import reconcile


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_a_run_shows_its_window_counts_and_each_mismatch(hub: Hub) -> None:
    hub.depop.add_product("CAP-1", quantity=1)
    hub.depop.drop_next_webhooks(1)
    purchase_id = hub.depop.purchase("CAP-1")

    found = reconcile(hub, "depop")

    assert {"state", "seen", "created", "updated", "mismatches"} <= found.keys()
    assert {"id", "channel", "window_from", "window_to", "error", "started_at", "finished_at"} <= (
        found.keys()
    )
    assert found["channel"] == "depop"
    assert found["state"] == "done" and found["error"] is None
    assert at(found["window_from"]) < at(found["window_to"])
    assert at(found["started_at"]) <= at(found["finished_at"])
    [mismatch] = found["mismatches"]
    assert mismatch["channel_order_id"] == purchase_id
    assert {"kind", "action", "channel_status"} <= mismatch.keys()
    listed = hub.admin("GET", "/admin/reconcile/runs", params={"channel": "depop"}).json()
    assert [r["id"] for r in listed["data"]] == [found["id"]]
    assert hub.admin("GET", "/admin/reconcile/runs", params={"channel": "topi"}).json() == {
        "data": [],
        "next_cursor": None,
    }


def test_a_run_is_queued_until_a_worker_takes_it(hub: Hub) -> None:
    started = hub.admin("POST", "/admin/reconcile/depop")
    assert started.status_code == 202
    run_id = started.json()["run_id"]

    queued = hub.admin("GET", f"/admin/reconcile/runs/{run_id}").json()

    assert (queued["state"], queued["seen"], queued["started_at"]) == ("queued", 0, None)
    hub.drain()
    assert hub.admin("GET", f"/admin/reconcile/runs/{run_id}").json()["state"] == "done"


def test_an_unknown_run_is_a_json_404(hub: Hub) -> None:
    response = hub.admin("GET", "/admin/reconcile/runs/rec_nope")

    assert response.status_code == 404
    assert response.json()["error"] == "run_not_found"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"from": "2026-11-23T00:00:00Z", "to": "2026-11-20T00:00:00Z"}, "invalid_request"),
        ({"from": "2026-11-20T00:00:00Z", "to": "2026-11-20T00:00:00Z"}, "invalid_request"),
        ({"from": "2026-11-20T00:00:00"}, "invalid_request"),
        ({"to": "2026-11-20T00:00:00"}, "invalid_request"),
        ({"from": "last tuesday"}, "invalid_request"),
        ({"since": "2026-11-20T00:00:00Z"}, "invalid_request"),
        ({"from": "2999-01-01T00:00:00Z"}, "invalid_window"),
    ],
)
def test_a_bad_window_is_refused_and_nothing_is_queued(
    hub: Hub, body: dict[str, Any], code: str
) -> None:
    response = hub.admin("POST", "/admin/reconcile/depop", json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error"] == code
    assert response.json()["detail"]
    assert hub.admin("GET", "/admin/reconcile/runs").json()["data"] == []


def test_a_window_reaching_past_now_ends_now(hub: Hub) -> None:
    found = reconcile(hub, "depop", **{"to": "2999-01-01T00:00:00Z"})

    assert found["state"] == "done"
    assert at(found["window_to"]) <= at(found["started_at"])


def test_an_unknown_channel_is_a_json_404(hub: Hub) -> None:
    response = hub.admin("POST", "/admin/reconcile/ebay")

    assert response.status_code == 404
    assert response.json()["error"] == "channel_not_configured"


def test_a_provider_is_not_a_channel_to_reconcile(hub: Hub) -> None:
    assert hub.admin("POST", "/admin/reconcile/deliverr").status_code == 404


def test_reconciliation_needs_the_admin_token(hub: Hub) -> None:
    assert hub.client.post("/admin/reconcile/depop").status_code == 401
    assert hub.client.get("/admin/reconcile/runs").status_code == 401
