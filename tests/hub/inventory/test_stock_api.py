"""Stock as operators set and read it: `GET/PUT /admin/stock/{sku}`, the bulk `PUT /admin/stock`,
and `hub stock import FILE.csv`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hub.cli import main
from hub.db import Database
from hub.migrate import upgrade
from tests.fake_channel import order_json, signed, webhook
from tests.harness import Hub, make_hub


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database, fake=True)
    yield h
    h.close()


def hold(hub: Hub, sku: str, quantity: int) -> None:
    """A fake-channel order that reserves `quantity` units of `sku`."""
    body = webhook(f"evt-{sku}-{quantity}", "order.new", order_json(f"F-{sku}", (sku, quantity)))
    assert hub.client.post("/webhooks/fake", content=body, headers=signed(body)).status_code == 200
    hub.drain()
    assert hub.stock(sku)["reserved"] == quantity


def test_put_sets_on_hand_and_get_shows_what_is_available(hub: Hub) -> None:
    response = hub.admin("PUT", "/admin/stock/MUG", json={"on_hand": 4})
    assert response.status_code == 200
    assert response.json() == {"sku": "MUG", "on_hand": 4, "reserved": 0, "available": 4}

    hold(hub, "MUG", 3)

    assert hub.admin("GET", "/admin/stock/MUG").json() == {
        "sku": "MUG",
        "on_hand": 4,
        "reserved": 3,
        "available": 1,
    }


def test_get_of_an_unknown_sku_is_a_404_json_error(hub: Hub) -> None:
    response = hub.admin("GET", "/admin/stock/NEVER-COUNTED")

    assert response.status_code == 404
    assert response.json()["error"] == "sku_not_found"
    assert "NEVER-COUNTED" in response.json()["detail"]


def test_put_below_what_orders_hold_is_a_409_json_error_and_changes_nothing(hub: Hub) -> None:
    hub.set_stock("MUG", 5)
    hold(hub, "MUG", 3)

    response = hub.admin("PUT", "/admin/stock/MUG", json={"on_hand": 2})

    assert response.status_code == 409
    assert response.json()["error"] == "stock_below_reserved"
    assert set(response.json()) == {"error", "detail"}
    assert hub.stock("MUG") == {"sku": "MUG", "on_hand": 5, "reserved": 3, "available": 2}
    assert hub.admin("PUT", "/admin/stock/MUG", json={"on_hand": 3}).status_code == 200


@pytest.mark.parametrize("body", [{"on_hand": -1}, {"on_hand": "many"}, {"count": 3}, {}])
def test_put_of_a_malformed_count_is_a_422(hub: Hub, body: dict[str, object]) -> None:
    response = hub.admin("PUT", "/admin/stock/MUG", json=body)

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_stock_is_admin_only(hub: Hub) -> None:
    assert hub.client.get("/admin/stock/MUG").status_code == 401
    assert hub.client.put("/admin/stock/MUG", json={"on_hand": 1}).status_code == 401


def test_movements_explain_the_numbers_newest_first(hub: Hub) -> None:
    hub.set_stock("MUG", 5)
    hold(hub, "MUG", 2)
    hub.set_stock("MUG", 7)

    movements = hub.admin("GET", "/admin/stock/MUG/movements").json()

    assert [(m["reason"], m["on_hand_delta"], m["reserved_delta"]) for m in movements] == [
        ("restock", 2, 0),
        ("reserve", 0, 2),
        ("restock", 5, 0),
    ]
    assert movements[1]["order_id"] is not None


def test_bulk_put_sets_every_row(hub: Hub) -> None:
    hub.set_stock("MUG", 1)

    response = hub.admin(
        "PUT",
        "/admin/stock",
        json={"items": [{"sku": "PLATE", "on_hand": 2}, {"sku": "MUG", "on_hand": 9}]},
    )

    assert response.status_code == 200
    assert [(r["sku"], r["on_hand"]) for r in response.json()] == [("MUG", 9), ("PLATE", 2)]
    assert hub.stock("PLATE")["on_hand"] == 2


def test_bulk_put_with_one_row_below_reserved_sets_none_of_them(hub: Hub) -> None:
    hub.set_stock("MUG", 5)
    hold(hub, "MUG", 4)

    response = hub.admin(
        "PUT",
        "/admin/stock",
        json={"items": [{"sku": "BOWL", "on_hand": 3}, {"sku": "MUG", "on_hand": 1}]},
    )

    assert response.status_code == 409
    assert response.json()["error"] == "stock_below_reserved"
    assert hub.admin("GET", "/admin/stock/BOWL").status_code == 404
    assert hub.stock("MUG")["on_hand"] == 5


@pytest.mark.parametrize(
    "items",
    [
        [],
        [{"sku": "MUG", "on_hand": 1}, {"sku": "MUG", "on_hand": 2}],
        [{"sku": "", "on_hand": 1}],
        [{"sku": "MUG", "on_hand": -3}],
    ],
)
def test_bulk_put_of_an_unusable_list_is_a_422_and_sets_nothing(
    hub: Hub, items: list[dict[str, object]]
) -> None:
    response = hub.admin("PUT", "/admin/stock", json={"items": items})

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert hub.admin("GET", "/admin/stock/MUG").status_code == 404


# -- hub stock import ---------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # the command reads ./.env: none here
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(url)
    return url


def import_csv(tmp_path: Path, url: str, text: str) -> Result:
    path = tmp_path / "stock.csv"
    path.write_text(text)
    return CliRunner().invoke(
        main,
        ["stock", "import", str(path)],
        env={"HUB_DATABASE_URL": url, "HUB_LOG_FORMAT": "json"},
    )


def stock_of(url: str, *skus: str) -> dict[str, int | None]:
    """on_hand per SKU (None: no row), read through the admin API of a hub on `url`."""
    hub = make_hub(Database(url))
    try:
        out: dict[str, int | None] = {}
        for sku in skus:
            response = hub.admin("GET", f"/admin/stock/{sku}")
            out[sku] = response.json()["on_hand"] if response.status_code == 200 else None
        return out
    finally:
        hub.close()


def test_stock_import_sets_on_hand_from_a_csv(tmp_path: Path, sqlite_url: str) -> None:
    result = import_csv(tmp_path, sqlite_url, "sku,on_hand\nMUG,4\n PLATE , 12 \nBOWL,0\n")

    assert result.exit_code == 0, result.output
    assert "imported 3 SKUs" in result.output
    assert stock_of(sqlite_url, "MUG", "PLATE", "BOWL") == {"MUG": 4, "PLATE": 12, "BOWL": 0}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("sku,on_hand\nMUG,4\nPLATE,lots\n", "line 3"),
        ("sku,on_hand\nMUG,4\nPLATE,-1\n", "line 3"),
        ("sku,on_hand\nMUG,4\n,2\n", "line 3"),
        ("sku,on_hand\nMUG,4\nMUG,5\n", "MUG"),
        ("sku,count\nMUG,4\n", "sku,on_hand"),
    ],
)
def test_stock_import_with_a_bad_row_imports_nothing(
    tmp_path: Path, sqlite_url: str, text: str, complaint: str
) -> None:
    result = import_csv(tmp_path, sqlite_url, text)

    assert result.exit_code != 0
    assert complaint in result.output
    assert stock_of(sqlite_url, "MUG") == {"MUG": None}
