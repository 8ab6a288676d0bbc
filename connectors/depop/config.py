"""Settings for the Depop Seller API connector, read from `DEPOP_*` environment variables."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DepopSettings(BaseSettings):
    """Where Depop lives and the two secrets it needs: the API key and the webhook secret."""

    model_config = SettingsConfigDict(env_prefix="DEPOP_", env_file=".env", extra="ignore")

    base_url: str = "https://partnerapi.depop.com"
    api_key: SecretStr | None = None
    webhook_secret: SecretStr | None = None

    @property
    def configured(self) -> bool:
        """True when both credentials are set: without either the channel cannot work."""
        return bool(
            self.api_key is not None
            and self.api_key.get_secret_value()
            and self.webhook_secret is not None
            and self.webhook_secret.get_secret_value()
        )
