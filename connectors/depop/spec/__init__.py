"""Depop's wire contract: subsets of its published descriptions, derived by
`tools/derive_specs.py` from `manifest.json` (the source files live in the shared `specs/`),
and the authorization request, which Depop describes outside its paths, written here.

The authorization request (`AUTHORIZE`). The Seller API description has no authorize
operation: the seller approves an app on Depop's website. What is known of it:
- Depop's "your first OAuth connection" guide: the page `https://www.depop.com/settings/oauth/
  apps/`, with `response_type=code` and `client_id` (the rest of its list could not be read).
- The description's token endpoint (`exchangeToken`): the authorization code flow "requires
  PKCE with S256 challenge method according to RFC 7636", and `redirect_uri` "must match the
  one used in authorization request": so the request carries `code_challenge`,
  `code_challenge_method=S256` and `redirect_uri`.
- Its `info` preamble: the seven scopes a token can be limited to; RFC 6749 3.3 joins them with
  spaces.
- RFC 6749 4.1.1: `state` (recommended there; required here because the hub's callback is
  authenticated by it alone, RFC 6749 10.12).
Its answer is RFC 6749 4.1.2: a 302 to `redirect_uri` with `code` and `state`, or 4.1.2.1's
`error` (`access_denied` when the seller declines).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.contracts import Contract, MessageContract

HERE = Path(__file__).resolve().parent

# The Seller API operations the client calls and the simulator serves, and its webhooks.
OPENAPI = Contract.load(HERE / "depop.openapi.json")
# Published: the client and the simulator both meet it, so every call is watched (hub.demo).
CONTRACT = OPENAPI
# The webhook messages by event type (`x-event-type`), payloads as the OpenAPI describes them.
WEBHOOKS = MessageContract.load(HERE / "depop.asyncapi.json")

AUTHORIZE_HOST = "https://www.depop.com"
AUTHORIZE_PATH = "/settings/oauth/apps/"
# The description's `info` preamble, in its order (a contract test compares the two).
SCOPES = (
    "products_read",
    "products_write",
    "orders_read",
    "orders_write",
    "offers_read",
    "offers_write",
    "shop_read",
)
_SCOPE = "(" + "|".join(SCOPES) + ")"


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": True, "schema": schema}


AUTHORIZE_OPERATION: dict[str, Any] = {
    "operationId": "authorize#authorizationCodeWithPkce",
    "x-added-from": (
        "D-OAUTH1 (response_type, client_id); exchangeToken (PKCE S256, redirect_uri); "
        "info (scopes); RFC 6749 4.1.1 (state); RFC 7636 4.2-4.3 (the S256 challenge)"
    ),
    "parameters": [
        _query("response_type", {"type": "string", "enum": ["code"]}),
        _query("client_id", {"type": "string", "minLength": 1}),
        _query("redirect_uri", {"type": "string", "format": "uri", "pattern": "^https?://"}),
        _query("scope", {"type": "string", "pattern": f"^{_SCOPE}( {_SCOPE})*$"}),
        _query("state", {"type": "string", "minLength": 16}),
        # BASE64URL(SHA256(verifier)) without padding: always 43 characters.
        _query("code_challenge", {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"}),
        _query("code_challenge_method", {"type": "string", "enum": ["S256"]}),
    ],
    "responses": {
        "302": {
            "description": "back to redirect_uri with code and state, or error and state",
            "headers": {
                "Location": {"required": True, "schema": {"type": "string", "format": "uri"}}
            },
        },
        "400": {
            "description": "unknown client or unregistered redirect_uri: no redirect",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["error"],
                        "properties": {
                            "error": {"type": "string"},
                            "error_description": {"type": "string"},
                        },
                    }
                }
            },
        },
    },
}

AUTHORIZE = Contract(
    {
        "openapi": "3.1.0",
        "info": {"title": "Depop OAuth authorization request", "version": "1.0.0"},
        "servers": [{"url": AUTHORIZE_HOST}],
        "paths": {AUTHORIZE_PATH: {"get": AUTHORIZE_OPERATION}},
    },
    name="depop authorize",
)
