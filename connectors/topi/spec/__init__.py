"""topi's wire contract: the subset of its Seller API description the connector uses, derived by
`tools/derive_specs.py` from `manifest.json` (the source lives in the shared `specs/`), and two
parts topi describes outside its paths, written here from what the description does say.

- The token endpoint. The description names it only as the `tokenUrl` of its client-credentials
  flow; the exchange is OAuth2's (RFC 6749 4.4 and 5.1/5.2) with the `scope=client` topi's
  authentication guide sends, so its operation is added under that URL's path.
- The order webhook. The description lists its fields in the `order` tag's prose (the order's
  id, assets, metadata, offer_id, seller_offer_reference, status and a shipping address with
  `name`, which the ShippingAddress schema calls `recipient_name`) and sends it when an order
  becomes created, completed or canceled. `ORDER_WEBHOOK` is that list as a schema over the
  subset's own components; as in OrderResult, id, offer_id, seller_offer_reference, status and
  assets are required (inferred: the prose marks none).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connectors.contracts import Contract, payload_problems

HERE = Path(__file__).resolve().parent

_RFC6749_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "enum": [
                "invalid_request",
                "invalid_client",
                "invalid_grant",
                "unauthorized_client",
                "unsupported_grant_type",
                "invalid_scope",
            ],
        },
        "error_description": {"type": "string"},
        "error_uri": {"type": "string"},
    },
}


def _error_answer() -> dict[str, Any]:
    return {"description": "", "content": {"application/json": {"schema": _RFC6749_ERROR}}}


TOKEN_OPERATION: dict[str, Any] = {
    "operationId": "token#clientCredentials",
    "x-added-from": "components.securitySchemes.*.flows.clientCredentials.tokenUrl; RFC 6749",
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type", "scope"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "scope": {"type": "string", "enum": ["client"]},
                    },
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["access_token", "expires_in"],
                        "properties": {
                            "access_token": {"type": "string", "minLength": 1},
                            "expires_in": {"type": "integer", "minimum": 1},
                            "scope": {"type": "string"},
                            "token_type": {"type": "string"},
                        },
                    }
                }
            },
        },
        "400": _error_answer(),
        "401": _error_answer(),
    },
}

ORDER_WEBHOOK: dict[str, Any] = {
    "type": "object",
    "required": ["id", "offer_id", "seller_offer_reference", "status", "assets"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9A-Za-z\\-]+$"},
        "assets": {"type": "array", "items": {"$ref": "#/components/schemas/Asset"}},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "offer_id": {"type": "string"},
        "seller_offer_reference": {"type": "string"},
        "status": {"type": "string", "enum": ["created", "completed", "canceled"]},
        "shipping_address": {
            "type": "object",
            "properties": {
                name: {"type": "string"}
                for name in (
                    "name",
                    "line1",
                    "line2",
                    "postal_code",
                    "city",
                    "region",
                    "country_code",
                )
            },
        },
    },
}


def token_path(document: dict[str, Any]) -> str:
    """The path of the description's client-credentials `tokenUrl`."""
    for scheme in document["components"]["securitySchemes"].values():
        flow = scheme.get("flows", {}).get("clientCredentials")
        if flow is not None:
            return urlsplit(str(flow["tokenUrl"])).path
    raise ValueError("the description names no client-credentials token URL")


def _with_token_operation(document: dict[str, Any]) -> dict[str, Any]:
    document = json.loads(json.dumps(document))
    document["paths"][token_path(document)] = {"post": TOKEN_OPERATION}
    return document


# The Seller API operations the client calls and the simulator serves, and the token endpoint.
CONTRACT = Contract(
    _with_token_operation(json.loads((HERE / "topi.openapi.json").read_text())),
    name="topi.openapi.json",
)
ORDER_WEBHOOK_SCHEMA = CONTRACT.schema_document(ORDER_WEBHOOK)


def webhook_problems(body: bytes | str | Any) -> list[str]:
    """Every way an order webhook's body breaks what topi describes; empty when it fits."""
    return payload_problems(ORDER_WEBHOOK_SCHEMA, body)
