"""Flexport's wire contract: an OpenAPI subset built by `tools/derive_specs.py` from
`manifest.json` out of the shared `flexport-logistics-index.json` (Flexport publishes its
description only through a generated client; the index was extracted from it), with the
required flags and enums it names.

The webhook payloads are the index's `OrderEvent` and `ShipmentEvent`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.contracts import Contract, payload_problems

HERE = Path(__file__).resolve().parent

CONTRACT = Contract.load(HERE / "flexport.openapi.json")
ORDER_EVENT_SCHEMA = CONTRACT.schema_document({"$ref": "#/components/schemas/OrderEvent"})
SHIPMENT_EVENT_SCHEMA = CONTRACT.schema_document({"$ref": "#/components/schemas/ShipmentEvent"})


def webhook_problems(body: bytes | str | Any) -> list[str]:
    """Every way an Order.* or Shipment.* webhook body breaks the index's event schema."""
    if isinstance(body, bytes | str):
        body = json.loads(body)
    kind = str(body.get("logisticsEventType", "")) if isinstance(body, dict) else ""
    schema = SHIPMENT_EVENT_SCHEMA if kind.startswith("Shipment.") else ORDER_EVENT_SCHEMA
    return payload_problems(schema, body)
