"""TopiSettings: the TOPI_* variables of the configuration table."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.topi import TopiSettings
from tests.connectors.topi.conftest import OLD_WEBHOOK_SECRET, WEBHOOK_SECRET


def test_defaults_match_the_configuration_table(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "BASE_URL",
        "TOKEN_URL",
        "CLIENT_ID",
        "CLIENT_SECRET",
        "WEBHOOK_SECRETS",
        "SKU_SOURCE",
        "CALL_DEADLINE_SECONDS",
    ):
        monkeypatch.delenv(f"TOPI_{name}", raising=False)
    settings = TopiSettings(_env_file=None)
    assert settings.base_url == "https://seller-api.topi.eu"
    assert settings.token_url == "https://identity.topi.eu/oauth2/token"
    # Unset: each order's own seller_info.product_reference_source names the SKU.
    assert settings.sku_source is None
    assert settings.call_deadline_seconds == 30
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


def test_an_empty_sku_source_means_the_orders_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPI_SKU_SOURCE", "")
    assert TopiSettings(_env_file=None).sku_source is None


@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_deadline_that_is_not_positive_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TOPI_CALL_DEADLINE_SECONDS", value)
    with pytest.raises(ValidationError):
        TopiSettings(_env_file=None)
