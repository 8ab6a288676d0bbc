"""ShipMethodMap: a seller's translation from the buyer's delivery to a provider's method."""

from __future__ import annotations

import pytest

from connectors.shipmethods import ShipMethodMap

MAP = ShipMethodMap(
    {"depop:express": "Expedited", "Depop": "Standard", "topi:Next Day": "Overnight", "*": "Any"},
    default="Fallback",
)


@pytest.mark.parametrize(
    ("channel", "service", "method"),
    [
        ("depop", "express", "Expedited"),  # channel and service
        ("DEPOP", " EXPRESS ", "Expedited"),  # spelled another way
        ("depop", "tracked", "Standard"),  # the channel's own entry
        ("depop", None, "Standard"),
        ("depop", "  ", "Standard"),
        ("topi", "next day", "Overnight"),
        ("topi", "standard", "Any"),  # every channel
        ("aboutyou", None, "Any"),
    ],
)
def test_the_most_specific_entry_wins(channel: str, service: str | None, method: str) -> None:
    assert MAP.resolve(channel, service) == method


def test_without_a_match_the_default_holds() -> None:
    mapping = ShipMethodMap({"depop": "Standard"}, default="Fallback")
    assert mapping.resolve("topi", "express") == "Fallback"
    assert ShipMethodMap({}, default=None).resolve("topi", "express") is None


@pytest.mark.parametrize(
    "methods",
    [
        {"depop": " "},
        {"": "Standard"},
        {"depop:": "Standard"},
        {":express": "Standard"},
        {"*:express": "Standard"},
        {"depop": "A", "DEPOP ": "B"},
    ],
)
def test_a_mapping_that_cannot_be_read_is_refused(methods: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        ShipMethodMap(methods)


def test_a_blank_default_is_refused() -> None:
    with pytest.raises(ValueError):
        ShipMethodMap({}, default="  ")
