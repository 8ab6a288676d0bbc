"""The reconciliation job under the job engine's lease: an attempt that lost its lease to
another worker stops without touching the run."""

from __future__ import annotations

from hub.jobs import queue
from hub.jobs.worker import run_claimed
from tests.harness import Hub
from tests.hub.reconcile.support import run


def test_an_attempt_that_lost_its_lease_leaves_the_run_to_the_new_holder(hub: Hub) -> None:
    hub.depop.add_product("HAT-1", quantity=1)
    hub.depop.drop_next_webhooks(1)
    hub.depop.purchase("HAT-1")
    run_id = hub.admin("POST", "/admin/reconcile/depop").json()["run_id"]
    with hub.db.transaction() as session:
        # A worker that took the job and then stalled past its lease...
        [stale] = queue.claim(session, "stalled-worker", lease_seconds=-1)
    with hub.db.transaction() as session:
        # ...and the worker that claimed it again.
        [current] = queue.claim(session, "live-worker", lease_seconds=60)
    assert stale.id == current.id

    run_claimed(hub.runtime, stale)

    assert run(hub, run_id)["state"] == "queued"
    assert hub.orders(channel="depop") == []
    assert hub.depop.calls_to("GET", "/api/v1/orders/") == []

    run_claimed(hub.runtime, current)

    found = run(hub, run_id)
    assert (found["state"], found["seen"], found["created"]) == ("done", 1, 1)
