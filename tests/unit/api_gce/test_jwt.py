"""RS256 JWT verification of service-account tokens (ocs.api_gce.jwt)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ocs.api_gce import jwt

NOW = 1_800_000_000
KID = "a" * 40
EMAIL = "ocs-aaaaaaaa@proj.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(private) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def claims(**over):
    base = {
        "iss": EMAIL,
        "sub": EMAIL,
        "aud": "https://compute.googleapis.com/",
        "iat": NOW - 10,
        "exp": NOW + 3590,
    }
    base.update(over)
    return base


def verify(token: str, key, *, kid: str = KID, now: float = NOW):
    return jwt.verify(token, lambda k: pem(key) if k == kid else None, now=now, skew=300)


def test_a_good_token_verifies(key):
    got = verify(jwt.sign(claims(scope="https://www.googleapis.com/auth/compute"), key, KID), key)
    assert (got.kid, got.issuer, got.audience) == (KID, EMAIL, "https://compute.googleapis.com/")
    assert got.scope == "https://www.googleapis.com/auth/compute"


def test_a_token_signed_by_another_key_is_refused(key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(jwt.JwtError, match="Invalid JWT signature"):
        verify(jwt.sign(claims(), other, KID), key)


def test_a_changed_payload_is_refused(key):
    header, _, signature = jwt.sign(claims(), key, KID).split(".")
    forged = jwt.b64url_encode(json.dumps(claims(iss="admin@evil.example")).encode())
    with pytest.raises(jwt.JwtError, match="Invalid JWT signature"):
        verify(f"{header}.{forged}.{signature}", key)


def test_expired_tokens_are_refused_past_the_skew(key):
    token = jwt.sign(claims(iat=NOW - 4000, exp=NOW - 400), key, KID)
    with pytest.raises(jwt.JwtError, match="expired"):
        verify(token, key)
    assert verify(jwt.sign(claims(iat=NOW - 3800, exp=NOW - 200), key, KID), key)  # within the skew


def test_tokens_from_the_future_are_refused(key):
    with pytest.raises(jwt.JwtError, match="not valid yet"):
        verify(jwt.sign(claims(iat=NOW + 1000, exp=NOW + 2000), key, KID), key)


def test_tokens_valid_for_too_long_are_refused(key):
    with pytest.raises(jwt.JwtError, match="longer than"):
        verify(jwt.sign(claims(iat=NOW, exp=NOW + 86400), key, KID), key)


def test_unknown_or_missing_kid_is_refused(key):
    with pytest.raises(jwt.JwtError, match="unknown or revoked"):
        verify(jwt.sign(claims(), key, "b" * 40), key)
    header = jwt.b64url_encode(b'{"alg":"RS256","typ":"JWT"}')
    _, payload, signature = jwt.sign(claims(), key, KID).split(".")
    with pytest.raises(jwt.JwtError, match="names no key"):
        verify(f"{header}.{payload}.{signature}", key)


def test_other_algorithms_are_refused(key):
    for alg in ("none", "HS256", "RS512"):
        header = jwt.b64url_encode(json.dumps({"alg": alg, "kid": KID}).encode())
        _, payload, signature = jwt.sign(claims(), key, KID).split(".")
        with pytest.raises(jwt.JwtError, match="Only RS256"):
            verify(f"{header}.{payload}.{signature}", key)


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c.d", "!!!.###.$$$", base64.b64encode(b"[]").decode() + ".e30.AA", "x" * 20000],
)
def test_garbage_is_a_jwt_error(key, token):
    with pytest.raises(jwt.JwtError):
        verify(token, key)


def test_claims_must_be_numbers(key):
    with pytest.raises(jwt.JwtError, match="'exp'"):
        verify(jwt.sign(claims(exp="soon"), key, KID), key)
    with pytest.raises(jwt.JwtError, match="issuer"):
        verify(jwt.sign(claims(iss=None), key, KID), key)
