"""Connections: creating, changing and reading them, their connectors' settings, and proving
their credentials work. Secrets go in sealed and never come out through here but to build a
connector."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast

import structlog
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from connectors.base import ConnectorError, ProviderOrderNotFound
from connectors.catalog import by_name
from connectors.connector import Connector, ConnectorSettings
from connectors.registry import DEFAULT, NAME_PATTERN, NotConfigured, connection_key
from hub.connections import repository as repo
from hub.connections.models import Connection, Source
from hub.credentials import SEALED
from hub.credentials import sealed as credentials_sealed
from hub.errors import DomainError
from hub.runtime import Runtime
from hub.secrets import SecretBox, box_for
from hub.types import utcnow

log = structlog.get_logger("hub.connections")


class ConnectionNotFound(DomainError):
    status = 404
    code = "connection_not_found"


class ConnectionInvalid(DomainError):
    status = 422
    code = "invalid_connection"


class ConnectionExists(DomainError):
    status = 409
    code = "connection_exists"


def connector_of(system: str) -> Connector[Any]:
    connector = by_name().get(system)
    if connector is None:
        known = ", ".join(sorted(by_name()))
        raise ConnectionInvalid(f"no system named {system!r}; the hub knows {known}")
    return connector


def _settings_class(connector: Connector[Any]) -> type[BaseSettings]:
    cls = connector.settings
    assert isinstance(cls, type) and issubclass(cls, BaseSettings), connector.name
    return cls


def secret_fields(connector: Connector[Any]) -> frozenset[str]:
    """The settings of `connector` that are secrets (typed `SecretStr`, alone or in a list)."""
    return frozenset(
        name
        for name, field in _settings_class(connector).model_fields.items()
        if "SecretStr" in str(field.annotation)
    )


@functools.cache
def _given_only(cls: type[BaseSettings]) -> type[BaseSettings]:
    """`cls` reading its values from the arguments alone: a stored connection's settings must
    not pick up the environment's variables meant for the default connection."""

    class Given(cls):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    Given.__name__ = cls.__name__
    return Given


def build_settings(connector: Connector[Any], values: Mapping[str, Any]) -> ConnectorSettings:
    """The connector's settings from stored values; a clear 422 naming each bad field (never
    its value, which may be a secret)."""
    known = set(_settings_class(connector).model_fields)
    if unknown := sorted(set(values) - known):
        raise ConnectionInvalid(
            f"{connector.name} has no setting {', '.join(unknown)}; "
            f"its settings are {', '.join(sorted(known))}"
        )
    try:
        built = cast(ConnectorSettings, _given_only(_settings_class(connector))(**values))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConnectionInvalid(f"invalid {connector.name} settings: {problems}") from None
    return built


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def stored_values(row: Connection, box: SecretBox | None) -> dict[str, Any]:
    values = dict(row.settings or {})
    if row.secrets:
        assert box is not None
        values.update(box.open(row.secrets))
    return values


def settings_for(
    row: Connection, env: Mapping[str, ConnectorSettings], box: SecretBox | None
) -> ConnectorSettings:
    """What a connection's connector is built with: the environment's for a default
    connection, its stored values for one kept in the database."""
    if row.source == Source.ENV:
        return env[row.system]
    return build_settings(connector_of(row.system), stored_values(row, box))


def _split(
    connector: Connector[Any], values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    secret = secret_fields(connector)
    settings = {k: _plain(v) for k, v in values.items() if k not in secret and v is not None}
    secrets = {k: _plain(v) for k, v in values.items() if k in secret and v is not None}
    return settings, secrets


def create(
    session: Session,
    box: SecretBox,
    *,
    system: str,
    name: str,
    values: Mapping[str, Any],
    enabled: bool = True,
) -> Connection:
    """A new connection `system/name` with `values` (its connector's settings, secrets among
    them); 409 if it exists, 422 if a value is wrong or the credentials it needs are missing."""
    connector = connector_of(system)
    if not NAME_PATTERN.match(name):
        raise ConnectionInvalid(
            "a connection's name is 1-63 lowercase letters, digits and dashes, starting with a "
            "letter or digit"
        )
    if name == DEFAULT:
        raise ConnectionInvalid(
            f"{system}/default is the connection the environment variables describe; "
            "choose another name"
        )
    key = connection_key(system, name)
    if repo.get(session, key) is not None:
        raise ConnectionExists(f"connection {key} exists")
    settings = build_settings(connector, values)
    if not settings.configured:
        raise ConnectionInvalid(f"the settings lack what a {system} connection needs to work")
    stored, secrets = _split(connector, values)
    now = utcnow()
    row = Connection(
        key=key,
        system=system,
        name=name,
        source=Source.DATABASE,
        enabled=enabled,
        settings=stored,
        secrets=box.seal(secrets) if secrets else None,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # Another request created it between the look-up above and this insert.
        raise ConnectionExists(f"connection {key} exists") from None
    log.info("hub.connections.created", connection=key)
    return row


def get(session: Session, key: str, *, for_update: bool = False) -> Connection:
    row = repo.get(session, key, for_update=for_update)
    if row is None:
        raise ConnectionNotFound(f"no connection {key}")
    return row


def update(
    session: Session,
    box: SecretBox | None,
    key: str,
    *,
    values: Mapping[str, Any] | None = None,
    enabled: bool | None = None,
) -> Connection:
    """Change some of a connection's settings (a value of null removes it) or switch it on or
    off. A default connection's settings are its environment variables: it can only be
    switched."""
    row = get(session, key, for_update=True)
    if values:
        if row.source == Source.ENV:
            raise ConnectionInvalid(
                f"{key} is described by environment variables; change them and restart, or "
                "create another connection"
            )
        assert box is not None
        connector = connector_of(row.system)
        merged = stored_values(row, box)
        for field, value in values.items():
            if value is None:
                merged.pop(field, None)
            else:
                merged[field] = value
        settings = build_settings(connector, merged)
        if not settings.configured:
            raise ConnectionInvalid(
                f"the settings would lack what a {row.system} connection needs to work"
            )
        stored, secrets = _split(connector, merged)
        row.settings = stored
        row.secrets = box.seal(secrets) if secrets else None
        # New credentials are a new chance: whatever stopped the old ones is for them to show.
        row.attention_reason = None
    if enabled is not None:
        row.enabled = enabled
    touch(row)
    session.add(row)
    log.info("hub.connections.changed", connection=key, enabled=row.enabled)
    return row


def touch(row: Connection) -> None:
    """Move the connection's revision on: every process rebuilds its connector."""
    row.revision += 1
    row.updated_at = utcnow()


def flag(session: Session, key: str, reason: str) -> None:
    """The connection cannot work until a person acts (a revoked grant); shown with it."""
    row = repo.get(session, key, for_update=True)
    if row is None or row.attention_reason == reason:
        return
    row.attention_reason = reason
    row.updated_at = utcnow()
    session.add(row)
    log.warning("hub.connections.flagged", connection=key, reason=reason)


def public(runtime: Runtime, row: Connection) -> dict[str, Any]:
    """A connection as the API and the console show it: its settings, whether its connector
    is in use, and the names (never the values) of the secrets it holds."""
    role = connector_of(row.system).role
    active = row.key in runtime.connectors.channels or row.key in runtime.connectors.providers
    box = box_for(runtime.settings) if row.secrets else None
    secrets: list[str] = []
    if row.secrets and box is not None:
        try:
            secrets = sorted(box.open(row.secrets))
        except Exception:  # a key dropped too early: shown, not fatal to a listing
            secrets = ["(unreadable with the configured keys)"]
    return {
        "key": row.key,
        "system": row.system,
        "name": row.name,
        "role": role.value,
        "source": row.source,
        "enabled": row.enabled,
        "active": active,
        "settings": dict(row.settings or {}),
        "secrets_set": secrets,
        "attention_reason": row.attention_reason,
        "webhook_path": f"/webhooks/{row.system}"
        if row.name == DEFAULT
        else f"/webhooks/{row.system}/{row.name}",
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


class CheckResult(BaseModel):
    ok: bool
    detail: str


PROBE_REF = "hub-connection-check"


def check(runtime: Runtime, key: str) -> CheckResult:
    """A call that proves the connection's credentials work: a channel lists its orders of the
    last minute, a provider reads an order that does not exist (its "not found" proves the
    call was authenticated). Made outside any transaction."""
    try:
        if runtime.connectors.has_channel(key):
            channel = runtime.connectors.channel(key)
            until = utcnow()
            next(iter(channel.list_orders(until - timedelta(minutes=1), until)), None)
        else:
            # "Not found" is the answer an authenticated call gets for the probe.
            with contextlib.suppress(ProviderOrderNotFound):
                runtime.connectors.provider(key).get_order(PROBE_REF)
    except NotConfigured:
        return CheckResult(ok=False, detail=f"{key} is disabled or lacks credentials")
    except ConnectorError as exc:
        return CheckResult(ok=False, detail=exc.reason)
    except Exception as exc:
        log.warning("hub.connections.check_crashed", connection=key, error=type(exc).__name__)
        return CheckResult(ok=False, detail=f"the call failed: {type(exc).__name__}")
    return CheckResult(ok=True, detail="the credentials work")


def rotate(session: Session, box: SecretBox) -> tuple[int, int]:
    """Seal every stored secret again with the first key of HUB_SECRET_KEY, in the caller's
    one transaction: the connections' secrets and the credentials connectors renewed. Fails
    whole (nothing changed) if any value opens with none of the keys. The numbers resealed."""
    connections = 0
    for row in repo.everything(session, for_update=True):
        if row.secrets:
            row.secrets = box.reseal(row.secrets)
            session.add(row)
            connections += 1
    credentials = 0
    for credential in credentials_sealed(session):
        credential.value = {SEALED: box.reseal(credential.value[SEALED])}
        session.add(credential)
        credentials += 1
    log.info("hub.secrets.rotated", connections=connections, credentials=credentials)
    return connections, credentials


def plain_values(settings: ConnectorSettings) -> dict[str, Any]:
    """`settings` as the values a connection is created with (secrets revealed): for tools
    and tests that hold a connector's settings object."""
    return {k: _plain(v) for k, v in settings.model_dump().items() if v is not None}
