"""TopiSettings: the TOPI_* variables of the configuration table."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.topi import TopiSettings
from tests.connectors.topi.conftest import OLD_WEBHOOK_SECRET, WEBHOOK_SECRET


def test_defaults_match_the_configuration_table(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BASE_URL", "TOKEN_URL", "CLIENT_ID", "CLIENT_SECRET", "WEBHOOK_SECRETS"):
        monkeypatch.delenv(f"TOPI_{name}", raising=False)
    monkeypatch.delenv("TOPI_SKU_SOURCE", raising=False)
    settings = TopiSettings(_env_file=None)
    assert settings.base_url == "https://seller-api.topi.eu"
    assert settings.token_url == "https://identity.topi.eu/oauth2/token"
    assert settings.sku_source == "sku"
    assert settings.webhook_secrets == []
    assert not settings.configured


def test_environment_configures_credentials_and_rotating_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOPI_CLIENT_ID", "client")
    monkeypatch.setenv("TOPI_CLIENT_SECRET", "s3cr3t-value")
    monkeypatch.setenv("TOPI_WEBHOOK_SECRETS", f"{WEBHOOK_SECRET},{OLD_WEBHOOK_SECRET}")
    monkeypatch.setenv("TOPI_SKU_SOURCE", "sap")
    settings = TopiSettings(_env_file=None)
    assert settings.configured
    assert settings.webhook_secret_values() == [WEBHOOK_SECRET, OLD_WEBHOOK_SECRET]
    assert settings.sku_source == "sap"
    assert "s3cr3t-value" not in repr(settings)
    assert WEBHOOK_SECRET not in repr(settings)


def test_a_webhook_secret_that_is_not_whsec_base64_is_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOPI_WEBHOOK_SECRETS", "whsec_not*base64")
    with pytest.raises(ValidationError):
        TopiSettings(_env_file=None)
