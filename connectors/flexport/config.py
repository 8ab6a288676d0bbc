"""Settings of the Flexport connector, read from `FLEXPORT_*` environment variables or `.env`."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.http import DEFAULT_DEADLINE_SECONDS
from connectors.shipmethods import ShipMethodMap

# Flexport's own example of a ship method; unrecognised text means delivery 5 days after
# shipping, so "Standard" asks for nothing more than that.
DEFAULT_SHIP_METHOD = "Standard"
# The newest stable version whose Orders, Webhooks and Events pages were read (notes, section 1).
DEFAULT_API_VERSION = "2024-07"


class WebhookAuth(StrEnum):
    """How Flexport proves a delivery is its own: the subscription's `authMethod`."""

    BASIC_AUTH = "BASIC_AUTH"  # HTTP Basic with FLEXPORT_WEBHOOK_USERNAME/PASSWORD
    TOKEN = "TOKEN"  # FLEXPORT_WEBHOOK_TOKEN in the header FLEXPORT_WEBHOOK_TOKEN_HEADER


class FlexportSettings(BaseSettings):
    """How to reach the Flexport Logistics API and how to recognise its webhooks."""

    model_config = SettingsConfigDict(env_prefix="FLEXPORT_", env_file=".env", extra="ignore")

    base_url: str = "https://logistics-api.flexport.com"
    api_version: str = Field(default=DEFAULT_API_VERSION, pattern=r"^(\d{4}-\d{2}|unstable)$")
    access_token: SecretStr | None = None
    webhook_auth: WebhookAuth = WebhookAuth.TOKEN
    webhook_username: str | None = None
    webhook_password: SecretStr | None = None
    webhook_token: SecretStr | None = None
    webhook_token_header: str = "X-Flexport-Token"
    # Where Flexport is to deliver (`hub flexport subscribe`): the hub's public
    # `https://.../webhooks/flexport`.
    webhook_url: str | None = None
    # JSON: `channel:service`, `channel` or `*` -> Flexport shipMethod (see connectors/shipmethods).
    ship_methods: dict[str, str] = Field(default_factory=dict)
    default_ship_method: str | None = DEFAULT_SHIP_METHOD
    # Everything one call to Flexport does (lookup, create, retry) ends by then.
    call_deadline_seconds: float = Field(default=DEFAULT_DEADLINE_SECONDS, gt=0)

    @field_validator("default_ship_method", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _usable(self) -> FlexportSettings:
        """A mapping that cannot be read is refused at startup, not at the first order."""
        self.ship_method_map()
        return self

    def ship_method_map(self) -> ShipMethodMap:
        return ShipMethodMap(self.ship_methods, self.default_ship_method)

    @property
    def api_prefix(self) -> str:
        """The versioned path every resource lives under."""
        return f"/logistics/api/{self.api_version}"

    @property
    def configured(self) -> bool:
        """True when there is an access token to call Flexport with."""
        return self.access_token is not None and bool(self.access_token.get_secret_value())
