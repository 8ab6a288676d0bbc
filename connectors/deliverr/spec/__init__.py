"""Deliverr's wire contract: the subset of its v1 OpenAPI the connector uses, derived by
`tools/derive_specs.py` from `manifest.json` (the source lives in the shared `specs/`).

Two answers are added to CancelOrder, which the description documents with 204 and 401 only
while saying an order already processed and shipped cannot be cancelled: 404 for an unknown
order (as GetOrder answers) and 422 for an order in a state that does not allow it (as RetryOrder
answers "order is in an invalid state"). Both are inferred, marked `x-added-responses`.

The ORDER_STATUS_UPDATE webhook's payload is the description's `OrderStatusWebhookEvent`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.contracts import Contract, payload_problems

HERE = Path(__file__).resolve().parent
CANCEL = "/orders/v1/order/{orderId}/cancel"


def _answer(schema: str) -> dict[str, Any]:
    return {
        "description": "",
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _with_cancel_refusals(document: dict[str, Any]) -> dict[str, Any]:
    document = json.loads(json.dumps(document))
    cancel = document["paths"][CANCEL]["post"]
    cancel["responses"]["404"] = _answer("NotFoundError")
    cancel["responses"]["422"] = _answer("UnprocessableEntityError")
    cancel["x-added-responses"] = {
        "404": "inferred: GetOrder answers 404 NotFoundError for an unknown orderId",
        "422": "inferred: shipped orders cannot be cancelled; RetryOrder answers 422 for an "
        "order in an invalid state",
    }
    return document


# The Orders API operations the client calls and the simulator serves, and token renewal.
CONTRACT = Contract(
    _with_cancel_refusals(json.loads((HERE / "deliverr.openapi.json").read_text())),
    name="deliverr.openapi.json",
)
STATUS_WEBHOOK_SCHEMA = CONTRACT.schema_document(
    {"$ref": "#/components/schemas/OrderStatusWebhookEvent"}
)


def webhook_problems(body: bytes | str | Any) -> list[str]:
    """Every way an ORDER_STATUS_UPDATE body breaks Deliverr's description; empty when it fits."""
    return payload_problems(STATUS_WEBHOOK_SCHEMA, body)
