"""The console over HTTP, as a browser without JavaScript uses it: sign-in, every page, every
change (with its CSRF token and its audit row), and what a read-only token may not do."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from pydantic import SecretStr

from connectors.base import Permanent
from hub.console import session as console_session
from tests.harness import ADMIN_TOKEN, Hub

from ..admin.conftest import place, send
from .conftest import READER, csrf, page, sign_in, sign_out


def audit_of(hub: Hub, **params: Any) -> list[dict[str, Any]]:
    response = hub.admin("GET", "/admin/audit", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def test_console_pages_send_a_stranger_to_sign_in(hub: Hub) -> None:
    response = page(hub, "/console/orders?status=confirmed", 303)

    assert response.headers["location"] == (
        "/console/login?next=%2Fconsole%2Forders%3Fstatus%3Dconfirmed"
    )
    assert "Sign in" in page(hub, "/console/login").text


def test_an_unknown_token_does_not_sign_in(hub: Hub) -> None:
    response = hub.client.post("/console/login", data={"token": ADMIN_TOKEN + "x"})

    assert response.status_code == 401
    assert "console" not in {c.name for c in hub.client.cookies.jar}
    page(hub, "/console", 303)


def test_the_session_cookie_is_httponly_strict_signed_and_never_holds_the_token(
    hub: Hub,
) -> None:
    response = hub.client.post(
        "/console/login",
        data={"token": ADMIN_TOKEN, "next": "/console/jobs"},
        follow_redirects=False,
    )

    assert response.headers["location"] == "/console/jobs"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{console_session.COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert ADMIN_TOKEN not in cookie
    assert "Signed in as" in page(hub, "/console").text


def test_a_tampered_cookie_or_a_foreign_next_is_refused(hub: Hub) -> None:
    response = hub.client.post(
        "/console/login",
        data={"token": ADMIN_TOKEN, "next": "//evil.example/console"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/console"
    value = hub.client.cookies.get(console_session.COOKIE)
    assert value
    payload, _, signature = value.partition(".")
    hub.client.cookies.set(
        console_session.COOKIE, payload + "." + "0" * len(signature), path="/console"
    )

    page(hub, "/console", 303)


def test_taking_a_token_out_of_the_configuration_ends_its_sessions(hub: Hub) -> None:
    sign_in(hub)
    page(hub, "/console")

    hub.runtime.settings.admin_tokens = [SecretStr("ops:a-new-token")]

    page(hub, "/console", 303)


def test_every_page_renders_with_orders_jobs_stock_and_events(hub: Hub) -> None:
    hub.set_stock("SKU-1", 5)
    order = place(hub, "P-1", ("SKU-1", 2))
    sign_in(hub)
    job_id = order["jobs"][0]["id"]
    event_id = order["events"][0]["id"]

    overview = page(hub, "/console").text
    assert "Orders by channel and state" in overview and "<svg" in overview
    assert "P-1" in page(hub, "/console/orders").text
    detail = page(hub, f"/console/orders/{order['id']}").text
    assert "Timeline" in detail and 'class="state current"' in detail
    assert "Ada Lovelace" in detail  # the buyer's address, for an admin token
    assert "Attempts" in page(hub, f"/console/jobs/{job_id}").text
    assert "order.acknowledge" in page(hub, "/console/jobs").text
    assert "SKU-1" in page(hub, "/console/stock").text
    assert "reserve" in page(hub, "/console/stock/SKU-1").text
    assert "Raw body" in page(hub, f"/console/events/{event_id}").text
    for path in (
        "/console/webhooks",
        "/console/reconcile",
        "/console/audit",
        "/console/stock/import",
    ):
        page(hub, path)
    # Without the hub's Depop app no shop can be connected by signing in; the page says why.
    connections = page(hub, "/console/connections").text
    assert "depop/default" in connections and "DEPOP_CLIENT_ID" in connections
    page(hub, "/console/orders/ord_nothing", 404)
    page(hub, "/console/jobs/999999", 404)


def test_cancelling_with_a_reason_records_who_and_why_on_the_order_and_in_the_audit(
    hub: Hub,
) -> None:
    hub.set_stock("SKU-1", 5)
    order = place(hub, "C-1", ("SKU-1", 1))
    sign_in(hub)
    token = csrf(page(hub, f"/console/orders/{order['id']}"))

    response = hub.client.post(
        f"/console/orders/{order['id']}/cancel",
        data={"csrf": token, "reason": "buyer asked by phone"},
        follow_redirects=True,
    )

    assert response.status_code == 200
    assert "Order cancelled." in response.text
    after = hub.order_by_id(order["id"])
    assert after["status"] == "cancelled"
    last = after["history"][-1]
    assert last["source"] == "admin:ops" and last["detail"] == {"reason": "buyer asked by phone"}
    [entry] = audit_of(hub, order_id=order["id"])
    assert (entry["actor"], entry["action"], entry["reason"]) == (
        "ops",
        "order.cancel",
        "buyer asked by phone",
    )
    assert "buyer asked by phone" in page(hub, f"/console/orders/{order['id']}").text
    # Held until Deliverr gives the order up; then free, and the channel hears the reason.
    assert hub.stock("SKU-1")["reserved"] == 1
    hub.drain()
    assert hub.stock("SKU-1")["reserved"] == 0
    assert hub.fake is not None and hub.fake.cancelled_with == {"C-1": "buyer asked by phone"}


def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(hub: Hub) -> None:
    hub.set_stock("SKU-1", 5)
    order = place(hub, "X-1", ("SKU-1", 1))
    sign_in(hub)

    for given in ({}, {"csrf": "forged"}):
        response = hub.client.post(
            f"/console/orders/{order['id']}/cancel", data={"reason": "r", **given}
        )
        assert response.status_code == 403

    assert hub.order_by_id(order["id"])["status"] == "confirmed"
    assert audit_of(hub, order_id=order["id"]) == []


def test_a_read_only_token_sees_no_change_buttons_and_may_change_nothing(hub: Hub) -> None:
    hub.set_stock("SKU-1", 5)
    order = place(hub, "R-1", ("SKU-1", 1))
    sign_in(hub, READER)
    pages = [
        f"/console/orders/{order['id']}",
        "/console",
        "/console/orders",
        "/console/jobs",
        "/console/stock",
        "/console/stock/SKU-1",
        "/console/webhooks",
        "/console/reconcile",
        f"/console/events/{order['events'][0]['id']}",
        f"/console/jobs/{order['jobs'][0]['id']}",
    ]
    for path in pages:
        html = page(hub, path).text
        posts = re.findall(r'<form method="post" action="([^"]+)"', html)
        assert posts == ["/console/logout"], (path, posts)
    detail = page(hub, f"/console/orders/{order['id']}").text
    assert "read-only" in detail and "Lovelace" not in detail  # no personal data for a reader
    assert "buyer_email" not in page(hub, "/console/orders.csv").text.splitlines()[0]
    assert 'name="buyer"' not in page(hub, "/console/orders").text
    value = hub.client.cookies.get(console_session.COOKIE)
    assert value
    found = console_session.read(hub.runtime.settings, value)
    assert found is not None and not found.actor.may_write
    token = found.csrf

    changes = [
        (f"/console/orders/{order['id']}/cancel", {"reason": "no"}),
        (f"/console/orders/{order['id']}/resolve", {"note": "no"}),
        (f"/console/jobs/{order['jobs'][0]['id']}/retry", {}),
        ("/console/jobs/retry-dead", {"kind": "fake"}),
        ("/console/stock/SKU-1", {"on_hand": "9"}),
        (f"/console/events/{order['events'][0]['id']}/replay", {}),
        ("/console/reconcile", {"channel": "fake"}),
        ("/console/stock/import/apply", {"counts": "sku,on_hand\nSKU-1,9\n"}),
    ]
    for path, data in changes:
        response = hub.client.post(path, data={"csrf": token, **data})
        assert response.status_code == 403, path

    assert hub.order_by_id(order["id"])["status"] == "confirmed"
    assert hub.stock("SKU-1")["on_hand"] == 5
    assert [e["action"] for e in audit_of(hub)] == ["stock.set"]  # the test's own set-up


def test_orders_are_found_by_buyer_sku_state_and_date_and_page_by_keyset(hub: Hub) -> None:
    hub.set_stock("SKU-1", 50)
    for n in range(53):
        send(hub, f"K-{n:02d}", ("SKU-1", 1))
    send(hub, "K-other", ("SKU-9", 1))
    hub.drain()
    sign_in(hub)

    first = page(hub, "/console/orders?sku=SKU-1").text
    assert first.count('href="/console/orders/ord_') == 50
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older
    rest = page(hub, older.group(1).replace("&amp;", "&")).text
    assert rest.count('href="/console/orders/ord_') == 3
    assert "K-other" not in first + rest
    assert "K-other" in page(hub, "/console/orders?channel_order_id=K-other").text
    assert "K-other" in page(hub, "/console/orders?buyer=LOVELACE&sku=SKU-9").text
    assert "K-other" not in page(hub, "/console/orders?buyer=nobody&sku=SKU-9").text
    assert "K-other" in page(hub, "/console/orders?status=confirmed&sku=SKU-9").text
    assert (
        "K-other" in page(hub, "/console/orders?placed_from=2026-11-01&placed_to=2026-11-01").text
    )
    assert "K-other" not in page(hub, "/console/orders?placed_from=2026-11-02").text


def test_the_csv_export_holds_the_filtered_orders_with_formula_cells_defused(hub: Hub) -> None:
    hub.set_stock("SKU-1", 5)
    place(hub, "=cmd|' /C calc'!A0", ("SKU-1", 1))
    place(hub, "E-2", ("SKU-2", 1))
    sign_in(hub)

    response = page(hub, "/console/orders.csv?sku=SKU-1")

    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["channel_order_id"] for r in rows] == ["'=cmd|' /C calc'!A0"]
    assert rows[0]["skus"] == "SKU-1 x1" and "buyer_email" in rows[0]


def test_a_stock_csv_with_semicolons_is_previewed_then_applied(hub: Hub) -> None:
    hub.set_stock("SKU-1", 5)
    sign_in(hub)
    token = csrf(page(hub, "/console/stock/import"))
    upload = "\ufeffSKU;On_Hand;note\nSKU-1;7;recount\nSKU-NEW;3;\n".encode()

    preview = hub.client.post(
        "/console/stock/import",
        data={"csrf": token},
        files={"file": ("count.csv", upload, "text/csv")},
    )

    assert preview.status_code == 200, preview.text
    assert "Apply 2 counts" in preview.text and "new" in preview.text
    assert hub.stock("SKU-1")["on_hand"] == 5  # nothing applied by the preview
    counts = re.search(r'<textarea name="counts" hidden>([^<]*)</textarea>', preview.text)
    assert counts
    applied = hub.client.post(
        "/console/stock/import/apply",
        data={"csrf": csrf(preview), "counts": counts.group(1), "filename": "count.csv"},
        follow_redirects=True,
    )
    assert "Imported 2 SKUs." in applied.text
    assert hub.stock("SKU-1")["on_hand"] == 7 and hub.stock("SKU-NEW")["on_hand"] == 3
    [entry] = audit_of(hub, action="stock.import")
    assert entry["actor"] == "ops" and entry["detail"]["file"] == "count.csv"


def test_a_stock_csv_with_a_bad_row_cannot_be_applied(hub: Hub) -> None:
    sign_in(hub)
    token = csrf(page(hub, "/console/stock/import"))

    preview = hub.client.post(
        "/console/stock/import",
        data={"csrf": token},
        files={"file": ("c.csv", b"sku,on_hand\nA,1\nB,many\nA,2\n", "text/csv")},
    )

    assert "line 3: on_hand &#39;many&#39; is not a whole number" in preview.text
    assert "appears more than once" in preview.text
    assert "/console/stock/import/apply" not in preview.text


def test_setting_a_figure_and_the_stock_export_and_movements_with_times(hub: Hub) -> None:
    sign_in(hub)
    token = csrf(page(hub, "/console/stock/SKU-5"))

    hub.client.post("/console/stock/SKU-5", data={"csrf": token, "on_hand": "4", "reason": "count"})

    assert hub.stock("SKU-5")["on_hand"] == 4
    rows = list(csv.reader(io.StringIO(page(hub, "/console/stock.csv").text)))
    assert rows == [["sku", "on_hand", "reserved", "available"], ["SKU-5", "4", "0", "4"]]
    assert re.search(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</td><td>restock",
        page(hub, "/console/stock/SKU-5").text,
    )


def test_a_dead_job_is_retried_one_by_one_or_all_of_a_kind(hub: Hub) -> None:
    assert hub.fake is not None
    hub.set_stock("SKU-1", 5)
    hub.fake.failures["acknowledge"] = [Permanent("channel down for good")] * 2
    dead = [place(hub, f"D-{n}", ("SKU-1", 1)) for n in range(2)]
    assert all(o["status"] == "created" for o in dead)
    sign_in(hub)
    jobs = page(hub, "/console/jobs?state=dead").text
    assert "channel down for good" in jobs and "Retry all 2 dead" in jobs
    job_id = next(j["id"] for j in dead[0]["jobs"] if j["state"] == "dead")

    hub.client.post(
        f"/console/jobs/{job_id}/retry",
        data={"csrf": csrf(page(hub, "/console/jobs")), "reason": "fixed"},
    )
    hub.client.post(
        "/console/jobs/retry-dead",
        data={"csrf": csrf(page(hub, "/console/jobs")), "kind": dead[1]["jobs"][0]["kind"]},
    )
    hub.drain()

    assert [hub.order_by_id(o["id"])["status"] for o in dead] == ["confirmed", "confirmed"]
    assert {e["action"] for e in audit_of(hub)} == {"stock.set", "job.retry", "job.retry_dead"}


def test_a_flag_is_resolved_with_a_note(hub: Hub) -> None:
    order = place(hub, "F-1", ("SKU-1", 1))
    with hub.db.transaction() as session:
        from hub.orders import service

        service.flag(session, order["id"], "address looks wrong", "test")
    sign_in(hub)
    token = csrf(page(hub, f"/console/orders/{order['id']}"))

    hub.client.post(
        f"/console/orders/{order['id']}/resolve", data={"csrf": token, "note": "called the buyer"}
    )

    after = hub.order_by_id(order["id"])
    assert not after["needs_attention"]
    # One history row says what was settled and why, as the admin API's resolve writes it.
    resolved = [h for h in after["history"] if h["trigger"] == "unflag"]
    assert [(h["detail"]["reason"], h["detail"]["note"]) for h in resolved] == [
        ("address looks wrong", "called the buyer")
    ]


def test_an_action_the_state_forbids_says_why_and_changes_nothing(hub: Hub) -> None:
    hub.set_stock("SKU-1", 5)
    order = place(hub, "S-1", ("SKU-1", 1))
    sign_in(hub)
    token = csrf(page(hub, f"/console/orders/{order['id']}"))
    hub.client.post(f"/console/orders/{order['id']}/cancel", data={"csrf": token, "reason": "a"})

    again = hub.client.post(
        f"/console/orders/{order['id']}/cancel",
        data={"csrf": token, "reason": "twice"},
        follow_redirects=True,
    )

    assert "Not done: cannot cancel an order that is cancelled" in again.text
    assert len(audit_of(hub, order_id=order["id"])) == 1


def test_a_rejected_webhook_is_shown_with_reason_and_address_never_its_body(hub: Hub) -> None:
    hub.client.post(
        "/webhooks/fake",
        content=b'{"secret-looking": "body"}',
        headers={"x-fake-timestamp": "1", "x-fake-signature": "00"},
    )
    sign_in(hub)

    html = page(hub, "/console/webhooks").text

    assert "testclient" in html  # the TestClient's remote address
    assert "secret-looking" not in html
    assert re.search(r"<td>fake/default</td><td>[^<]+</td>", html)
    overview = page(hub, "/console").text
    assert 'class="num bad">1</td>' in overview


def test_a_reconciliation_run_is_started_and_listed(hub: Hub) -> None:
    sign_in(hub)
    token = csrf(page(hub, "/console/reconcile"))

    response = hub.client.post(
        "/console/reconcile",
        data={"csrf": token, "channel": "depop", "reason": "lost webhook suspected"},
        follow_redirects=True,
    )

    assert "Reconciliation of depop queued as rec_" in response.text
    hub.drain()
    assert "done" in page(hub, "/console/reconcile?channel=depop").text
    [entry] = audit_of(hub, action="reconcile.start")
    assert entry["reason"] == "lost webhook suspected"


def test_signing_out_ends_the_session(hub: Hub) -> None:
    sign_in(hub)
    token = csrf(page(hub, "/console/stock/import"))
    hub.client.post("/console/logout")

    page(hub, "/console", 303)
    sign_out(hub)
    assert token
