"""Settings of the ABOUT YOU Seller Center connector (`ABOUTYOU_*` environment variables)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The carriers our 3PLs report, lower-cased, and the `carrier_key` ABOUT YOU knows them by.
DEFAULT_CARRIER_MAP: dict[str, str] = {
    "dhl": "DHL",
    "ups": "UPS",
    "dpd": "DPD",
    "hermes": "HERMES",
    "gls": "GLS",
}

# The length ABOUT YOU allows for a tracking key.
MAX_TRACKING_KEY = 255


class ReturnLabelPolicy(StrEnum):
    """What to report as `return_tracking_key`, which ABOUT YOU requires on every shipment.

    The hub's 3PLs report no return label, and the outbound tracking number is not one. The
    field is required (1 to 255 characters), so it cannot be left out.
    """

    # Hold the shipment report and flag the order until a person supplies the key.
    NEEDS_INPUT = "needs_input"
    # Every parcel carries the same return label, whose tracking number the seller configured
    # (ABOUTYOU_RETURN_LABEL_NUMBER).
    FIXED = "fixed"


class AboutYouSettings(BaseSettings):
    """Credentials and options for ABOUT YOU order delegation (dropshipping).

    - `ABOUTYOU_BASE_URL`: the Seller Center API host.
    - `ABOUTYOU_API_KEY`: sent as `X-API-Key` on every call to ABOUT YOU.
    - `ABOUTYOU_WEBHOOK_KEY`: the `X-API-Key` value ABOUT YOU puts on its webhooks.
    - `ABOUTYOU_CARRIER_MAP`: a JSON object from the fulfilment carrier name (matched
      case-insensitively, surrounding blanks ignored) to ABOUT YOU's `carrier_key`, e.g.
      `{"dhl": "DHL", "ups": "UPS"}`. It replaces the default table as a whole. A shipment whose
      carrier is not in the table is not reported and its order needs attention.
    - `ABOUTYOU_RETURN_LABEL_POLICY` (`needs_input` or `fixed`) and
      `ABOUTYOU_RETURN_LABEL_NUMBER`: see `ReturnLabelPolicy`.
    """

    model_config = SettingsConfigDict(env_prefix="ABOUTYOU_", env_file=".env", extra="ignore")

    base_url: str = "https://partner.aboutyou.com"
    api_key: SecretStr | None = None
    webhook_key: SecretStr | None = None
    carrier_map: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CARRIER_MAP))
    return_label_policy: ReturnLabelPolicy = ReturnLabelPolicy.NEEDS_INPUT
    return_label_number: str | None = Field(default=None, max_length=MAX_TRACKING_KEY)

    @field_validator("carrier_map", mode="after")
    @classmethod
    def _normalise_carrier_names(cls, value: dict[str, str]) -> dict[str, str]:
        # Carriers arrive as "DHL", "dhl " or "Dhl" depending on the 3PL; one spelling per key.
        return {name.strip().lower(): key for name, key in value.items()}

    @field_validator("api_key", "webhook_key", "return_label_number", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `ABOUTYOU_API_KEY=` in a .env file means "not configured", not "the empty key".
        if isinstance(value, SecretStr):
            value = value.get_secret_value() or None
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _fixed_policy_needs_its_key(self) -> Self:
        if self.return_label_policy is ReturnLabelPolicy.FIXED and self.return_label_number is None:
            raise ValueError(
                "ABOUTYOU_RETURN_LABEL_POLICY=fixed needs ABOUTYOU_RETURN_LABEL_NUMBER"
            )
        return self

    @property
    def configured(self) -> bool:
        """True when both keys are set, so the channel can call ABOUT YOU and verify webhooks."""
        return self.api_key is not None and self.webhook_key is not None

    def carrier_key(self, carrier: str | None) -> str | None:
        """ABOUT YOU's `carrier_key` for a fulfilment carrier name, or None when unmapped."""
        if carrier is None:
            return None
        return self.carrier_map.get(carrier.strip().lower())
