from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.db import Database
from tests.harness import Hub, make_hub


@pytest.fixture
def hub(database: Database) -> Iterator[Hub]:
    h = make_hub(database)
    yield h
    h.close()


def test_depop_purchase_reaches_deliverr(hub: Hub) -> None:
    hub.depop.add_product("SKU-1", quantity=1)
    hub.set_stock("SKU-1", 3)
    purchase_id = hub.depop.purchase("SKU-1")
    hub.drain()
    order = hub.order("depop", purchase_id)
    assert order["status"] == "confirmed", order
    assert [h["trigger"] for h in order["history"]][:3] == ["receive", "acknowledge", "confirm"]
    assert order["fulfilment_provider"] == "deliverr"
    assert hub.deliverr_order(order["id"])["externalOrderId"] == order["id"]
