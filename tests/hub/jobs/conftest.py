from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hub.jobs import kinds


@pytest.fixture(autouse=True)
def _fresh_run_counts() -> Iterator[None]:
    """Job ids restart in every test's database; so do the run counts keyed by them."""
    kinds.reset()
    yield
    kinds.reset()
