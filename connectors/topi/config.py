"""Settings of the topi connector, read from `TOPI_*` environment variables or `.env`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from connectors.http import DEFAULT_DEADLINE_SECONDS
from connectors.signatures import standard_webhook_key


class TopiSettings(BaseSettings):
    """Where topi lives, the OAuth2 client credentials and the webhook signing secrets."""

    model_config = SettingsConfigDict(env_prefix="TOPI_", env_file=".env", extra="ignore")

    base_url: str = "https://seller-api.topi.eu"
    token_url: str = "https://identity.topi.eu/oauth2/token"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    # NoDecode: the variable is a comma-separated list, not the JSON pydantic-settings expects.
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Which `seller_product_references[].source` holds the hub's SKU. Unset: the source topi
    # names in each order (`seller_info.product_reference_source`), which is the seller's own
    # setting at topi, so the hub follows it without being told twice.
    sku_source: str | None = None
    # Everything one call to topi does (token, request, repeat after a renewal) ends by then.
    call_deadline_seconds: float = Field(default=DEFAULT_DEADLINE_SECONDS, gt=0)

    @field_validator("sku_source", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """`TOPI_SKU_SOURCE=` (empty) means unset, not a source named ""."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        """Accept `whsec_a,whsec_b` and reject a secret that is not `whsec_<base64>` at startup."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            for item in value:
                raw = item.get_secret_value() if isinstance(item, SecretStr) else str(item)
                # Raises ValueError, which pydantic reports as a validation error of this field.
                standard_webhook_key(raw)
        return value

    @property
    def configured(self) -> bool:
        """True when the OAuth2 client credentials are set; without them the channel is off."""
        return bool(self.client_id) and bool(
            self.client_secret and self.client_secret.get_secret_value()
        )

    def webhook_secret_values(self) -> list[str]:
        """The plain `whsec_...` secrets, for the webhook verifier only."""
        return [secret.get_secret_value() for secret in self.webhook_secrets]
