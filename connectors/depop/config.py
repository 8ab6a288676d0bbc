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

    A shop connected by the seller signing in (the hub's authorize flow) has no refresh token
    setting: its token pair is in the hub's credential store from the start, and `oauth_grant`
    names that authorization (a new sign-in is a new grant, so a connector built for the old
    one never writes over the new pair). `authorize_url`, `redirect_uri` (the hub's callback,
    as registered with Depop) and `scopes` shape the authorization request.
    """

    model_config = SettingsConfigDict(env_prefix="DEPOP_", env_file=".env", extra="ignore")

    base_url: str = "https://partnerapi.depop.com"
    api_key: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    oauth_grant: str | None = None
    # The shop's seller id (`GET /api/v1/shop/`; learnt when a seller signs in). When set, a
    # webhook naming another seller is not this shop's, whatever secret signed it: shops
    # signed in to one app share its webhook secret.
    seller_id: int | None = None
    authorize_url: str = "https://www.depop.com/settings/oauth/apps/"
    redirect_uri: str | None = None
    # What the hub calls: orders (read, mark shipped, refund), listings (read, restock, sold),
    # and the shop's own details (its seller id, at sign-in).
    scopes: str = "orders_read orders_write products_read products_write shop_read"

    @property
    def uses_api_key(self) -> bool:
        return bool(self.api_key is not None and self.api_key.get_secret_value())

    @property
    def has_oauth_client(self) -> bool:
        """True when the hub's OAuth app is set: a seller can connect a shop by signing in."""
        return bool(
            self.client_id
            and self.client_secret is not None
            and self.client_secret.get_secret_value()
        )

    @property
    def uses_oauth(self) -> bool:
        """True when the OAuth client and a refresh token or a signed-in grant are set (and no
        API key is)."""
        seeded = self.refresh_token is not None and bool(self.refresh_token.get_secret_value())
        return (
            not self.uses_api_key and self.has_oauth_client and (seeded or bool(self.oauth_grant))
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
