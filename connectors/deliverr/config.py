"""Settings of the Deliverr connector, read from `DELIVERR_*` environment variables or `.env`."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.http import DEFAULT_DEADLINE_SECONDS
from connectors.shipmethods import ShipMethodMap

# Deliverr's own example of a ship method. Its description lists no values: shipMethod is free
# text it maps to a delivery speed, and an unrecognised one means delivery 5 days after shipping.
DEFAULT_SHIP_METHOD = "Standard"


class DeliverrSettings(BaseSettings):
    """How to reach Deliverr, how to recognise its webhooks and which ship method to ask for."""

    model_config = SettingsConfigDict(env_prefix="DELIVERR_", env_file=".env", extra="ignore")

    base_url: str = "https://api.deliverr.com"
    access_token: SecretStr | None = None
    # Optional: with it, a rejected access token is renewed once instead of failing the call.
    refresh_token: SecretStr | None = None
    webhook_token: SecretStr | None = None
    webhook_header: str = "X-Deliverr-Token"
    # JSON: `channel:service`, `channel` or `*` -> Deliverr shipMethod (see connectors/shipmethods).
    ship_methods: dict[str, str] = Field(default_factory=dict)
    # For orders the mapping does not cover; empty: send none and let Deliverr decide.
    default_ship_method: str | None = DEFAULT_SHIP_METHOD
    # Everything one call to Deliverr does (lookup, create, renewal, repeat) ends by then.
    call_deadline_seconds: float = Field(default=DEFAULT_DEADLINE_SECONDS, gt=0)

    @field_validator("default_ship_method", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _mapping_is_usable(self) -> DeliverrSettings:
        """A mapping that cannot be read is refused at startup, not at the first order."""
        self.ship_method_map()
        return self

    def ship_method_map(self) -> ShipMethodMap:
        return ShipMethodMap(self.ship_methods, self.default_ship_method)

    @property
    def configured(self) -> bool:
        """True when there is an access token to call Deliverr with."""
        return self.access_token is not None and bool(self.access_token.get_secret_value())
