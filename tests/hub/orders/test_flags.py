"""An order's flags: each reason kept with its source, resolved when its cause is gone or by an
operator with a note, and what lists, filters and the metric read follows the open ones.
Driven through signed webhooks and the admin API, on both backends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from alembic import command
from connectors.base import Permanent
from hub.db import Database
from hub.migrate import alembic_config
from hub.orders import service
from tests.fake_channel import order_json, signed, webhook
from tests.harness import Hub, make_hub


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, fake=True)
    yield h
    h.close()


def place(hub: Hub, order_id: str) -> dict[str, Any]:
    body = webhook(f"evt-{order_id}", "order.new", order_json(order_id, ("SKU-1", 1)))
    response = hub.client.post("/webhooks/fake", content=body, headers=signed(body))
    assert response.status_code == 200, response.text
    hub.drain()
    return hub.order("fake", order_id)


def raise_flag(hub: Hub, order_id: str, reason: str, source: str) -> None:
    with hub.db.transaction() as session:
        service.flag(session, order_id, reason, source)


def resolve(hub: Hub, order_id: str, **body: Any) -> Any:
    return hub.admin("POST", f"/admin/orders/{order_id}/resolve", json=body)


def attention_metric(hub: Hub) -> float:
    for line in hub.client.get("/metrics").text.splitlines():
        if line.startswith("hub_orders_needing_attention "):
            return float(line.split()[1])
    raise AssertionError("no hub_orders_needing_attention in /metrics")


def test_a_second_reason_is_kept_beside_the_first(hub: Hub) -> None:
    hub.set_stock("SKU-1", 5)
    order = place(hub, "A-1")

    raise_flag(hub, order["id"], "address looks wrong", "webhook:fake:evt-9")
    raise_flag(hub, order["id"], "buyer asked for a gift wrap", "admin:desk")
    raise_flag(hub, order["id"], "address looks wrong", "webhook:fake:evt-9")

    after = hub.order_by_id(order["id"])
    assert [(f["message"], f["source"]) for f in after["flags"]] == [
        ("address looks wrong", "webhook:fake:evt-9"),
        ("buyer asked for a gift wrap", "admin:desk"),
    ]
    assert after["needs_attention"]
    assert after["attention_reason"] == "buyer asked for a gift wrap"


def test_a_dead_jobs_flag_is_resolved_when_the_job_succeeds_on_retry(hub: Hub) -> None:
    assert hub.fake is not None
    hub.set_stock("SKU-1", 5)
    hub.fake.failures["acknowledge"] = [Permanent("channel refused the acknowledgement")]
    order = place(hub, "A-1")
    raise_flag(hub, order["id"], "address looks wrong", "admin:ops")
    flagged = hub.order_by_id(order["id"])
    [dead] = [f for f in flagged["flags"] if f["code"] == "job_failed"]
    assert "channel refused the acknowledgement" in dead["message"]
    job_id = int(dead["source"].removeprefix("job:"))
    assert attention_metric(hub) == 1

    assert hub.admin("POST", f"/admin/jobs/{job_id}/retry").status_code == 200
    hub.drain()

    after = hub.order_by_id(order["id"])
    assert after["status"] == "confirmed"
    assert [f["message"] for f in after["flags"]] == ["address looks wrong"], "the other stays"
    [settled] = [f for f in after["flag_history"] if f["id"] == dead["id"]]
    assert settled["resolved_by"] == f"job:{job_id}"
    assert settled["resolved_at"] is not None
    assert attention_metric(hub) == 1


def test_an_operator_resolves_one_flag_with_a_note_then_the_order_leaves_the_list(
    hub: Hub,
) -> None:
    hub.set_stock("SKU-1", 5)
    order = place(hub, "A-1")
    raise_flag(hub, order["id"], "address looks wrong", "webhook:fake:evt-9")
    raise_flag(hub, order["id"], "buyer asked for a gift wrap", "admin:desk")
    first, second = hub.order_by_id(order["id"])["flags"]
    assert attention_metric(hub) == 1

    response = resolve(hub, order["id"], flag_id=first["id"], note="called the buyer")

    assert response.status_code == 200, response.text
    body = response.json()
    assert [f["id"] for f in body["flags"]] == [second["id"]]
    [done] = [f for f in body["flag_history"] if f["id"] == first["id"]]
    assert (done["note"], done["resolved_by"]) == ("called the buyer", "admin:ops")
    assert [o["id"] for o in hub.orders(needs_attention=True)] == [order["id"]]
    assert resolve(hub, order["id"], flag_id=first["id"], note="again").status_code == 409

    assert resolve(hub, order["id"], note="wrapped it").status_code == 200

    assert hub.orders(needs_attention=True) == []
    assert attention_metric(hub) == 0
    after = hub.order_by_id(order["id"])
    assert (after["needs_attention"], after["attention_reason"], after["flags"]) == (
        False,
        None,
        [],
    )
    audit = hub.admin("GET", "/admin/audit", params={"order_id": order["id"]}).json()["data"]
    resolutions = [a for a in audit if a["action"] == "order.resolve_flag"]
    assert [(a["actor"], a["reason"]) for a in resolutions] == [
        ("ops", "wrapped it"),
        ("ops", "called the buyer"),
    ]


def test_resolving_needs_a_note_and_an_open_flag(hub: Hub) -> None:
    hub.set_stock("SKU-1", 5)
    order = place(hub, "A-1")

    assert resolve(hub, order["id"], note="nothing to do").status_code == 409
    raise_flag(hub, order["id"], "address looks wrong", "admin:ops")
    assert resolve(hub, order["id"]).status_code == 422
    assert resolve(hub, order["id"], note="").status_code == 422
    assert resolve(hub, "ord_missing", note="x").status_code == 404
    assert hub.order_by_id(order["id"])["needs_attention"]


def test_migration_gives_each_flagged_order_one_open_flag_and_downgrades(
    database: Database,
) -> None:
    config = alembic_config(database.url)
    command.downgrade(config, "0005")
    try:
        with database.engine.begin() as conn:
            for oid, ref, flagged, reason in (
                ("ord_1", "A-1", True, service.OVERSOLD),
                ("ord_2", "A-2", False, None),
            ):
                conn.execute(
                    sa.text(
                        "INSERT INTO orders (id, channel, channel_order_id, status, "
                        "channel_status, currency, total_amount, attributes, placed_at, "
                        "needs_attention, attention_reason, version, created_at, updated_at) "
                        "VALUES (:id, 'fake', :ref, 'acknowledged', '', 'EUR', '1.00', '{}', "
                        "CURRENT_TIMESTAMP, :flagged, :reason, 1, CURRENT_TIMESTAMP, "
                        "CURRENT_TIMESTAMP)"
                    ),
                    {"id": oid, "ref": ref, "flagged": flagged, "reason": reason},
                )
            conn.execute(
                sa.text(
                    'INSERT INTO order_events (order_id, "trigger", source, detail, at) '
                    "VALUES ('ord_1', 'flag', 'job:7', '{}', CURRENT_TIMESTAMP)"
                )
            )

        command.upgrade(config, "head")

        with database.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT order_id, code, message, source, resolved_at FROM order_flags")
            ).all()
        assert [tuple(r) for r in rows] == [("ord_1", "oversold", service.OVERSOLD, "job:7", None)]

        command.downgrade(config, "0005")
        with database.engine.connect() as conn:
            assert "order_flags" not in sa.inspect(conn).get_table_names()
            kept = conn.execute(
                sa.text("SELECT needs_attention, attention_reason FROM orders WHERE id = 'ord_1'")
            ).one()
        assert (bool(kept[0]), kept[1]) == (True, service.OVERSOLD)
    finally:
        command.upgrade(config, "head")


def test_racing_raisers_of_one_reason_leave_one_open_flag(postgres_database: Database) -> None:
    hub = make_hub(postgres_database, fake=True)
    try:
        hub.set_stock("SKU-1", 5)
        order = place(hub, "A-1")
        raisers = 8
        ready = threading.Barrier(raisers)

        def raise_it() -> None:
            with hub.db.transaction() as session:
                ready.wait()
                service.flag(session, order["id"], "address looks wrong", "webhook:fake:evt-9")

        threads = [threading.Thread(target=raise_it) for _ in range(raisers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert [f["message"] for f in hub.order_by_id(order["id"])["flags"]] == [
            "address looks wrong"
        ]
    finally:
        hub.close()


def test_a_restock_offers_units_only_to_orders_flagged_oversold(hub: Hub) -> None:
    assert hub.fake is not None
    hub.set_stock("SKU-1", 5)
    # Acknowledged and flagged, but for its channel's refusal of the accept, not for stock.
    hub.fake.failures["accept"] = [Permanent("the channel refused the accept")]
    order = place(hub, "A-1")
    assert (order["status"], order["needs_attention"]) == ("acknowledged", True)
    assert [f["code"] for f in order["flags"]] == ["job_failed"]

    hub.set_stock("SKU-1", 9)  # units come free: no order waits for them
    hub.drain()

    fills = hub.admin("GET", "/admin/jobs", params={"kind": service.FILL_WAITING}).json()["data"]
    assert fills == []
    assert hub.order_by_id(order["id"])["status"] == "acknowledged"
