"""Where each kind's jobs queue. Lower runs sooner, so a stock import's thousands of listing
syncs never stand between an order and its next step. Handlers declare their kind's priority
(`@job_handler(kind, priority=...)`); HUB_JOB_PRIORITIES overrides it per kind."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum


class Priority(IntEnum):
    """The bands the hub's own kinds use; any int works."""

    ORDER = 10  # an order's own steps: inbox, acknowledge, accept, route, tracking, cancel
    DEFAULT = 50
    BULK = 90  # listing syncs, imports, maintenance, reconciliation


_declared: dict[str, int] = {}
_configured: dict[str, int] = {}


def declare(kind: str, priority: int) -> None:
    _declared[kind] = int(priority)


def configure(overrides: Mapping[str, int]) -> None:
    """Apply the configured per-kind priorities (HUB_JOB_PRIORITIES) in this process."""
    _configured.clear()
    _configured.update(overrides)


def of(kind: str) -> int:
    """The priority a new job of `kind` gets: the configured one, else its handler's."""
    found = _configured.get(kind)
    if found is None:
        found = _declared.get(kind, Priority.DEFAULT)
    return int(found)
