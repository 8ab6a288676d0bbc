"""Secrets at rest: the credentials of connections kept in the database and the tokens
connectors renew, sealed with the keys in `HUB_SECRET_KEY` (Fernet: AES-128-CBC with an
HMAC-SHA256 tag).

`HUB_SECRET_KEY` holds one key or several, comma-separated: the first seals, every one opens,
so a new key goes first, `hub secrets rotate` seals everything again with it, and the old key
is then dropped. Without the variable, an embedded hub (SQLite, one machine) keeps a key it
generated in a file beside its database, the way a zero-config start needs; a hub on Postgres
must be given the key, since its processes may run on several machines.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import make_url

from hub.config import HubSettings
from hub.errors import DomainError

log = structlog.get_logger("hub.secrets")


class SecretKeyMissing(DomainError):
    """No key to seal or open secrets with: the hub's configuration, not the request, is
    at fault."""

    status = 503
    code = "secret_key_not_configured"


class UnreadableSecret(DomainError):
    """A sealed value none of the configured keys opens (a key dropped too early, or tampering)."""

    status = 500
    code = "secret_unreadable"


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


class SecretBox:
    """Seals a mapping of secret values into one opaque string, and opens it again."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretKeyMissing("no secret key given")
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode("ascii")) for k in keys])
        except (ValueError, UnicodeEncodeError) as exc:
            raise SecretKeyMissing(
                "HUB_SECRET_KEY must hold url-safe base64 32-byte keys "
                "(`hub secrets generate-key` makes one)"
            ) from exc

    def seal(self, values: Mapping[str, Any]) -> str:
        """`values` (JSON-able) as one opaque string."""
        return self._fernet.encrypt(json.dumps(dict(values), sort_keys=True).encode()).decode()

    def open(self, sealed: str) -> dict[str, Any]:
        try:
            plain = self._fernet.decrypt(sealed.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise UnreadableSecret(
                "a stored secret opens with none of the keys in HUB_SECRET_KEY"
            ) from None
        value: dict[str, Any] = json.loads(plain)
        return value

    def reseal(self, sealed: str) -> str:
        """`sealed` sealed again with the first key (what rotation does to every value)."""
        try:
            return self._fernet.rotate(sealed.encode("ascii")).decode()
        except (InvalidToken, UnicodeEncodeError):
            raise UnreadableSecret(
                "a stored secret opens with none of the keys in HUB_SECRET_KEY"
            ) from None


def _key_file(settings: HubSettings) -> Path | None:
    """Where an embedded hub keeps its generated key: beside its SQLite file."""
    url = make_url(settings.database_url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).with_name(Path(url.database).name + ".key")


_generated: dict[str, str] = {}
_guard = threading.Lock()


def keys_for(settings: HubSettings) -> list[str]:
    """The configured keys, first the one that seals."""
    if settings.secret_key is not None:
        keys = [k.strip() for k in settings.secret_key.get_secret_value().split(",") if k.strip()]
        if keys:
            return keys
    if not settings.is_sqlite:
        raise SecretKeyMissing(
            "HUB_SECRET_KEY is not set: a hub on Postgres needs it to keep connection "
            "secrets (`hub secrets generate-key` makes one)"
        )
    path = _key_file(settings)
    with _guard:
        if path is None:
            # An in-memory database lives as long as this process; so does its key.
            return [_generated.setdefault(settings.database_url, generate_key())]
        if not path.exists():
            _create_key_file(path)
        return [path.read_text().strip()]


def _create_key_file(path: Path) -> None:
    """Write a new key to `path` unless another process just did: the key is written whole to
    a private file first and linked into place, so no process ever reads half a key."""
    draft = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(generate_key())
    try:
        os.link(draft, path)
    except FileExistsError:
        return
    finally:
        draft.unlink()
    log.warning(
        "hub.secrets.key_generated",
        path=str(path),
        detail="set HUB_SECRET_KEY in production; keep this file with the database",
    )


def box_for(settings: HubSettings) -> SecretBox:
    return SecretBox(keys_for(settings))
