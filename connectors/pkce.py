"""PKCE (RFC 7636) and the OAuth `state`: what a hub keeps while an account's owner signs in
to an external system with the authorization code flow."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass

# RFC 7636 4.1: 43 to 128 unreserved characters (Depop's token endpoint states the same rule).
CODE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
VERIFIER_BYTES = 48  # 64 base64url characters, above RFC 7636's 32-octet recommendation


def new_code_verifier() -> str:
    """A PKCE code verifier: random octets, base64url without padding (RFC 7636 4.1)."""
    return secrets.token_urlsafe(VERIFIER_BYTES)


def s256_challenge(verifier: str) -> str:
    """`BASE64URL(SHA256(ASCII(code_verifier)))` without padding (RFC 7636 4.2, S256)."""
    if not CODE_VERIFIER.fullmatch(verifier):
        raise ValueError("a code verifier is 43 to 128 characters of [A-Za-z0-9._~-]")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Pkce:
    """The verifier the hub keeps (sent only to the token endpoint) and the challenge the
    authorize URL carries."""

    verifier: str
    challenge: str
    method: str = "S256"

    @classmethod
    def new(cls) -> Pkce:
        verifier = new_code_verifier()
        return cls(verifier, s256_challenge(verifier))


def new_state() -> str:
    """An unguessable `state`: it alone ties the system's redirect to the flow the hub
    started."""
    return secrets.token_urlsafe(32)
