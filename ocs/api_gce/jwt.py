"""RS256 JSON Web Tokens, as Google's service-account credentials make them (pure).

Two kinds reach OCS, both signed with a service-account key whose PUBLIC half OCS
stores (the header's ``kid`` is the key file's ``private_key_id``):

* the assertion of the OAuth 2.0 JWT-bearer grant (RFC 7523) that google-auth
  posts to the key file's ``token_uri`` (iss = client_email, ``aud`` Google's
  token URL or ours, ``scope``);
* the self-signed bearer token google-cloud-compute sends instead of an access
  token (iss = sub = client_email, aud ``https://compute.googleapis.com/`` or a
  ``scope`` claim).

:func:`verify` checks the signature, ``exp``/``iat`` with a clock skew and the
issuer; anything wrong is :class:`JwtError` with a sentence safe to show a client.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MAX_LIFETIME = 3600  # Google refuses assertions valid for longer than an hour
MAX_TOKEN = 16384


class JwtError(Exception):
    """A token that does not prove who it says it is (the message is safe to show)."""


@dataclass(frozen=True)
class Claims:
    kid: str
    issuer: str
    subject: str
    audience: str
    scope: str
    issued_at: int
    expires: int
    raw: dict[str, Any]


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JwtError("The token is not a valid JWT.") from None


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_part(text: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(text))
    except (UnicodeDecodeError, ValueError):
        raise JwtError("The token is not a valid JWT.") from None
    if not isinstance(value, dict):
        raise JwtError("The token is not a valid JWT.")
    return value


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def header_of(token: str) -> dict[str, Any]:
    """The (unverified) header of ``token``."""
    if len(token) > MAX_TOKEN or token.count(".") != 2:
        raise JwtError("The token is not a valid JWT.")
    return _json_part(token.split(".", 1)[0])


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def _int_claim(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JwtError(f"The token has no valid '{name}' claim.")
    return int(value)


def verify(
    token: str,
    public_key_of: Callable[[str], str | None],
    *,
    now: float,
    skew: int = 300,
    max_lifetime: int = MAX_LIFETIME,
) -> Claims:
    """The claims of ``token`` once its RS256 signature, times and issuer are checked.

    ``public_key_of(kid)`` is the PEM public key stored for ``kid`` (None: unknown or
    revoked). The issuer must be the key's ``client_email``: the caller checks that
    against the key's record with :attr:`Claims.issuer`.
    """
    header = header_of(token)
    if header.get("alg") != "RS256":
        raise JwtError("Only RS256-signed tokens are accepted.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise JwtError("The token names no key ('kid').")
    pem = public_key_of(kid)
    if pem is None:
        raise JwtError("The token is signed with an unknown or revoked key.")
    signing_input, _, signature = token.rpartition(".")
    try:
        load_public_key(pem).verify(
            b64url_decode(signature), signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError, UnicodeEncodeError):
        raise JwtError("Invalid JWT signature.") from None
    payload = _json_part(signing_input.split(".", 1)[1])
    iat, exp = _int_claim(payload, "iat"), _int_claim(payload, "exp")
    if exp < now - skew:
        raise JwtError("The token has expired.")
    if iat > now + skew:
        raise JwtError("The token is not valid yet (iat is in the future).")
    if exp - iat > max_lifetime:
        raise JwtError(f"The token is valid for longer than {max_lifetime} seconds.")
    issuer = payload.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise JwtError("The token has no issuer ('iss').")
    aud = payload.get("aud", "")
    return Claims(
        kid=kid,
        issuer=issuer,
        subject=str(payload.get("sub") or issuer),
        audience=aud if isinstance(aud, str) else "",
        scope=str(payload.get("scope") or ""),
        issued_at=iat,
        expires=exp,
        raw=payload,
    )


def sign(payload: dict[str, Any], private_key: rsa.RSAPrivateKey, kid: str) -> str:
    """An RS256 JWT of ``payload`` (what google-auth makes; used by tests and tools)."""
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    parts = [b64url_encode(json.dumps(p, separators=(",", ":")).encode()) for p in (header, payload)]
    signing_input = ".".join(parts).encode("ascii")
    signature = private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return ".".join([*parts, b64url_encode(signature)])
