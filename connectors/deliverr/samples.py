"""A Deliverr create-order exchange that meets Deliverr's description: the request body and the
201 answer. The contract tests check the contract's verdicts on them (and on variants made from
copies), and the contract-check benchmark times the same request, so both measure one payload.
Copy before changing: the dicts are shared by everyone who imports them."""

from __future__ import annotations

from typing import Any

# The body of POST /orders/v1/order.
CREATE_ORDER: dict[str, Any] = {
    "externalOrderId": "ord_1",
    "source": "depop",
    "sourceOrderId": "depop-ord_1",
    "shiptoAddress": {
        "name": "Ada Lovelace",
        "street1": "1 Engine Way",
        "city": "Austin",
        "state": "TX",
        "postcode": "78701",
        "countryCode": "US",
    },
    "lineItems": [{"externalProductId": "SKU-A", "quantity": 2, "lineItemId": "line-1"}],
    "shipMethod": "Standard",
    "orderCreationTime": "2024-05-01T12:30:00Z",
}

# Deliverr's 201 to it: the fields of the order it repeats, and what it adds.
_REPEATED = ("externalOrderId", "source", "sourceOrderId", "shiptoAddress", "lineItems")
CREATED: dict[str, Any] = {
    **{key: value for key, value in CREATE_ORDER.items() if key in _REPEATED},
    "orderId": "100000001",
    "status": "CREATED",
    "shipments": [],
}
