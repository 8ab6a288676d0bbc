"""ABOUTYOU_* settings: defaults, the carrier map from JSON, and when the channel is configured."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.aboutyou import AboutYouSettings
from connectors.aboutyou.config import DEFAULT_CARRIER_MAP, ReturnLabelPolicy


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("BASE_URL", "API_KEY", "WEBHOOK_KEY", "CARRIER_MAP")
    for name in (*names, "RETURN_LABEL_POLICY", "RETURN_LABEL_NUMBER"):
        monkeypatch.delenv(f"ABOUTYOU_{name}", raising=False)


def test_defaults_follow_the_contract() -> None:
    settings = AboutYouSettings(_env_file=None)
    assert settings.base_url == "https://partner.aboutyou.com"
    assert settings.api_key is None
    assert settings.webhook_key is None
    assert settings.carrier_map == DEFAULT_CARRIER_MAP
    assert settings.return_label_policy is ReturnLabelPolicy.NEEDS_INPUT
    assert settings.return_label_number is None
    assert not settings.configured


def test_configured_needs_both_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABOUTYOU_API_KEY", "secret-api-key-123")
    assert not AboutYouSettings(_env_file=None).configured
    monkeypatch.setenv("ABOUTYOU_WEBHOOK_KEY", "w")
    settings = AboutYouSettings(_env_file=None)
    assert settings.configured
    assert "secret-api-key-123" not in repr(settings)


def test_blank_keys_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABOUTYOU_API_KEY", " ")
    monkeypatch.setenv("ABOUTYOU_WEBHOOK_KEY", "")
    settings = AboutYouSettings(_env_file=None)
    assert settings.api_key is None
    assert not settings.configured


def test_carrier_map_is_read_as_json_with_names_lower_cased(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ABOUTYOU_CARRIER_MAP", '{"DHL Express": "DHL_EXPRESS", "ups": "UPS"}')
    settings = AboutYouSettings(_env_file=None)
    assert settings.carrier_map == {"dhl express": "DHL_EXPRESS", "ups": "UPS"}
    assert settings.carrier_key("DHL EXPRESS ") == "DHL_EXPRESS"
    assert settings.carrier_key("dhl") is None
    assert settings.carrier_key(None) is None


def test_a_fixed_return_label_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ABOUTYOU_RETURN_LABEL_POLICY", "fixed")
    monkeypatch.setenv("ABOUTYOU_RETURN_LABEL_NUMBER", "RL-123")
    settings = AboutYouSettings(_env_file=None)
    assert settings.return_label_policy is ReturnLabelPolicy.FIXED
    assert settings.return_label_number == "RL-123"


@pytest.mark.parametrize("key", [None, " ", "R" * 256])
def test_a_fixed_return_label_needs_a_key_about_you_takes(key: str | None) -> None:
    with pytest.raises(ValidationError):
        AboutYouSettings(_env_file=None, return_label_policy="fixed", return_label_number=key)


def test_an_unknown_return_label_policy_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABOUTYOU_RETURN_LABEL_POLICY", "outbound")
    with pytest.raises(ValidationError):
        AboutYouSettings(_env_file=None)
