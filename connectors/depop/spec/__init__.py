"""Depop's wire contract: subsets of its published descriptions, derived by
`tools/derive_specs.py` from `manifest.json` (the source files live in the shared `specs/`)."""

from pathlib import Path

from connectors.contracts import Contract, MessageContract

HERE = Path(__file__).resolve().parent

# The Seller API operations the client calls and the simulator serves, and its webhooks.
OPENAPI = Contract.load(HERE / "depop.openapi.json")
# Published: the client and the simulator both meet it, so every call is watched (hub.demo).
CONTRACT = OPENAPI
# The webhook messages by event type (`x-event-type`), payloads as the OpenAPI describes them.
WEBHOOKS = MessageContract.load(HERE / "depop.asyncapi.json")
