"""The OpenAPI document at /docs: every error answered as the one `Error` shape, the admin
token as a security scheme, and an example for every model.

FastAPI documents a 422 as its own validation shape; the hub answers every error as
`{"error", "detail"}` (hub.errors), so the document is rewritten to say what the API does.
Examples live here, in one place, and a test validates each against its model, so an example
cannot drift from the shape it shows.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from hub.errors import ErrorBody

ERROR_REF = {"$ref": "#/components/schemas/Error"}

_ERROR_MEANING = {
    400: "The body is not readable as JSON or the framing is wrong (bad_request)",
    401: "No admin token, or an unknown one (unauthenticated)",
    403: "The token may only read (forbidden)",
    404: "No such resource (a `*_not_found` code) or `channel_not_configured`",
    409: "The order's state does not allow this (illegal_transition, concurrent_update)",
    413: "Body over 1 MiB, refused before it was read whole (payload_too_large)",
    422: "The request does not fit the schema (invalid_request) or the order (a specific code)",
    503: "The database is unreachable (database_unavailable)",
}

_AT = "2026-11-23T10:00:00Z"
_ORDER_ID = "ord_01JD3ZK5Q8V9X2M4N6P8R0T2W4"
_LINE = {
    "id": 1,
    "channel_line_id": "2385551",
    "sku": "ABC-12345-S-BL",
    "quantity": 1,
    "shipped_quantity": 1,
    "cancelled_quantity": 0,
    "unit_price": "25.99",
}
_SHIPMENT_LINE = {"sku": "ABC-12345-S-BL", "quantity": 1, "serial_numbers": []}
_SHIPMENT = {
    "id": 7,
    "provider": "deliverr",
    "carrier": "UPS",
    "tracking_numbers": ["1Z999AA10123456784"],
    "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
    "shipped_at": "2026-11-24T08:30:00Z",
    "lines": [_SHIPMENT_LINE],
    "pushed_to_channel": True,
}
_FLAG = {
    "id": 7,
    "code": "job_failed",
    "message": "fulfilment.route failed: deliverr refused the order: unknown SKU",
    "source": "job:12",
    "created_at": "2026-11-23T10:00:05Z",
    "resolved_at": "2026-11-23T11:20:00Z",
    "resolved_by": "job:12",
    "note": None,
}
_ORDER = {
    "id": _ORDER_ID,
    "channel": "depop",
    "connection": "depop/default",
    "channel_order_id": "4000001",
    "status": "completed",
    "channel_status": "SHIPPED",
    "currency": "GBP",
    "total_amount": "30.99",
    "needs_attention": False,
    "attention_reason": None,
    "fulfilment_provider": "deliverr",
    "fulfilment_connection": "deliverr/default",
    "fulfilment_ref": "100000001",
    "fulfilment_status": "SHIPPED",
    "placed_at": "2026-11-23T09:59:58Z",
    "created_at": _AT,
    "updated_at": "2026-11-24T08:30:02Z",
    "lines": [_LINE],
    "shipments": [_SHIPMENT],
    "flags": [],
    "buyer_email": "ada@example.com",
    "shipping_address": {
        "name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "line2": None,
        "postal_code": "SW1Y 4JH",
        "city": "London",
        "region": None,
        "country_code": "GB",
    },
}
_HISTORY = [
    {
        "trigger": "receive",
        "from_state": None,
        "to_state": "created",
        "source": "webhook:depop:5f0c6a9e-2f1b-4c55-a1c4-2b8f3f6f0d11",
        "at": _AT,
        "detail": {},
    },
    {
        "trigger": "ship",
        "from_state": "confirmed",
        "to_state": "completed",
        "source": "webhook:deliverr:evt-88",
        "at": "2026-11-24T08:30:02Z",
        "detail": {"shipment": 7, "tracking_numbers": ["1Z999AA10123456784"]},
    },
]
_JOB_SUMMARY = {
    "id": 12,
    "kind": "fulfilment.route",
    "state": "done",
    "attempts": 1,
    "last_error": None,
}
_EVENT_SUMMARY = {
    "id": 3,
    "channel": "depop",
    "external_id": "5f0c6a9e-2f1b-4c55-a1c4-2b8f3f6f0d11",
    "event_type": "v1:order.new",
    "status": "processed",
    "received_at": _AT,
}
_EVENT = {
    **_EVENT_SUMMARY,
    "connection": "depop/default",
    "error": None,
    "order_id": _ORDER_ID,
    "replays": 0,
    "processed_at": "2026-11-23T10:00:01Z",
}
_JOB = {
    "id": 12,
    "kind": "fulfilment.route",
    "state": "dead",
    "priority": 10,
    "attempts": 31,
    "max_attempts": 0,
    "last_error": "gave up after retrying for 24.0 h: deliverr: 503 service unavailable",
    "order_id": _ORDER_ID,
    "payload": {},
    "run_at": _AT,
    "created_at": _AT,
    "finished_at": "2026-11-23T12:01:40Z",
}
_ATTEMPT = {
    "attempt": 8,
    "worker": "worker-1:4242:139871",
    "outcome": "dead",
    "status_code": 503,
    "error": "deliverr: 503 service unavailable",
    "started_at": "2026-11-23T12:01:39Z",
    "finished_at": "2026-11-23T12:01:40Z",
}
_RUN = {
    "id": "rec_01JD40A1B2C3D4E5F6G7H8J9K0",
    "channel": "depop",
    "connection": "depop/default",
    "state": "done",
    "window_from": "2026-11-22T02:00:00Z",
    "window_to": "2026-11-23T03:00:00Z",
    "seen": 42,
    "created": 1,
    "updated": 0,
    "mismatches": [
        {
            "channel_order_id": "4000017",
            "channel_status": "SHIPPING_PENDING",
            "kind": "missing_order",
            "action": "created the order from the channel",
        }
    ],
    "error": None,
    "created_at": "2026-11-23T03:00:00Z",
    "started_at": "2026-11-23T03:00:01Z",
    "finished_at": "2026-11-23T03:00:04Z",
}
_RULE = {
    "priority": 10,
    "channel": "topi",
    "sku_pattern": "LAPTOP-*",
    "country_code": "DE",
    "provider": "deliverr",
}

_AUDIT = {
    "id": 9,
    "actor": "alice",
    "action": "order.cancel",
    "target": _ORDER_ID,
    "order_id": _ORDER_ID,
    "reason": "buyer asked by phone",
    "detail": {},
    "at": _AT,
}
_DELIVERY = {
    "id": 5,
    "channel": "depop",
    "connection": "depop/default",
    "outcome": "rejected",
    "reason": "signature mismatch",
    "remote_addr": "203.0.113.9",
    "event_id": None,
    "at": _AT,
}

EXAMPLES: dict[str, Any] = {
    "Error": {"error": "illegal_transition", "detail": "cannot cancel an order that is completed"},
    "WebhookReceipt": {"status": "accepted", "event_id": 3},
    "OrderLinePublic": _LINE,
    "ShipmentLinePublic": _SHIPMENT_LINE,
    "ShipmentPublic": _SHIPMENT,
    "OrderPublic": _ORDER,
    "OrderPage": {"data": [_ORDER], "next_cursor": _ORDER_ID},
    "HistoryEntry": _HISTORY[1],
    "JobSummary": _JOB_SUMMARY,
    "EventSummary": _EVENT_SUMMARY,
    "FlagPublic": _FLAG,
    "ResolveIn": {"flag_id": 7, "note": "refunded the buyer by hand"},
    "OrderDetail": {
        **_ORDER,
        "flag_history": [_FLAG],
        "history": _HISTORY,
        "jobs": [_JOB_SUMMARY],
        "events": [_EVENT_SUMMARY],
    },
    "ShipmentLineIn": {"sku": "ABC-12345-S-BL", "quantity": 1},
    "UnitSerialsIn": {"sku": "LAPTOP-14", "serial_numbers": ["SN-0001"]},
    "RejectIn": {"reason": "out of stock: LAPTOP-14"},
    "CancelIn": {"reason": "the buyer asked to cancel before dispatch"},
    "ActionAccepted": {"order_id": _ORDER_ID, "status": "confirmed", "queued": ["order.reject"]},
    "JobPublic": _JOB,
    "JobDetail": {**_JOB, "history": [_ATTEMPT]},
    "AttemptPublic": _ATTEMPT,
    "JobPage": {"data": [_JOB], "next_cursor": None},
    "RetriedJobs": {"retried": [12, 15]},
    "EventPublic": _EVENT,
    "EventDetail": {
        **_EVENT,
        "body": '{"id": "5f0c6a9e-2f1b-4c55-a1c4-2b8f3f6f0d11", "event_type": "v1:order.new"}',
    },
    "EventPage": {"data": [_EVENT], "next_cursor": None},
    "ReplayQueued": {"event_id": 3, "status": "queued"},
    "StockPublic": {"sku": "ABC-12345-S-BL", "on_hand": 5, "reserved": 2, "available": 3},
    "StockIn": {"on_hand": 5},
    "StockRow": {"sku": "ABC-12345-S-BL", "on_hand": 5},
    "StockImport": {
        "items": [{"sku": "ABC-12345-S-BL", "on_hand": 5}, {"sku": "LAPTOP-14", "on_hand": 2}]
    },
    "MovementPublic": {
        "id": 41,
        "on_hand_delta": 0,
        "reserved_delta": 1,
        "reason": "reserve",
        "order_id": _ORDER_ID,
        "note": None,
        "at": _AT,
    },
    "StockPage": {
        "data": [{"sku": "ABC-12345-S-BL", "on_hand": 5, "reserved": 2, "available": 3}],
        "next_cursor": "ABC-12345-S-BL",
    },
    "AuditPublic": _AUDIT,
    "AuditPage": {"data": [_AUDIT], "next_cursor": None},
    "DeliveryPublic": _DELIVERY,
    "DeliveryPage": {"data": [_DELIVERY], "next_cursor": None},
    "RuleIn": _RULE,
    "RulePublic": {**_RULE, "id": 1},
    "ReconcileIn": {"from": "2026-11-20T00:00:00Z", "to": "2026-11-23T00:00:00Z"},
    "RunQueued": {"run_id": _RUN["id"]},
    "RunPublic": _RUN,
    "RunPage": {"data": [_RUN], "next_cursor": None},
    "Transition": {
        "trigger": "ship",
        "source": "confirmed",
        "dest": "completed",
        "guard": "all_lines_shipped",
    },
    "StateMachine": {
        "states": ["created", "acknowledged", "confirmed", "completed"],
        "initial": "created",
        "terminal": ["completed"],
        "transitions": [
            {"trigger": "acknowledge", "source": "created", "dest": "acknowledged", "guard": None}
        ],
    },
}


def _operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (method, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
    ]


def _document_errors(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ErrorBody.model_json_schema()
    for method, operation in _operations(document):
        responses: dict[str, Any] = operation["responses"]
        statuses = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
        if operation.get("security"):
            statuses.add(401)
            if method != "get":
                statuses.add(403)
        if "requestBody" in operation:
            statuses |= {400, 413, 422}
        for status in sorted(statuses):
            described = responses.get(str(status), {}).get("description")
            responses[str(status)] = {
                "description": described or _ERROR_MEANING.get(status, "Error"),
                "content": {"application/json": {"schema": ERROR_REF}},
            }


def _add_examples(document: dict[str, Any]) -> None:
    schemas = document.get("components", {}).get("schemas", {})
    for name, schema in schemas.items():
        if name in EXAMPLES:
            schema["example"] = EXAMPLES[name]


def _document_webhooks(document: dict[str, Any]) -> None:
    """The webhook body is each channel's own, read raw: say so, with one channel's example."""
    operation = document.get("paths", {}).get("/webhooks/{channel}", {}).get("post")
    if operation is None:
        return
    operation["requestBody"] = {
        "required": True,
        "description": (
            "The channel's webhook exactly as it sends it, authenticated by its own scheme: "
            "Depop `X-Depop-Timestamp` + `X-Depop-Signature`; topi `svix-id`, "
            "`svix-timestamp`, `svix-signature`; Deliverr its token header; ABOUT YOU "
            "`X-API-Key`. An authenticated body the connector cannot read is stored as failed."
        ),
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "example": {
                    "id": "5f0c6a9e-2f1b-4c55-a1c4-2b8f3f6f0d11",
                    "event_type": "v1:order.new",
                    "created_at": "2026-11-23T10:00:00Z",
                    "data": {"purchase_id": "4000001", "status": "SHIPPING_PENDING"},
                },
            }
        },
    }


def install(app: FastAPI) -> None:
    """Serve the rewritten document at /openapi.json (and so at /docs)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            _document_webhooks(document)
            _document_errors(document)
            _add_examples(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
