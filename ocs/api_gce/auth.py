"""Who is calling: OAuth 2.0 bearer tokens for the Compute Engine front end.

* The token endpoint (``POST /token``, the ``token_uri`` of the key files
  ``ocs-manage account gce-key`` writes) takes the JWT-bearer grant that
  google-auth's service-account credentials post, verifies the assertion with the
  key's stored public key and answers ``{"access_token", "expires_in",
  "token_type": "Bearer"}``.
* Access tokens are not stored: one is ``ya29.ocs.`` + a Fernet token (the cloud's
  :class:`ocs.crypto.SecretBox`, the key every API process already shares) of
  ``{key id, account, expiry}``. It is refused once expired, once its key is
  revoked (deleted) or its account disabled.
* A bearer token that is itself an RS256 JWT signed with a service-account key
  (google-cloud-compute's default, aud ``https://compute.googleapis.com/``) is
  verified directly the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ocs.api_gce import jwt
from ocs.api_gce.errors import GceError, unauthorized
from ocs.crypto import DecryptionError, SecretBox
from ocs.db import gce as db_gce
from ocs.db.models.accounts import Account

ACCESS_PREFIX = "ya29.ocs."
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# What an access-token assertion may name as its audience besides our own token URL.
TOKEN_AUDIENCES = ("https://oauth2.googleapis.com/token", "https://www.googleapis.com/oauth2/v4/token")


@dataclass(frozen=True)
class Identity:
    account_id: str
    project: str  # the account's name
    user: str  # the service account's client_email
    key_id: str


class TokenError(Exception):
    """An OAuth 2.0 error of the token endpoint (RFC 6749 section 5.2)."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _key_and_account(s: Session, kid: str) -> tuple[Any, Account] | None:
    key = db_gce.get_service_key(s, kid)
    if key is None:
        return None
    account = s.get(Account, key.account_id)
    if account is None or not account.enabled:
        return None
    return key, account


class Authenticator:
    """Verifies tokens against the keys in the database (settings as plain values)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        box: SecretBox,
        *,
        now: Callable[[], datetime],
        token_lifetime: int,
        clock_skew: int,
    ):
        self.sessions, self.box, self.now = sessions, box, now
        self.token_lifetime, self.clock_skew = token_lifetime, clock_skew

    # --- the token endpoint -------------------------------------------------------------------

    def exchange(self, form: dict[str, str], token_url: str) -> dict[str, Any]:
        """The token endpoint's answer to ``form``; :class:`TokenError` otherwise."""
        if form.get("grant_type") != JWT_BEARER:
            raise TokenError("unsupported_grant_type", f"Only {JWT_BEARER} is supported.")
        assertion = form.get("assertion") or ""
        if not assertion:
            raise TokenError("invalid_request", "Missing required parameter: assertion")
        with self.sessions() as s:
            try:
                claims, key, _ = self._verify_jwt(s, assertion)
            except jwt.JwtError as exc:
                raise TokenError("invalid_grant", str(exc)) from None
            if claims.audience not in (token_url, *TOKEN_AUDIENCES):
                raise TokenError("invalid_grant", "Invalid JWT: the audience is not this token endpoint.")
            expires = int(self.now().timestamp()) + self.token_lifetime
            payload = json.dumps({"k": key.id, "a": key.account_id, "e": expires}, separators=(",", ":"))
        return {
            "access_token": ACCESS_PREFIX + self.box.encrypt(payload),
            "expires_in": self.token_lifetime,
            "token_type": "Bearer",
        }

    def _verify_jwt(self, s: Session, token: str) -> tuple[jwt.Claims, Any, Account]:
        found: dict[str, tuple[Any, Account]] = {}

        def public_key_of(kid: str) -> str | None:
            pair = _key_and_account(s, kid)
            if pair is None:
                return None
            found[kid] = pair
            return str(pair[0].public_key)

        claims = jwt.verify(token, public_key_of, now=self.now().timestamp(), skew=self.clock_skew)
        key, account = found[claims.kid]
        if claims.issuer != key.client_email:
            raise jwt.JwtError("The token's issuer is not the service account of its key.")
        return claims, key, account

    # --- bearer tokens ------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Identity:
        """The caller of a request with this Authorization header; 401 otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("no bearer token")
        with self.sessions() as s:
            if token.startswith(ACCESS_PREFIX):
                return self._access_token(s, token[len(ACCESS_PREFIX) :])
            if jwt.looks_like_jwt(token):
                try:
                    claims, key, account = self._verify_jwt(s, token)
                except jwt.JwtError as exc:
                    raise unauthorized(str(exc)) from None
                if claims.audience.endswith("/token") or (not claims.audience and not claims.scope):
                    raise unauthorized("a self-signed JWT must name the API (aud) or a scope")
                return Identity(account.id, account.name, key.client_email, key.id)
        raise unauthorized("unknown token format")

    def _access_token(self, s: Session, sealed: str) -> Identity:
        try:
            payload = json.loads(self.box.decrypt(sealed))
            kid, account_id, expires = str(payload["k"]), str(payload["a"]), int(payload["e"])
        except (DecryptionError, ValueError, KeyError, TypeError):
            raise unauthorized("not an access token of this cloud") from None
        if expires < self.now().timestamp():
            raise unauthorized("access token expired")
        pair = _key_and_account(s, kid)
        if pair is None or pair[1].id != account_id:
            raise unauthorized("the access token's key was revoked")
        key, account = pair
        return Identity(account.id, account.name, key.client_email, key.id)


def check_project(identity: Identity, project: str, permission: str, path: str) -> None:
    """Another project's resources are forbidden (whether or not that project exists)."""
    if project != identity.project:
        raise GceError(
            f"Required '{permission}' permission for '{path}'",
            reason="forbidden",
            status=403,
        )
