"""Connections as the admin API takes and shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ConnectionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "system": "depop",
                "name": "vintage-shop",
                "settings": {"api_key": "dp_live_...", "webhook_secret": "whs_..."},
                "enabled": True,
            }
        },
    )

    system: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=63)
    # The connector's settings by name (its environment variables without the prefix, in
    # lower case: `api_key` for DEPOP_API_KEY); secrets among them are sealed at rest.
    settings: dict[str, Any] = {}
    enabled: bool = True


class ConnectionChange(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"settings": {"api_key": "dp_live_new..."}}},
    )

    # Only the settings named change; null removes one.
    settings: dict[str, Any] | None = None
    enabled: bool | None = None


class ConnectionPublic(BaseModel):
    """A connection; its secrets are named in `secrets_set`, never shown."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "key": "depop/vintage-shop",
                "system": "depop",
                "name": "vintage-shop",
                "role": "channel",
                "source": "database",
                "enabled": True,
                "active": True,
                "settings": {"base_url": "https://partnerapi.depop.com"},
                "secrets_set": ["api_key", "webhook_secret"],
                "attention_reason": None,
                "webhook_path": "/webhooks/depop/vintage-shop",
                "created_at": "2026-11-23T10:00:00Z",
                "updated_at": "2026-11-23T10:00:00Z",
            }
        }
    )

    key: str
    system: str
    name: str
    role: str  # channel or provider
    source: str  # env: the default connection, from environment variables; database
    enabled: bool
    active: bool  # enabled and configured: its connector is built and used
    settings: dict[str, Any]
    secrets_set: list[str]
    attention_reason: str | None
    webhook_path: str
    created_at: datetime
    updated_at: datetime


class ConnectionList(BaseModel):
    data: list[ConnectionPublic]


class ConnectionCheck(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"example": {"ok": True, "detail": "the credentials work"}}
    )

    ok: bool
    detail: str


class ExcludedSkus(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"skus": ["TEE-RED-M"]}})

    skus: list[str]
