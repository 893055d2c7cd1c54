"""Signature Version 2 and the lenient SigV4 credential scope.

SigV2 requests are signed here by hand, exactly as the Amazon EC2 "Signature
Version 2 signing process" describes (libcloud's default signer and boto 2's
are driven end to end in tests/functional/test_third_party_clients.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from ocs import errors
from ocs.api_ec2 import auth
from tests.unit.api_ec2.test_auth import ACCOUNT, AK, FORM, REGION, SK, check, received, signed

HOST = "ec2.ocs.test:8773"


def stamp(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def v2_signature(method: str, host: str, path: str, params: dict[str, str], secret: str, algo: str) -> str:
    """The documented algorithm: sorted, RFC 3986-encoded parameters under METHOD/host/path."""
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))
    digest = hashlib.sha256 if algo == "HmacSHA256" else hashlib.sha1
    text = f"{method}\n{host}\n{path}\n{query}"
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), digest).digest()).decode()


def v2_params(**overrides: Any) -> dict[str, str]:
    params = {
        "Action": "DescribeKeyPairs",
        "Version": "2016-11-15",
        "KeyName.1": "my key/é~*",
        "AWSAccessKeyId": AK,
        "SignatureVersion": "2",
        "SignatureMethod": "HmacSHA256",
        "Timestamp": stamp(),
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def v2_request(
    params: dict[str, str],
    *,
    method: str = "GET",
    host: str = HOST,
    signed_host: str | None = None,
    secret: str = SK,
    path: str = "/",
) -> auth.SignedRequest:
    params = dict(params)
    if "Signature" not in params:
        algo = params.get("SignatureMethod", "HmacSHA256")
        params["Signature"] = v2_signature(method, signed_host or host, path, params, secret, algo)
    encoded = urlencode(params)
    if method == "GET":
        return auth.SignedRequest(method, path, encoded, {"host": host}, b"", host)
    headers = {"host": host, "content-type": FORM}
    return auth.SignedRequest(method, path, "", headers, encoded.encode(), host)


@pytest.mark.parametrize("algo", ["HmacSHA256", "HmacSHA1"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sigv2_hand_signed(method: str, algo: str) -> None:
    identity = check(v2_request(v2_params(SignatureMethod=algo), method=method))
    assert (identity.access_key_id, identity.account_id, identity.region) == (AK, ACCOUNT, REGION)


def test_sigv2_host_signed_without_its_port() -> None:
    # libcloud signs its host name without the port it connects to.
    assert check(v2_request(v2_params(), signed_host="ec2.ocs.test")).access_key_id == AK


def test_sigv2_with_expires() -> None:
    later = stamp(datetime.now(UTC) + timedelta(minutes=5))
    assert check(v2_request(v2_params(Timestamp=None, Expires=later))).access_key_id == AK


@pytest.mark.parametrize(
    "change",
    [
        lambda r: auth.SignedRequest(
            r.method, r.url_path, r.query_string.replace("my", "My"), r.headers, r.body, r.host
        ),
        lambda r: auth.SignedRequest("POST", r.url_path, r.query_string, r.headers, r.body, r.host),
        lambda r: auth.SignedRequest(r.method, "/other", r.query_string, r.headers, r.body, r.host),
        lambda r: auth.SignedRequest(
            r.method, r.url_path, r.query_string, {"host": "evil.test"}, r.body, "evil.test"
        ),
    ],
)
def test_sigv2_tampering_is_signature_does_not_match(change: Any) -> None:
    with pytest.raises(errors.SignatureDoesNotMatch):
        check(change(v2_request(v2_params())))


def test_sigv2_wrong_secret_unknown_key_and_session_token() -> None:
    with pytest.raises(errors.SignatureDoesNotMatch) as exc:
        check(v2_request(v2_params(), secret="not-the-secret"))
    assert SK not in str(exc.value)
    with pytest.raises(errors.AuthFailure):
        check(v2_request(v2_params(AWSAccessKeyId="AKIAUNKNOWNKEY000000")))
    with pytest.raises(errors.AuthFailure):
        check(v2_request(v2_params(SecurityToken="token")))


@pytest.mark.parametrize("offset", [901, -901])
def test_sigv2_timestamp_outside_the_skew(offset: int) -> None:
    with pytest.raises(errors.RequestExpired):
        check(v2_request(v2_params()), at=datetime.now(UTC) + timedelta(seconds=offset))


def test_sigv2_expired_and_far_expires() -> None:
    past = stamp(datetime.now(UTC) - timedelta(seconds=5))
    with pytest.raises(errors.RequestExpired):
        check(v2_request(v2_params(Timestamp=None, Expires=past)))
    far = stamp(datetime.now(UTC) + timedelta(days=8))
    with pytest.raises(errors.InvalidParameterValue):
        check(v2_request(v2_params(Timestamp=None, Expires=far)))
    with pytest.raises(errors.InvalidParameterCombination):
        check(v2_request(v2_params(Expires=far)))


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"SignatureVersion": "1"}, errors.InvalidParameterValue),
        ({"SignatureMethod": "HmacMD5"}, errors.InvalidParameterValue),
        ({"SignatureMethod": None}, errors.MissingParameter),
        ({"Timestamp": None}, errors.MissingParameter),
        ({"Timestamp": "yesterday"}, errors.InvalidParameterValue),
    ],
)
def test_sigv2_malformed(overrides: dict[str, Any], error: type[errors.OcsError]) -> None:
    with pytest.raises(error):
        check(v2_request(v2_params(**overrides)))


def test_sigv2_missing_signature_or_key() -> None:
    params = v2_params()
    params["Signature"] = ""
    with pytest.raises(errors.MissingParameter):
        check(v2_request(params))
    with pytest.raises(errors.MissingParameter) as exc:
        check(v2_request(v2_params(AWSAccessKeyId=None)))
    assert exc.value.kwargs["name"] == "AWSAccessKeyId"


# --- SigV4 credential scope ---------------------------------------------------------------


def test_lenient_scope_accepts_any_service_and_region() -> None:
    # boto 2 against 127.0.0.1 signs the scope .../0/127/aws4_request.
    identity = check(received(signed(service="127", region="0")), strict_scope=False)
    assert (identity.account_id, identity.region) == (ACCOUNT, REGION)
    assert check(received(signed(service="s3", region=REGION)), strict_scope=False).region == REGION


def test_lenient_scope_still_checks_the_signature_and_terminator() -> None:
    with pytest.raises(errors.SignatureDoesNotMatch):
        check(received(signed(service="127", region="0", secret="nope")), strict_scope=False)
    req = received(signed())
    authorization = req.headers["authorization"].replace("/aws4_request", "/aws5_request")
    headers = {**{k.lower(): v for k, v in req.headers.items()}, "authorization": authorization}
    with pytest.raises(errors.AuthFailure):
        check(
            auth.SignedRequest(req.method, req.url_path, req.query_string, headers, req.body, req.host),
            strict_scope=False,
        )


def test_strict_scope_refuses_another_service() -> None:
    with pytest.raises(errors.AuthFailure):
        check(received(signed(service="127", region="0")), strict_scope=True)
