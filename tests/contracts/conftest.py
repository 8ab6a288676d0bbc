"""Fixtures shared by every channel's contract tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.derive_specs import DEFAULT_SPECS


@pytest.fixture(scope="session")
def shared_specs() -> Path:
    """The vendors' published descriptions (`../shared/specs`); skips in a clone without them,
    where every other contract test still runs from the committed subsets."""
    if not DEFAULT_SPECS.is_dir():
        pytest.skip(f"no shared specs at {DEFAULT_SPECS}")
    return DEFAULT_SPECS
