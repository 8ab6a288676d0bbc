"""ABOUT YOU's wire contract: the subset of the rebuilt Sellers Center reference the connector
and its simulator use, derived by `tools/derive_specs.py` from `manifest.json` (the source lives
in the shared `specs/`). The source is OpenAPI-like but not valid OpenAPI in places; the
manifest's patches make it so, each with its reason, and every field keeps its `x-confidence`.
"""

from pathlib import Path

from connectors.contracts import Contract

HERE = Path(__file__).resolve().parent

# Orders, the ship / cancel / return / stock batches and their results, and the four
# documented webhooks (OpenAPI 3.1 `webhooks`).
CONTRACT = Contract.load(HERE / "aboutyou.openapi.json")
