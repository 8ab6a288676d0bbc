"""The console in a real browser: Debian's headless Chromium driven by Playwright, against the
hub served over HTTP on loopback.

An operator signs in, finds an order, opens its timeline, cancels it with a reason, retries a
dead job and imports a CSV; a read-only token can change nothing; and every page passes axe-core
(vendored) with no serious or critical violation at 1280 px and at 390 px wide.

`HUB_CONSOLE_SCREENSHOTS=DIR` also saves a screenshot of each page there (docs/console/ holds
the README's).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.base import Permanent
from hub.app import create_app
from hub.connections.service import plain_values
from hub.console import STATIC
from hub.db import Database
from hub.orders import service as orders
from hub.sim import serve
from tests.conftest import IN_CI
from tests.harness import ADMIN_TOKEN, Hub, make_hub

from ..admin.conftest import place, send
from .conftest import READER, READER_NAME

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
AXE = STATIC / "vendor" / "axe-core" / "axe.min.js"
SHOTS = os.environ.get("HUB_CONSOLE_SCREENSHOTS")
WIDTHS = {"desktop": 1280, "phone": 390}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (`make test` installs Debian's chromium package)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def db(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    """The browser tests check pages, not storage: SQLite is enough (the console's server-side
    tests run on both backends)."""
    path = tmp_path / "hub.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


@pytest.fixture
def hub(db: Database) -> Iterator[Hub]:
    h = make_hub(db, fake=True, admin_read_tokens=[SecretStr(f"{READER_NAME}:{READER}")])
    yield h
    h.close()


@pytest.fixture
def url(hub: Hub) -> Iterator[str]:
    """The hub's app served over HTTP on a loopback port, for the browser."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    served = serve(create_app(hub.runtime), sock)
    yield served.url
    served.stop()


@pytest.fixture
def page(browser: Any, url: str) -> Iterator[Any]:
    context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def sign_in(page: Any, token: str = ADMIN_TOKEN) -> None:
    page.goto("/console")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console")


def test_an_operator_finds_an_order_reads_its_timeline_and_cancels_it(hub: Hub, page: Any) -> None:
    hub.set_stock("SKU-1", 3)
    order = place(hub, "B-100", ("SKU-1", 1))
    place(hub, "B-200", ("SKU-1", 1))

    sign_in(page)
    page.get_by_role("link", name="Orders", exact=True).click()
    page.get_by_label("Channel order id").fill("B-100")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="B-100").click()

    timeline = page.locator("ol.timeline")
    assert "order.new" in timeline.inner_text()  # the inbound event
    assert "confirm" in timeline.inner_text()  # a history row
    page.get_by_text("Raw body").first.click()
    assert '"B-100"' in page.locator("ol.timeline pre").first.inner_text()
    assert page.locator("svg g.state.current").get_attribute("id") == "state-confirmed"

    page.get_by_label("Reason (sent to the channel, kept in the history and the audit log)").fill(
        "duplicate order"
    )
    page.get_by_role("button", name="Cancel order").click()

    assert page.get_by_role("status").inner_text() == "Order cancelled."
    assert "cancelled" in page.get_by_role("heading", level=1).inner_text()
    assert "“duplicate order”" in page.locator("ol.timeline").inner_text()
    assert hub.order_by_id(order["id"])["status"] == "cancelled"

    # The same service as the admin API's: provider first, then the channel, with the reason.
    hub.drain()
    assert hub.fake is not None and hub.fake.cancelled_with == {"B-100": "duplicate order"}
    assert hub.deliverr_order(order["id"])["status"] == "CANCELLED"
    page.reload()
    timeline = page.locator("ol.timeline").inner_text()
    assert "fulfilment_cancelled" in timeline and "cancelled_at_channel" in timeline


def test_an_operator_retries_a_dead_job(hub: Hub, page: Any) -> None:
    assert hub.fake is not None
    hub.set_stock("SKU-1", 3)
    hub.fake.failures["acknowledge"] = [Permanent("fake channel refused the call")]
    order = place(hub, "J-1", ("SKU-1", 1))
    assert order["status"] == "created"

    sign_in(page)
    page.get_by_role("link", name="1 dead jobs").click()
    row = page.locator("tr", has_text="fake channel refused the call")
    row.get_by_role("button", name="Retry").click()
    assert "queued to run again" in page.get_by_role("status").inner_text()
    hub.drain()

    after = hub.order_by_id(order["id"])
    assert after["status"] == "confirmed"
    assert not after["needs_attention"], "the dead job's flag went when the job succeeded"
    page.goto("/console/audit")
    assert "job.retry" in page.locator("table").inner_text()


def test_an_operator_resolves_one_flag_of_two_with_a_note(hub: Hub, page: Any) -> None:
    hub.set_stock("SKU-1", 3)
    order = place(hub, "F-1", ("SKU-1", 1))
    with hub.db.transaction() as session:
        orders.flag(session, order["id"], "address looks wrong", "admin:desk")
        orders.flag(session, order["id"], "buyer asked for a gift wrap", "admin:desk")

    sign_in(page)
    page.goto(f"/console/orders/{order['id']}")
    flag = page.locator("ul.flags li", has_text="address looks wrong")
    flag.get_by_label("What was done").fill("called the buyer")
    flag.get_by_role("button", name="Resolve flag: address looks wrong").click()

    assert page.get_by_role("status").inner_text() == "Flag resolved."
    still_open = page.locator("section", has=page.locator("#h-flags")).inner_text()
    assert "buyer asked for a gift wrap" in still_open
    assert "address looks wrong" not in still_open
    page.get_by_text("Resolved flags (1)").click()
    assert "called the buyer" in page.locator("details", has_text="Resolved flags").inner_text()
    after = hub.order_by_id(order["id"])
    assert [f["message"] for f in after["flags"]] == ["buyer asked for a gift wrap"]
    assert after["attention_reason"] == "buyer asked for a gift wrap"


def test_an_operator_imports_a_csv_after_a_preview(hub: Hub, page: Any, tmp_path: Path) -> None:
    hub.set_stock("SKU-1", 2)
    upload = tmp_path / "count.csv"
    upload.write_text("sku;on_hand\nSKU-1;9\nSKU-2;4\n")

    sign_in(page)
    page.get_by_role("link", name="Stock", exact=True).click()
    page.get_by_role("link", name="Import CSV").click()
    page.get_by_label("CSV file").set_input_files(str(upload))
    page.get_by_role("button", name="Preview").click()

    preview = page.locator("table").inner_text()
    assert "SKU-2" in preview and "new" in preview
    assert hub.stock("SKU-1")["on_hand"] == 2
    page.get_by_role("button", name="Apply 2 counts").click()

    assert page.get_by_role("status").inner_text() == "Imported 2 SKUs."
    assert hub.stock("SKU-1")["on_hand"] == 9 and hub.stock("SKU-2")["on_hand"] == 4


def test_a_read_only_token_sees_no_button_and_its_posts_are_refused(hub: Hub, page: Any) -> None:
    hub.set_stock("SKU-1", 3)
    order = place(hub, "RO-1", ("SKU-1", 1))

    sign_in(page, READER)
    page.goto(f"/console/orders/{order['id']}")
    assert page.get_by_text("read-only", exact=True).count() == 1
    for name in ("Cancel order", "Reject order", "Route again", "Record shipment"):
        assert page.get_by_role("button", name=name).count() == 0
    # Forging the form by hand, from inside the signed-in page, is refused too.
    status = page.evaluate(
        """async (id) => (await fetch(`/console/orders/${id}/cancel`, {
            method: 'POST', body: new URLSearchParams({reason: 'x', csrf: 'x'})})).status""",
        order["id"],
    )
    assert status == 403
    assert hub.order_by_id(order["id"])["status"] == "confirmed"


def _console_pages(hub: Hub) -> dict[str, str]:
    """A hub with something on every page, and the path of each page."""
    assert hub.fake is not None
    hub.set_stock("TEE-BLUE-M", 6)
    hub.set_stock("MUG-01", 0)
    shipped = place(hub, "P-1001", ("TEE-BLUE-M", 2))
    hub.admin(
        "POST",
        f"/admin/orders/{shipped['id']}/shipments",
        json={
            "lines": [{"sku": "TEE-BLUE-M", "quantity": 1}],
            "carrier": "DHL",
            "tracking_number": "JD0146000012345",
            "tracking_url": "https://www.dhl.com/track?id=JD0146000012345",
        },
    )
    hub.fake.failures["acknowledge"] = [Permanent("channel answered 400: unknown order")]
    send(hub, "P-1002", ("MUG-01", 1))
    send(hub, "P-1003", ("TEE-BLUE-M", 1))
    hub.drain()
    hub.client.post(
        "/webhooks/fake",
        content=b"{}",
        headers={"x-fake-timestamp": "1", "x-fake-signature": "bad"},
    )
    hub.admin("POST", "/admin/reconcile/depop")
    hub.drain()
    shipped = hub.order_by_id(shipped["id"])
    flagged = hub.order("fake", "P-1003")
    _, shop = hub.wired.add_account("depop", "shop-b")
    hub.admin(
        "POST",
        "/admin/connections",
        json={"system": "depop", "name": "shop-b", "settings": plain_values(shop)},
    )
    hub.admin("PUT", "/admin/connections/depop/shop-b/excluded-skus/MUG-01")
    with hub.db.transaction() as session:
        orders.flag(session, flagged["id"], "address looks wrong", "admin:desk")
        orders.flag(session, flagged["id"], "buyer asked for a gift wrap", "admin:desk")
        stored = orders.get(session, flagged["id"])
        orders.clear_flag(session, stored, "admin:desk", code="attention", note="wrapped")
        orders.flag(session, flagged["id"], "called twice about the size", "admin:desk")
    return {
        "login": "/console/login",
        "overview": "/console",
        "orders": "/console/orders",
        "order": f"/console/orders/{shipped['id']}",
        "flagged-order": f"/console/orders/{flagged['id']}",
        "jobs": "/console/jobs",
        "job": f"/console/jobs/{shipped['jobs'][0]['id']}",
        "stock": "/console/stock",
        "sku": "/console/stock/TEE-BLUE-M",
        "stock-import": "/console/stock/import",
        "webhooks": "/console/webhooks",
        "event": f"/console/events/{shipped['events'][0]['id']}",
        "reconcile": "/console/reconcile",
        "connections": "/console/connections",
        "audit": "/console/audit",
        "connection": "/console/connections/depop/shop-b",
        "env-connection": "/console/connections/topi/default",
        "new-connection": "/console/connections/new?system=aboutyou",
    }


def test_every_page_passes_axe_with_no_serious_violation_at_desktop_and_phone_width(
    hub: Hub, page: Any
) -> None:
    pages = _console_pages(hub)
    found: list[str] = []
    for width_name, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.context.clear_cookies()
        for name, path in pages.items():
            if name == "login":
                page.goto(path)
            elif not page.context.cookies():
                sign_in(page)
            if name != "login":
                page.goto(path)
            page.add_script_tag(path=str(AXE))
            result = page.evaluate(
                "async () => await axe.run(document, {resultTypes: ['violations']})"
            )
            for violation in result["violations"]:
                if violation["impact"] in ("serious", "critical"):
                    targets = [n["target"] for n in violation["nodes"][:3]]
                    found.append(f"{width_name} {name}: {violation['id']} {targets}")
            # Nothing wider than the window: the page reflows instead of scrolling sideways.
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 1, f"{name} is {overflow}px wider than {width}px"
            if name == "order":
                # The diagram scrolls within itself; the order's state is brought into view.
                box = page.locator("svg g.state.current").bounding_box()
                assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= width
            if SHOTS:
                Path(SHOTS).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=f"{SHOTS}/{name}-{width_name}.png", full_page=True)
    assert found == []


def test_an_operator_creates_a_connection_and_sees_it_listed_and_active(
    hub: Hub, page: Any
) -> None:
    _, shop = hub.wired.add_account("depop", "shop-b")
    values = plain_values(shop)

    sign_in(page)
    page.get_by_role("link", name="Connections", exact=True).click()
    page.get_by_label("System").select_option("depop")
    page.get_by_role("button", name="Fill in its settings").click()
    page.get_by_label("Name").fill("shop-b")
    page.locator("#s-base_url").fill(values["base_url"])
    page.locator("#s-api_key").fill(values["api_key"])
    page.locator("#s-webhook_secret").fill("")
    page.get_by_role("button", name="Create connection").click()

    # Without the webhook secret the service refuses, in words; the key typed is not sent back.
    assert "lack what a depop connection needs" in page.get_by_role("alert").inner_text()
    assert page.locator("#s-api_key").input_value() == ""
    assert page.get_by_label("Name").input_value() == "shop-b"
    page.locator("#s-api_key").fill(values["api_key"])
    page.locator("#s-webhook_secret").fill(values["webhook_secret"])
    page.get_by_role("button", name="Create connection").click()

    assert page.get_by_role("status").inner_text() == "Connection depop/shop-b created."
    page.get_by_role("button", name="Check the credentials").click()
    assert page.get_by_role("status").inner_text() == "Check passed: the credentials work."
    page.get_by_role("link", name="Connections", exact=True).click()
    row = page.locator("#connection-depop-shop-b")
    assert "active" in row.inner_text() and "/webhooks/depop/shop-b" in row.inner_text()
    assert "api_key, webhook_secret" in row.inner_text()
    assert values["api_key"] not in page.content()
    assert hub.admin("GET", "/admin/connections/depop/shop-b").json()["active"] is True
