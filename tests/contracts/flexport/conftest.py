"""The Flexport simulator, provider and receiver fixtures, shared with the connector tests."""

from tests.connectors.flexport.conftest import (  # noqa: F401  (fixtures)
    http,
    log,
    provider,
    receiver,
    sim,
    sku_maps,
)
