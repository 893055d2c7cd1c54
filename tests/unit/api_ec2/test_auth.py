"""SigV4 verification against requests signed by the real botocore, boto3 and aws-cli.

Nothing is mocked: requests are signed by botocore's own signers, turned into
the WSGI environ a server would build from them, and verified. The end-to-end
tests run boto3 and aws-cli against a wsgiref server and against gunicorn.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import Request, urlopen
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from xml.sax.saxutils import escape

import boto3
import botocore.session
import pytest
from botocore import UNSIGNED
from botocore.auth import S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from falcon import testing as falcon_testing

from ocs import errors
from ocs.api_ec2 import auth

AK = "AKIAOCSTESTKEY000001"
SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ACCOUNT = "123456789012"
REGION = "us-east-1"
ENDPOINT = "http://ec2.ocs.test:8773/services/Cloud"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
BODY = b"Action=DescribeRegions&Version=2016-11-15"
REPO = Path(__file__).resolve().parents[3]


def lookup(access_key_id: str) -> tuple[str, str] | None:
    return (ACCOUNT, SK) if access_key_id == AK else None


def now() -> datetime:
    return datetime.now(UTC)


def check(req: auth.SignedRequest, *, at: datetime | None = None, **kwargs: Any) -> auth.Identity:
    return auth.verify(req, lookup, region=REGION, now=at or now(), **kwargs)


# --- from a botocore request to what a WSGI server hands the application ------


def wsgi_environ(
    method: str, url: str, headers: Mapping[str, Any], body: bytes, *, server: str = "gunicorn"
) -> dict[str, Any]:
    """The environ gunicorn (RAW_URI) or wsgiref (decoded PATH_INFO only) would build."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(parts.path, "latin-1"),
        "QUERY_STRING": parts.query,
        "SERVER_NAME": parts.hostname,
        "SERVER_PORT": str(parts.port or 80),
        "wsgi.url_scheme": parts.scheme,
        "HTTP_HOST": parts.netloc,  # what urllib3 sends: the port only if not the default
    }
    if server == "gunicorn":
        environ["RAW_URI"] = target
    for name, value in headers.items():
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = text
    return environ


def received(request: AWSRequest, *, server: str = "gunicorn") -> auth.SignedRequest:
    prepared = request.prepare()
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    environ = wsgi_environ(prepared.method, prepared.url, prepared.headers, body, server=server)
    return auth.signed_request_from_wsgi(environ, body)


def signed(
    method: str = "POST",
    url: str = ENDPOINT,
    *,
    data: bytes | None = BODY,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    key: str = AK,
    secret: str = SK,
    region: str = REGION,
    service: str = "ec2",
) -> AWSRequest:
    if headers is None:
        headers = {"Content-Type": FORM} if data else {}
    request = AWSRequest(method=method, url=url, data=data, headers=headers, params=params or {})
    SigV4Auth(Credentials(key, secret), service, region).add_auth(request)
    return request


def presigned(
    method: str = "GET",
    url: str = ENDPOINT + "?Action=DescribeRegions&Version=2016-11-15",
    *,
    expires: int = 3600,
    secret: str = SK,
    signer: type[SigV4QueryAuth] = SigV4QueryAuth,
) -> AWSRequest:
    request = AWSRequest(method=method, url=url)
    signer(Credentials(AK, secret), "ec2", REGION, expires=expires).add_auth(request)
    return request


def replace_header(req: auth.SignedRequest, **changes: str) -> auth.SignedRequest:
    headers = {k.lower(): v for k, v in req.headers.items()}
    headers.update({k.replace("_", "-").lower(): v for k, v in changes.items()})
    return auth.SignedRequest(req.method, req.url_path, req.query_string, headers, req.body, req.host)


def with_(req: auth.SignedRequest, **changes: Any) -> auth.SignedRequest:
    fields = {
        "method": req.method,
        "url_path": req.url_path,
        "query_string": req.query_string,
        "headers": req.headers,
        "body": req.body,
        "host": req.host,
    }
    fields.update(changes)
    return auth.SignedRequest(**fields)


# --- valid requests ------------------------------------------------------------


def test_header_form_post_with_form_body() -> None:
    identity = check(received(signed()))
    assert identity == auth.Identity(AK, ACCOUNT, REGION, "ec2")


def test_header_form_get_with_query() -> None:
    url = ENDPOINT + "?Action=DescribeRegions&Version=2016-11-15"
    assert check(received(signed("GET", url, data=None))).account_id == ACCOUNT


def test_unicode_and_special_characters_in_a_form_body() -> None:
    body = "Action=DescribeRegions&RegionName.1=%C3%A9t%C3%A9+~%2B%2F%26%3D%2A&RegionName.2=%E2%9C%93"
    assert check(received(signed(data=body.encode()))).access_key_id == AK


def test_params_whose_wire_encoding_differs_from_botocores_canonical_one() -> None:
    # botocore signs params as %20 but urlencode() sends '+', keeps '*' escaped, etc.
    params = {
        "Action": "DescribeTags",
        "Filter.1.Value.1": "a b~c*d/é✓",
        "Filter.1.Value": "x y",  # a key that is a prefix of another sorts first
        "Filter.1.Name": "tag:Name",
    }
    req = received(signed("GET", data=None, params=params))
    assert "+" in req.query_string  # what was really on the wire
    assert check(req).access_key_id == AK


def test_raw_query_with_repeated_keys_and_unusual_encodings() -> None:
    url = ENDPOINT + "?b=2&a=1&a=0&Filter.1.Value.1=x+y%7Ez&Empty=&Filter.1.Value.2=%E2%9C%93"
    assert check(received(signed("GET", url, data=None))).access_key_id == AK


def test_date_header_instead_of_x_amz_date() -> None:
    request = signed(headers={"Content-Type": FORM, "Date": "placeholder, botocore sets it"})
    assert "X-Amz-Date" not in request.headers
    assert check(received(request)).access_key_id == AK


def test_headers_outside_signed_headers_are_ignored() -> None:
    req = replace_header(received(signed()), user_agent="other", x_forwarded_for="10.0.0.1")
    assert check(req).access_key_id == AK


def test_x_amz_content_sha256_that_matches_the_body_is_accepted() -> None:
    headers = {"Content-Type": FORM, "X-Amz-Content-SHA256": sha256(BODY).hexdigest()}
    assert check(received(signed(headers=headers))).access_key_id == AK


@pytest.mark.parametrize(
    ("server", "path"),
    [
        ("gunicorn", "/ocs%20api/%7Eservices/Cl%C3%B6ud"),  # RAW_URI: any encoding survives
        # wsgiref has only the decoded PATH_INFO: exact for minimally encoded paths
        ("wsgiref", "/ocs%20api/~services/Cl%C3%B6ud"),
    ],
)
def test_percent_encoded_path_is_verified_as_sent(server: str, path: str) -> None:
    url = "http://ec2.ocs.test" + path
    assert check(received(signed(url=url), server=server)).access_key_id == AK


def test_request_built_by_falcon_testing() -> None:
    request = signed(url="http://falcon.test/services/Cl%C3%B6ud%20x")
    prepared = request.prepare()
    environ = falcon_testing.create_environ(
        path="/services/Cl%C3%B6ud%20x",
        host="falcon.test",
        method="POST",
        headers={k: v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()},
        body=BODY,
    )
    assert check(auth.signed_request_from_wsgi(environ, BODY)).access_key_id == AK


def test_absolute_form_request_target() -> None:
    request = signed(url="http://ec2.ocs.test:8773/services/Cloud?Action=X")
    prepared = request.prepare()
    environ = wsgi_environ("POST", prepared.url, prepared.headers, BODY)
    environ["RAW_URI"] = "http://ec2.ocs.test:8773/services/Cloud?Action=X"
    assert check(auth.signed_request_from_wsgi(environ, BODY)).access_key_id == AK


def test_presigned_url() -> None:
    assert check(received(presigned())).access_key_id == AK


def test_presigned_url_from_boto3_with_unicode_parameters() -> None:
    client = boto3_client(ENDPOINT)
    url = client.generate_presigned_url(
        "describe_regions", Params={"RegionNames": ["é b~+*/&=", "✓"]}, HttpMethod="GET"
    )
    req = auth.signed_request_from_wsgi(wsgi_environ("GET", url, {}, b""), b"")
    assert check(req).access_key_id == AK


def test_presigned_url_with_unsigned_payload() -> None:
    assert check(received(presigned(signer=S3SigV4QueryAuth))).access_key_id == AK


def test_boto3_presigns_ec2_urls_for_post_by_default() -> None:
    url = boto3_client(ENDPOINT).generate_presigned_url("describe_regions")
    as_post = auth.signed_request_from_wsgi(wsgi_environ("POST", url, {}, b""), b"")
    assert check(as_post).access_key_id == AK
    with pytest.raises(errors.SignatureDoesNotMatch):
        check(with_(as_post, method="GET"))


# --- refused requests ------------------------------------------------------------


def test_no_authentication_at_all() -> None:
    req = received(AWSRequest(method="POST", url=ENDPOINT, data=BODY, headers={"Content-Type": FORM}))
    with pytest.raises(errors.MissingParameter) as exc:
        check(req)
    assert (exc.value.code, exc.value.status) == ("MissingParameter", 400)
    assert str(exc.value) == "The request must contain the parameter AWSAccessKeyId"


def test_wrong_secret() -> None:
    with pytest.raises(errors.SignatureDoesNotMatch) as exc:
        check(received(signed(secret="not-the-secret")))
    assert (exc.value.code, exc.value.status) == ("SignatureDoesNotMatch", 403)
    # The fixed AWS text: neither the secret nor the signature we computed.
    assert str(exc.value) == errors.SignatureDoesNotMatch.message


def test_wrong_secret_presigned() -> None:
    with pytest.raises(errors.SignatureDoesNotMatch):
        check(received(presigned(secret="not-the-secret")))


def test_tampered_body() -> None:
    req = received(signed())
    with pytest.raises(errors.SignatureDoesNotMatch):
        check(with_(req, body=BODY.replace(b"DescribeRegions", b"TerminateInstances")))


def test_tampered_query() -> None:
    req = received(signed("GET", ENDPOINT + "?Action=DescribeRegions", data=None))
    with pytest.raises(errors.SignatureDoesNotMatch):
        check(with_(req, query_string="Action=TerminateInstances"))


@pytest.mark.parametrize(
    "change",
    [
        lambda q: q.replace("DescribeRegions", "RunInstances"),
        lambda q: q + "&InstanceId.1=i-0123456789abcdef0",
        lambda q: q.replace("X-Amz-Expires=3600", "X-Amz-Expires=604800"),
    ],
)
def test_tampered_presigned_query(change: Any) -> None:
    req = received(presigned())
    with pytest.raises(errors.SignatureDoesNotMatch):
        check(with_(req, query_string=change(req.query_string)))


def test_tampered_signed_header_and_path_and_host() -> None:
    req = received(signed())
    for bad in (
        replace_header(req, content_type="text/plain"),
        with_(req, url_path="/services/Other"),
        with_(req, host="evil.test:8773"),
        with_(req, method="PUT"),
    ):
        with pytest.raises(errors.SignatureDoesNotMatch):
            check(bad)


def test_declared_body_hash_must_match_the_body() -> None:
    req = replace_header(received(signed()), x_amz_content_sha256="0" * 64)
    with pytest.raises(errors.SignatureDoesNotMatch) as exc:
        check(req)
    assert "x-amz-content-sha256" in str(exc.value)


def test_unsigned_payload_is_refused_in_the_header_form() -> None:
    headers = {"Content-Type": FORM, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    with pytest.raises(errors.SignatureDoesNotMatch):
        check(received(signed(headers=headers)))


def test_unknown_access_key() -> None:
    with pytest.raises(errors.AuthFailure) as exc:
        check(received(signed(key="AKIAUNKNOWNKEY000000")))
    assert (exc.value.code, exc.value.status) == ("AuthFailure", 401)
    assert str(exc.value) == "AWS was not able to validate the provided access credentials"


def test_session_token_is_refused() -> None:
    request = AWSRequest(method="POST", url=ENDPOINT, data=BODY, headers={"Content-Type": FORM})
    SigV4Auth(Credentials(AK, SK, token="session-token"), "ec2", REGION).add_auth(request)
    with pytest.raises(errors.AuthFailure):
        check(received(request))


def test_credential_scoped_to_another_region() -> None:
    with pytest.raises(errors.AuthFailure) as exc:
        check(received(signed(region="xx-west-9")))
    assert str(exc.value) == "Credential should be scoped to a valid region, not 'xx-west-9'."


def test_credential_scoped_to_another_service() -> None:
    with pytest.raises(errors.AuthFailure) as exc:
        check(received(signed(service="s3")))
    assert str(exc.value) == "Credential should be scoped to correct service: 'ec2'."


def test_credential_scope_date_must_be_the_request_day() -> None:
    req = received(signed())
    authorization = req.headers["authorization"]
    day = authorization.split("/")[1]
    other = (datetime.strptime(day, "%Y%m%d") - timedelta(days=1)).strftime("%Y%m%d")
    req = replace_header(req, authorization=authorization.replace(f"/{day}/", f"/{other}/"))
    with pytest.raises(errors.AuthFailure) as exc:
        check(req)
    assert "Date in Credential scope does not match" in str(exc.value)


@pytest.mark.parametrize("offset", [901, -901])
def test_clock_skew_beyond_the_limit(offset: int) -> None:
    req = received(signed())
    with pytest.raises(errors.RequestExpired) as exc:
        check(req, at=now() + timedelta(seconds=offset))
    assert (exc.value.code, exc.value.status, str(exc.value)) == (
        "RequestExpired",
        400,
        "Request has expired.",
    )


def test_clock_skew_within_the_limit_and_configurable() -> None:
    req = received(signed())
    assert check(req, at=now() + timedelta(seconds=850)).access_key_id == AK
    assert check(req, at=now() - timedelta(seconds=850)).access_key_id == AK
    with pytest.raises(errors.RequestExpired):
        check(req, at=now() + timedelta(seconds=120), max_skew=60)


def test_expired_presigned_url() -> None:
    req = received(presigned(expires=60))
    assert check(req, at=now() + timedelta(seconds=50)).access_key_id == AK
    with pytest.raises(errors.RequestExpired):
        check(req, at=now() + timedelta(seconds=70))


def test_presigned_url_valid_for_longer_than_the_skew() -> None:
    req = received(presigned(expires=7 * 24 * 3600))
    assert check(req, at=now() + timedelta(days=6)).access_key_id == AK


def test_presigned_url_valid_for_more_than_a_week() -> None:
    with pytest.raises(errors.IncompleteSignature) as exc:
        check(received(presigned(expires=7 * 24 * 3600 + 1)))
    assert "604800" in str(exc.value)


def _garble(authorization: str, old: str, new: str) -> str:
    assert old in authorization
    return authorization.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("Credential=", "Credentials=", "requires 'Credential' parameter"),
        ("SignedHeaders=", "Headers=", "requires 'SignedHeaders' parameter"),
        ("Signature=", "Sig=", "requires 'Signature' parameter"),
        ("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'"),
        ("/aws4_request", "", "Credential must have exactly 5 slash-delimited elements"),
        ("host;", "", "'Host' or ':authority' must be a 'SignedHeader'"),
        (", Signature=", ", Signature ", "missing equal-sign"),
    ],
)
def test_garbled_authorization_header(old: str, new: str, fragment: str) -> None:
    req = received(signed())
    req = replace_header(req, authorization=_garble(req.headers["authorization"], old, new))
    with pytest.raises(errors.IncompleteSignature) as exc:
        check(req)
    assert (exc.value.code, exc.value.status) == ("IncompleteSignature", 400)
    assert fragment in str(exc.value)


def test_authorization_without_a_date() -> None:
    req = received(signed())
    headers = {k: v for k, v in req.headers.items() if k != "x-amz-date"}
    with pytest.raises(errors.IncompleteSignature) as exc:
        check(with_(req, headers=headers))
    assert "'X-Amz-Date' or a 'Date' header" in str(exc.value)


def test_malformed_x_amz_date() -> None:
    with pytest.raises(errors.IncompleteSignature) as exc:
        check(replace_header(received(signed()), x_amz_date="2026-11-25T12:00:00Z"))
    assert "ISO-8601 'basic format'" in str(exc.value)


def test_not_an_aws_authorization_at_all() -> None:
    with pytest.raises(errors.IncompleteSignature):
        check(replace_header(received(signed()), authorization="Basic dXNlcjpwYXNz"))


@pytest.mark.parametrize("name", ["X-Amz-Signature", "X-Amz-Credential", "X-Amz-Date"])
def test_presigned_url_missing_a_part(name: str) -> None:
    req = received(presigned())
    query = "&".join(p for p in req.query_string.split("&") if not p.startswith(name + "="))
    with pytest.raises(errors.IncompleteSignature) as exc:
        check(with_(req, query_string=query))
    assert f"must include '{name}'" in str(exc.value)


def test_no_failure_message_carries_the_secret() -> None:
    cases = [
        signed(secret="not-the-secret"),
        signed(key="AKIAUNKNOWNKEY000000"),
        signed(region="eu-west-1"),
        presigned(secret="not-the-secret"),
    ]
    for request in cases:
        with pytest.raises(errors.OcsError) as exc:
            check(received(request))
        assert SK not in str(exc.value) and SK not in repr(exc.value.kwargs)


# --- end to end: boto3, aws-cli, gunicorn --------------------------------------------

REGIONS_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
    "<requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId><regionInfo><item>"
    f"<regionName>{REGION}</regionName><regionEndpoint>ec2.ocs.test</regionEndpoint>"
    "<optInStatus>opt-in-not-required</optInStatus></item></regionInfo>"
    "</DescribeRegionsResponse>"
)


def error_xml(exc: errors.OcsError) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{exc.code}</Code><Message>{escape(str(exc))}</Message>"
        "</Error></Errors><RequestID>59dbff89-35bd-4eac-99ed-be587EXAMPLE</RequestID></Response>"
    )


def verifying_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A stand-in EC2 endpoint: verify the signature, answer DescribeRegions."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    status, text = 200, REGIONS_XML
    try:
        check(auth.signed_request_from_wsgi(environ, body))
    except errors.OcsError as exc:
        status, text = exc.status, error_xml(exc)
    payload = text.encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


gunicorn_app = verifying_app  # imported by gunicorn in test_boto3_through_gunicorn


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture(scope="module")
def wsgiref_endpoint() -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, verifying_app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/services/Cloud"
    finally:
        server.shutdown()
        server.server_close()


def boto3_client(endpoint: str, *, secret: str = SK, region: str = REGION, **config: Any) -> Any:
    session = boto3.Session(botocore_session=botocore.session.Session())
    return session.client(
        "ec2",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=AK,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


def test_boto3_describe_regions(wsgiref_endpoint: str) -> None:
    regions = boto3_client(wsgiref_endpoint).describe_regions(RegionNames=["é b~+*/&=", REGION])
    assert [r["RegionName"] for r in regions["Regions"]] == [REGION]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"secret": "not-the-secret"}, "SignatureDoesNotMatch"),
        ({"region": "eu-west-1"}, "AuthFailure"),
        ({"signature_version": UNSIGNED}, "MissingParameter"),
    ],
)
def test_boto3_refused(wsgiref_endpoint: str, kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as exc:
        boto3_client(wsgiref_endpoint, **kwargs).describe_regions()
    assert exc.value.response["Error"]["Code"] == code


def test_boto3_presigned_url_over_http(wsgiref_endpoint: str) -> None:
    url = boto3_client(wsgiref_endpoint).generate_presigned_url(
        "describe_regions", Params={"RegionNames": ["é b~+*"]}, HttpMethod="GET"
    )
    with urlopen(Request(url), timeout=10) as response:
        assert response.status == 200


def aws_cli(endpoint: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": AK,
        "AWS_SECRET_ACCESS_KEY": SK,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
    }
    aws = Path(sys.executable).with_name("aws")
    command = [str(aws), "ec2", "describe-regions", "--endpoint-url", endpoint, "--output", "json"]
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=60)


def test_aws_cli_describe_regions(wsgiref_endpoint: str, tmp_path: Path) -> None:
    result = aws_cli(wsgiref_endpoint, tmp_path, "--region-names", "é b~+*")
    assert result.returncode == 0, result.stderr
    assert REGION in result.stdout


def test_aws_cli_unsigned(wsgiref_endpoint: str, tmp_path: Path) -> None:
    result = aws_cli(wsgiref_endpoint, tmp_path, "--no-sign-request")
    assert result.returncode != 0
    assert "MissingParameter" in result.stderr and "AWSAccessKeyId" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("gunicorn did not start")


def test_boto3_through_gunicorn() -> None:
    port = _free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "-b", f"127.0.0.1:{port}", "-w", "1", "tests.unit.api_ec2.test_auth:gunicorn_app"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(port, process)
        client = boto3_client(f"http://127.0.0.1:{port}/services/Cl%C3%B6ud%20x")
        regions = client.describe_regions(RegionNames=["é b~+*/&="])
        assert regions["Regions"][0]["RegionName"] == REGION
        with pytest.raises(ClientError) as exc:
            boto3_client(f"http://127.0.0.1:{port}/", secret="nope").describe_regions()
        assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    finally:
        process.terminate()
        process.wait(timeout=10)
