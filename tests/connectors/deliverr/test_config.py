"""DeliverrSettings: the CONTRACT.md variable names, defaults and the `configured` switch."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from connectors.deliverr import DeliverrSettings

VARIABLES = (
    "DELIVERR_BASE_URL",
    "DELIVERR_ACCESS_TOKEN",
    "DELIVERR_REFRESH_TOKEN",
    "DELIVERR_WEBHOOK_TOKEN",
    "DELIVERR_WEBHOOK_HEADER",
    "DELIVERR_SHIP_METHODS",
    "DELIVERR_DEFAULT_SHIP_METHOD",
    "DELIVERR_CALL_DEADLINE_SECONDS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable from the shell and no `.env` from the working directory reaches a test."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_follow_the_contract() -> None:
    settings = DeliverrSettings()

    assert settings.base_url == "https://api.deliverr.com"
    assert settings.webhook_header == "X-Deliverr-Token"
    assert settings.access_token is None
    assert settings.refresh_token is None
    assert settings.webhook_token is None
    assert not settings.configured
    assert settings.ship_methods == {}
    assert settings.default_ship_method == "Standard"
    assert settings.call_deadline_seconds == 30


def test_variables_are_read_with_the_deliverr_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERR_BASE_URL", "https://sandbox.deliverr.test")
    monkeypatch.setenv("DELIVERR_ACCESS_TOKEN", "at")
    monkeypatch.setenv("DELIVERR_REFRESH_TOKEN", "rt")
    monkeypatch.setenv("DELIVERR_WEBHOOK_TOKEN", "wt")
    monkeypatch.setenv("DELIVERR_WEBHOOK_HEADER", "X-Hook")

    settings = DeliverrSettings()

    assert settings.base_url == "https://sandbox.deliverr.test"
    assert settings.access_token is not None
    assert settings.access_token.get_secret_value() == "at"
    assert settings.refresh_token is not None
    assert settings.refresh_token.get_secret_value() == "rt"
    assert settings.webhook_token is not None
    assert settings.webhook_token.get_secret_value() == "wt"
    assert settings.webhook_header == "X-Hook"
    assert settings.configured


def test_the_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DELIVERR_ACCESS_TOKEN=from-file\nOTHER_THING=1\n")

    assert DeliverrSettings().configured


def test_an_empty_access_token_is_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERR_ACCESS_TOKEN", "")

    assert not DeliverrSettings().configured


def test_secrets_never_show_in_the_representation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERR_ACCESS_TOKEN", "very-secret")

    assert "very-secret" not in repr(DeliverrSettings())


def test_the_ship_method_mapping_is_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DELIVERR_SHIP_METHODS", '{"depop:express": "UPS 2ND DAY AIR", "depop": "Standard"}'
    )
    monkeypatch.setenv("DELIVERR_DEFAULT_SHIP_METHOD", "Economy")

    mapping = DeliverrSettings().ship_method_map()

    assert mapping.resolve("depop", "Express") == "UPS 2ND DAY AIR"
    assert mapping.resolve("depop", "tracked") == "Standard"
    assert mapping.resolve("topi", None) == "Economy"


def test_an_empty_default_sends_no_ship_method(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERR_DEFAULT_SHIP_METHOD", "")

    assert DeliverrSettings().ship_method_map().resolve("topi", None) is None


@pytest.mark.parametrize(
    "value",
    ['{"depop": ""}', '{":express": "X"}', '{"*:express": "X"}', "not json", '["Standard"]'],
)
def test_an_unusable_mapping_is_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("DELIVERR_SHIP_METHODS", value)

    # pydantic's ValidationError, or pydantic-settings' error for a value that is not JSON.
    with pytest.raises(ValueError):
        DeliverrSettings()


def test_a_deadline_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERR_CALL_DEADLINE_SECONDS", "0")

    with pytest.raises(ValidationError):
        DeliverrSettings()
