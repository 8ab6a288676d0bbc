"""Connecting an account by its owner signing in to the system (OAuth 2.0 authorization code
with PKCE, S256), for systems whose connector declares a `SignIn` (Depop).

`start` keeps a pending sign-in: a random state (stored as its SHA-256 only, so a database
reader cannot finish someone's flow), the PKCE verifier (sealed), the redirect_uri, who started
it (the admin token's name, or the console operator's) and, for the console, a digest of a
random binding cookie the same browser must bring back; it ends after ten minutes. `finish`
(the callback) spends the state first, in its own transaction, so a state is good for one
callback even when two arrive at once; then it exchanges the code holding no transaction,
and creates or updates the connection `system/name`, enabled, its secrets sealed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from connectors.base import ConnectorError, Retriable
from connectors.catalog import CONNECTORS
from connectors.connector import Connector, SignIn
from connectors.pkce import Pkce, new_state
from connectors.registry import DEFAULT, NAME_PATTERN, connection_key
from hub import audit
from hub.connections import repository as repo
from hub.connections import service as connections
from hub.connections.models import PendingSignIn, Source
from hub.deps import Actor
from hub.errors import DomainError
from hub.runtime import Runtime
from hub.secrets import SecretBox, box_for
from hub.types import utcnow

log = structlog.get_logger("hub.connections.signin")

STATE_LIFETIME = timedelta(minutes=10)
FORGET_AFTER = timedelta(days=1)
SIGN_IN_LEASE = "sign-in"  # a lease in the connection's token store, beside its renewals
SIGN_IN_LEASE_SECONDS = 60.0  # above the code exchange's deadline


class SignInNotSupported(DomainError):
    status = 404
    code = "sign_in_not_supported"


class SignInUnavailable(DomainError):
    status = 409
    code = "sign_in_not_configured"


class SignInStateInvalid(DomainError):
    status = 400
    code = "invalid_state"


class SignInStateExpired(DomainError):
    status = 400
    code = "state_expired"


class SignInStateUsed(DomainError):
    status = 409
    code = "state_already_used"


class SignInBusy(DomainError):
    status = 409
    code = "sign_in_in_progress"


class SignInNotYours(DomainError):
    status = 403
    code = "state_not_bound_to_this_browser"


class SignInDenied(DomainError):
    status = 400
    code = "access_denied"


class SignInFailed(DomainError):
    status = 502
    code = "code_exchange_failed"


class SignInExchangeRefused(DomainError):
    status = 400
    code = "code_exchange_refused"


class SignInRefused(DomainError):
    status = 400
    code = "authorization_refused"


@dataclass(frozen=True, slots=True)
class Started:
    key: str
    authorization_url: str
    state: str
    expires_at: datetime
    binding: str | None  # the console's cookie value; None for an admin-token caller


@dataclass(frozen=True, slots=True)
class Finished:
    key: str
    created: bool
    started_by: str
    console: bool


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Available:
    system: str
    label: str  # what the button that starts it says
    unavailable: str | None  # why it cannot start now (the hub's app is not configured)


def systems(runtime: Runtime) -> list[Available]:
    """Every system whose accounts can be connected by signing in, and whether one can now."""
    found: list[Available] = []
    for connector in CONNECTORS:
        if connector.sign_in is None:
            continue
        settings = runtime.connector_settings.get(connector.name)
        reason = (
            connector.sign_in.unavailable(settings)
            if settings is not None
            else f"this process has no {connector.name} settings"
        )
        found.append(Available(connector.name, connector.sign_in.label, reason))
    return found


def sign_in_of(runtime: Runtime, system: str) -> tuple[Connector[Any], SignIn[Any], Any]:
    """The system's connector, its sign-in and its environment settings (the hub's app)."""
    connector = connections.connector_of(system)
    if connector.sign_in is None:
        raise SignInNotSupported(f"{system} accounts cannot be connected by signing in")
    settings = runtime.connector_settings.get(system)
    if settings is None:
        raise SignInUnavailable(f"this process has no {system} settings to sign in with")
    reason = connector.sign_in.unavailable(settings)
    if reason is not None:
        raise SignInUnavailable(reason)
    return connector, connector.sign_in, settings


def start(
    runtime: Runtime,
    *,
    system: str,
    name: str,
    actor: Actor,
    callback_url: str,
    console: bool,
) -> Started:
    """A new pending sign-in for the connection `system/name` and where to send the owner."""
    _, sign_in, settings = sign_in_of(runtime, system)
    if not NAME_PATTERN.match(name):
        raise connections.ConnectionInvalid(
            "a connection's name is 1-63 lowercase letters, digits and dashes, starting with a "
            "letter or digit"
        )
    if name == DEFAULT:
        raise connections.ConnectionInvalid(
            f"{system}/default is the connection the environment variables describe; "
            "choose another name"
        )
    key = connection_key(system, name)
    with runtime.db.reader() as session:
        existing = repo.get(session, key)
    if existing is not None and existing.source == Source.ENV:
        raise connections.ConnectionInvalid(f"{key} is described by environment variables")
    redirect_uri = sign_in.redirect_uri(settings) or callback_url
    pkce, state = Pkce.new(), new_state()
    binding = secrets.token_urlsafe(32) if console else None
    started_by = f"{'console' if console else 'admin'}:{actor.name}"
    now = utcnow()
    pending = PendingSignIn(
        state_digest=digest(state),
        system=system,
        name=name,
        verifier=box_for(runtime.settings).seal({"verifier": pkce.verifier}),
        redirect_uri=redirect_uri,
        started_by=started_by,
        binding_digest=digest(binding) if binding else None,
        created_at=now,
        expires_at=now + STATE_LIFETIME,
    )
    url = sign_in.authorization_url(settings, redirect_uri, state, pkce.challenge)
    with runtime.db.transaction() as session:
        # Sign-ins nobody finished are kept a day (to tell "expired" from "unknown"), no longer.
        repo.forget_sign_ins_before(session, now - FORGET_AFTER)
        session.add(pending)
        audit.record(session, actor, "connection.sign_in", key, detail={"via": started_by})
    log.info("hub.connections.sign_in_started", connection=key, started_by=started_by)
    return Started(key, url, state, pending.expires_at, binding)


def _pending(runtime: Runtime, system: str, state: str, binding: str | None) -> PendingSignIn:
    """The pending sign-in `state` names, checked to be this system's and, when the console
    started it, to have come back to the browser holding its cookie."""
    with runtime.db.reader() as session:
        pending = repo.pending_sign_in(session, digest(state))
    if pending is None or pending.system != system:
        raise SignInStateInvalid(
            "the state matches no sign-in this hub started; start connecting again"
        )
    if pending.binding_digest is not None and not (
        binding and hmac.compare_digest(digest(binding), pending.binding_digest)
    ):
        raise SignInNotYours(
            "this sign-in was started in another browser's console session; finish it there "
            "or start again"
        )
    return pending


def _spend(runtime: Runtime, pending: PendingSignIn) -> None:
    """Claim the pending sign-in, once: the first callback wins, every later one (or one after
    ten minutes) is refused with its reason."""
    now = utcnow()
    with runtime.db.transaction() as session:
        if repo.spend_sign_in(session, pending.state_digest, now):
            return
    if pending.used_at is not None or pending.expires_at > now:
        raise SignInStateUsed("this sign-in was already finished; start connecting again")
    raise SignInStateExpired(
        f"the sign-in expired (it lasts {int(STATE_LIFETIME.total_seconds() // 60)} minutes); "
        "start connecting again"
    )


def finish(
    runtime: Runtime,
    *,
    system: str,
    state: str,
    code: str | None,
    error: str | None,
    error_description: str | None,
    binding: str | None,
) -> Finished:
    """The system's redirect came back: spend the state, exchange the code, and create or
    update the connection with the tokens, enabled."""
    if not state:
        raise SignInStateInvalid("the callback carries no state")
    _, sign_in, settings = sign_in_of(runtime, system)
    pending = _pending(runtime, system, state, binding)
    key = connection_key(system, pending.name)
    if runtime.lend is None:
        raise SignInUnavailable("this process cannot lend a new connection a token store")
    # The new connection's own token store (and the HTTP client a test points at a simulator).
    lent = runtime.lend(key)
    store = lent.token_store
    assert store is not None
    # One sign-in of a connection finishes at a time: two at once (two tabs, one name) would
    # each store a pair and each write its grant, and could leave the connection naming the
    # grant whose pair was overwritten.
    owner = secrets.token_hex(8)
    if not store.acquire(SIGN_IN_LEASE, owner, SIGN_IN_LEASE_SECONDS):
        raise SignInBusy(f"another sign-in of {key} is finishing; try this link again shortly")
    try:
        _spend(runtime, pending)
        if error:
            said = f" ({error_description})" if error_description else ""
            log.info("hub.connections.sign_in_refused", connection=key, error=error)
            if error == "access_denied":
                raise SignInDenied(f"the account's owner declined to connect {key}{said}")
            raise SignInRefused(f"{system} refused the sign-in for {key}: {error}{said}")
        if not code:
            raise SignInStateInvalid("the callback carries neither a code nor an error")
        box = box_for(runtime.settings)
        verifier = str(box.open(pending.verifier)["verifier"])
        try:
            values = sign_in.connect(settings, lent, pending.redirect_uri, code, verifier)
        except Retriable as exc:
            raise SignInFailed(
                f"{system} did not answer the code exchange ({exc.reason}); start connecting again"
            ) from exc
        except ConnectorError as exc:
            raise SignInExchangeRefused(
                f"{system} refused the code exchange: {exc.reason}"
            ) from exc
        created = _save(runtime, box, key, pending, values)
    finally:
        store.release(SIGN_IN_LEASE, owner)
    log.info("hub.connections.signed_in", connection=key, started_by=pending.started_by)
    return Finished(key, created, pending.started_by, pending.binding_digest is not None)


def _save(
    runtime: Runtime,
    box: SecretBox,
    key: str,
    pending: PendingSignIn,
    values: dict[str, Any],
) -> bool:
    # Whoever started the sign-in made the change; the owner's approval finished it.
    actor = Actor(pending.started_by.partition(":")[2], may_write=True)
    with runtime.db.transaction() as session:
        existing = repo.get(session, key, for_update=True)
        audit.record(
            session,
            actor,
            "connection.signed_in",
            key,
            detail={"created": existing is None, "via": pending.started_by},
        )
        if existing is None:
            connections.create(
                session, box, system=pending.system, name=pending.name, values=values
            )
            return True
        # A settings field the sign-in does not set (an API key typed in before) is dropped:
        # the connection now signs in with the new grant alone.
        stale = set(connections.stored_values(existing, box)) - set(values)
        connections.update(
            session,
            box,
            key,
            values={**dict.fromkeys(stale), **values},
            enabled=True,
        )
        return False
