"""Settings of the Deliverr connector, read from `DELIVERR_*` environment variables or `.env`."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DeliverrSettings(BaseSettings):
    """How to reach Deliverr and how to recognise its webhooks."""

    model_config = SettingsConfigDict(env_prefix="DELIVERR_", env_file=".env", extra="ignore")

    base_url: str = "https://api.deliverr.com"
    access_token: SecretStr | None = None
    # Optional: with it, a rejected access token is renewed once instead of failing the call.
    refresh_token: SecretStr | None = None
    webhook_token: SecretStr | None = None
    webhook_header: str = "X-Deliverr-Token"

    @property
    def configured(self) -> bool:
        """True when there is an access token to call Deliverr with."""
        return self.access_token is not None and bool(self.access_token.get_secret_value())
