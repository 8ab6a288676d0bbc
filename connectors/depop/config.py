"""Settings for the Depop Seller API connector, read from `DEPOP_*` environment variables."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DepopSettings(BaseSettings):
    """Where Depop lives, how the hub signs in, and the webhook secret.

    Two ways to sign in: an API key (`DEPOP_API_KEY`, a seller's own shop: the simple path), or
    Depop's OAuth as a third-party app (`DEPOP_CLIENT_ID`, `DEPOP_CLIENT_SECRET` and the
    refresh token the seller's authorization gave, `DEPOP_REFRESH_TOKEN`; access tokens are
    then renewed as they expire). When both are set, the API key is used.
    """

    model_config = SettingsConfigDict(env_prefix="DEPOP_", env_file=".env", extra="ignore")

    base_url: str = "https://partnerapi.depop.com"
    api_key: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None

    @property
    def uses_api_key(self) -> bool:
        return bool(self.api_key is not None and self.api_key.get_secret_value())

    @property
    def uses_oauth(self) -> bool:
        """True when the OAuth client and a refresh token are set (and no API key is)."""
        return not self.uses_api_key and bool(
            self.client_id
            and self.client_secret is not None
            and self.client_secret.get_secret_value()
            and self.refresh_token is not None
            and self.refresh_token.get_secret_value()
        )

    @property
    def configured(self) -> bool:
        """True when a way to sign in and the webhook secret are set: without either the
        channel cannot work."""
        return bool(
            (self.uses_api_key or self.uses_oauth)
            and self.webhook_secret is not None
            and self.webhook_secret.get_secret_value()
        )
