"""AWS Signature Version 4 (and 2) verification for the EC2 front end.

The verifier recomputes the signature with botocore's own signer
(:class:`botocore.auth.SigV4Auth`), fed with exactly what the client says it
signed: the headers named in ``SignedHeaders``, the raw path and query string,
the SHA-256 of the body we received and the timestamp of the request. So we
canonicalize the way boto3 and aws-cli do, by construction.

Both forms that boto3 and aws-cli produce are accepted:

* the ``Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
  Signature=…`` header (every API call; EC2 calls are form-encoded POSTs);
* the presigned query string (``X-Amz-Algorithm``, ``X-Amz-Credential``,
  ``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-SignedHeaders``,
  ``X-Amz-Signature``), as made by ``generate_presigned_url``.

SigV4 parameters in a form body cannot exist: the body's hash is part of what is
signed, so the signature cannot be inside it.

The credential scope must name this cloud's region and the service ``ec2``
unless ``strict_scope`` is off (``[ec2] strict_credential_scope``, off by
default): then any service name and any region are accepted, and the request
runs in this cloud's region. boto 2 derives both from the host name, and
signs ``…/0/127/aws4_request`` against ``127.0.0.1``. That is sound: the scope
is part of the string to sign, so the client proved it holds the secret key
for exactly the scope it names.

Signature Version 2 is accepted as EC2 accepts it (libcloud's default signer,
boto 2 with SigV2): the parameters ``AWSAccessKeyId``, ``SignatureVersion=2``,
``SignatureMethod`` (``HmacSHA256`` or ``HmacSHA1``), ``Timestamp`` or
``Expires`` and ``Signature``, in the query string or the form body. The
string to sign is ``METHOD\nhost\npath\n`` and the parameters but
``Signature``, sorted by name and RFC 3986-encoded (the Amazon EC2 "Signature
Version 2 signing process"). The host is taken as received and, because some
clients (libcloud) sign the host name without the port they send, also
without its port. A ``Timestamp`` must be within the clock-skew window; an
``Expires`` not past (and at most a week ahead).

The query string is canonicalized twice and either result may match: once
from the raw bytes exactly as botocore does for a URL it signs (pairs sorted,
encoding untouched), once decoded and re-encoded as the SigV4 specification
describes (``+`` is a space, ``%20``; ``~`` unescaped; UTF-8). The second form
covers clients whose wire encoding differs from their canonical one, such as
botocore's own ``AWSRequest(params=…)``, which signs ``%20`` but sends ``+``.
Both are injective over the decoded parameters, so neither widens what a
signature authorizes.

What the HTTP layer must hand over (see :func:`signed_request_from_wsgi`): the
method, the request target's path exactly as the client sent it (WSGI
``PATH_INFO`` is percent-decoded; gunicorn and falcon.testing provide the raw
path as ``RAW_URI``, uWSGI and mod_wsgi as ``REQUEST_URI``), the raw
``QUERY_STRING``, every header, the ``Host`` header as received and the body
bytes. A reverse proxy in front must pass ``Host`` and the path unchanged.

Nothing here logs, and no message or exception carries the secret key or the
signature we computed.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from hashlib import sha1, sha256
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, unquote_to_bytes, urlsplit

from botocore.auth import SIGV4_TIMESTAMP, UNSIGNED_PAYLOAD, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from ocs import errors

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
MAX_PRESIGNED_EXPIRES = 7 * 24 * 3600  # what AWS allows a presigned URL

_AUTH_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders")
_REQUIRED_QUERY = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
    "X-Amz-Date",
)
_BASIC_ISO8601 = re.compile(r"\d{8}T\d{6}Z")
_V2_METHODS = {"HmacSHA256": sha256, "HmacSHA1": sha1}
_V2_PARAMS = ("AWSAccessKeyId", "Signature", "SignatureVersion", "SignatureMethod")
_PATH_SAFE = "/:@!$&'()*+,;=~"  # RFC 3986 pchar characters a client leaves as they are


@dataclass(frozen=True)
class SignedRequest:
    """A request as it arrived, before any decoding.

    ``url_path`` and ``query_string`` are the raw request-target parts, still
    percent-encoded (text; non-ASCII characters stand for their UTF-8 bytes).
    ``headers`` are looked up case-insensitively; ``host`` is the ``Host``
    header as received (with its port, if the client sent one).
    """

    method: str
    url_path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes
    host: str


@dataclass(frozen=True)
class Identity:
    """Who signed the request and for which scope."""

    access_key_id: str
    account_id: str
    region: str
    service: str


@dataclass(frozen=True)
class _Claim:
    """What the client claims to have signed, parsed but not yet trusted."""

    access_key_id: str
    scope_date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str  # SigV4 basic format, as used in the string to sign
    date_source: str  # the header or parameter the timestamp came from
    presigned: bool
    expires: int | None = None
    security_token: str | None = None


def verify(
    req: SignedRequest,
    lookup: Callable[[str], tuple[str, str] | None],
    *,
    region: str,
    now: datetime,
    max_skew: int = 900,
    service: str = "ec2",
    strict_scope: bool = True,
) -> Identity:
    """Check the SigV4 (or SigV2) signature of ``req`` and return who signed it.

    ``lookup(access_key_id)`` returns ``(account_id, secret_access_key)`` of an
    active key, or ``None``. ``now`` is the server's clock (naive means UTC).
    Raises the :mod:`ocs.errors` EC2 answers with: ``MissingParameter`` when the
    request is not signed at all, ``IncompleteSignature`` when the signature
    parameters are malformed, ``AuthFailure`` for an unknown key or a credential
    scope that is not ours, ``RequestExpired`` for a stale timestamp or an
    expired presigned URL, ``SignatureDoesNotMatch`` otherwise. With
    ``strict_scope`` off, the scope may name any service and region; the
    identity then carries ``region``, the one this cloud has.
    """
    headers = {name.lower(): value for name, value in req.headers.items()}
    if "authorization" not in headers:
        v2 = _sigv2_pairs(req, headers)
        if v2 is not None:
            return _verify_v2(req, headers, v2, lookup, region=region, now=now, max_skew=max_skew)
    claim = _parse_claim(req, headers)
    _check_scope(claim, region=region, service=service, strict=strict_scope)
    _check_time(claim, now=now, max_skew=max_skew)
    found = lookup(claim.access_key_id)
    if found is None or claim.security_token:
        # OCS issues no temporary credentials, so a session token is never valid.
        raise errors.AuthFailure()
    account_id, secret = found
    _check_signature(req, headers, claim, secret)
    return Identity(claim.access_key_id, account_id, region, claim.service)


# --- parsing what the client claims ------------------------------------------


def _parse_claim(req: SignedRequest, headers: Mapping[str, str]) -> _Claim:
    authorization = headers.get("authorization")
    if authorization is not None:
        return _parse_header_claim(authorization, headers)
    params = dict(parse_qsl(req.query_string, keep_blank_values=True))
    if any(name in params for name in _AUTH_PARAMS):
        return _parse_query_claim(params)
    # What EC2 answers to an unsigned request (HTTP 400, not 401/403).
    raise errors.MissingParameter(name="AWSAccessKeyId")


def _parse_header_claim(authorization: str, headers: Mapping[str, str]) -> _Claim:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise errors.IncompleteSignature(f"Unsupported AWS 'algorithm': '{algorithm}'")
    fields = _authorization_fields(rest)
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(name)
    ]
    stamp = _header_timestamp(headers)
    if stamp is None:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems or stamp is None:
        raise errors.IncompleteSignature(" ".join(problems))
    return _claim(
        fields["Credential"],
        fields["SignedHeaders"],
        fields["Signature"],
        stamp,
        presigned=False,
        security_token=headers.get("x-amz-security-token"),
    )


def _authorization_fields(rest: str) -> dict[str, str]:
    """``Credential=…, SignedHeaders=…, Signature=…`` (commas and/or spaces)."""
    fields: dict[str, str] = {}
    for item in re.split(r"[,\s]+", rest.strip()):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise errors.IncompleteSignature(
                f"Invalid key=value pair (missing equal-sign) in Authorization header: '{name}'"
            )
        fields.setdefault(name, value)
    return fields


def _header_timestamp(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """(timestamp in SigV4 basic format, header it came from), or None."""
    if "x-amz-date" in headers:
        return _basic_iso8601(headers["x-amz-date"]), "x-amz-date"
    if "date" in headers:
        try:
            when = parsedate_to_datetime(headers["date"])
        except (TypeError, ValueError, IndexError):
            raise errors.IncompleteSignature(
                f"Date must be in RFC 1123 format. Got '{headers['date']}'"
            ) from None
        if when.tzinfo is not None:
            when = when.astimezone(UTC)
        return when.strftime(SIGV4_TIMESTAMP), "date"
    return None


def _basic_iso8601(value: str) -> str:
    try:
        if not _BASIC_ISO8601.fullmatch(value):
            raise ValueError(value)
        datetime.strptime(value, SIGV4_TIMESTAMP)
    except ValueError:
        raise errors.IncompleteSignature(
            f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None
    return value


def _parse_query_claim(params: Mapping[str, str]) -> _Claim:
    missing = [name for name in _REQUIRED_QUERY if not params.get(name)]
    if missing:
        raise errors.IncompleteSignature(
            " ".join(f"AWS query-string parameters must include '{name}'." for name in missing)
            + " Re-examine the query-string parameters."
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise errors.IncompleteSignature(f"Unsupported AWS 'algorithm': '{params['X-Amz-Algorithm']}'")
    return _claim(
        params["X-Amz-Credential"],
        params["X-Amz-SignedHeaders"],
        params["X-Amz-Signature"],
        (_basic_iso8601(params["X-Amz-Date"]), "X-Amz-Date"),
        presigned=True,
        expires=_presigned_expires(params.get("X-Amz-Expires")),
        security_token=params.get("X-Amz-Security-Token"),
    )


def _presigned_expires(value: str | None) -> int | None:
    if value is None:
        return None  # then the clock-skew window applies, as for the header form
    if not value.isdigit():
        raise errors.IncompleteSignature("X-Amz-Expires should be a number")
    expires = int(value)
    if expires < 1:
        raise errors.IncompleteSignature("X-Amz-Expires must be a positive number of seconds")
    if expires > MAX_PRESIGNED_EXPIRES:
        raise errors.IncompleteSignature(
            f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES}"
        )
    return expires


def _claim(
    credential: str,
    signed_headers: str,
    signature: str,
    stamp: tuple[str, str],
    *,
    presigned: bool,
    expires: int | None = None,
    security_token: str | None = None,
) -> _Claim:
    parts = credential.split("/")
    if len(parts) != 5:
        raise errors.IncompleteSignature(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{credential}'"
        )
    names = tuple(name for name in signed_headers.lower().split(";") if name)
    if "host" not in names:
        raise errors.IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    access_key_id, scope_date, region, service, terminator = parts
    return _Claim(
        access_key_id=access_key_id,
        scope_date=scope_date,
        region=region,
        service=service,
        terminator=terminator,
        signed_headers=names,
        signature=signature,
        timestamp=stamp[0],
        date_source=stamp[1],
        presigned=presigned,
        expires=expires,
        security_token=security_token,
    )


# --- checks ------------------------------------------------------------------


def _check_scope(claim: _Claim, *, region: str, service: str, strict: bool) -> None:
    """EC2 answers a credential scoped elsewhere with AuthFailure (401).

    Not ``strict``: any service and region (the signature covers them).
    """
    if claim.terminator != TERMINATOR:
        raise errors.AuthFailure(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{claim.terminator}'."
        )
    if strict and claim.service != service:
        raise errors.AuthFailure(f"Credential should be scoped to correct service: '{service}'.")
    if strict and claim.region != region:
        raise errors.AuthFailure(f"Credential should be scoped to a valid region, not '{claim.region}'.")
    if claim.scope_date != claim.timestamp[:8]:
        raise errors.AuthFailure(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
            f"date from HTTP: '{claim.scope_date}' != '{claim.timestamp[:8]}', "
            f"from '{claim.date_source}'."
        )


def _check_time(claim: _Claim, *, now: datetime, max_skew: int) -> None:
    signed_at = datetime.strptime(claim.timestamp, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    age = (now - signed_at).total_seconds()
    if age < -max_skew:
        raise errors.RequestExpired()  # signed in the future, beyond the skew allowed
    limit = max_skew if claim.expires is None else claim.expires
    if age > limit:
        raise errors.RequestExpired()


def _check_signature(req: SignedRequest, headers: Mapping[str, str], claim: _Claim, secret: str) -> None:
    body_hash = sha256(req.body).hexdigest()
    _check_declared_payload(headers.get("x-amz-content-sha256"), body_hash, claim, req.body)
    header_map = _signed_header_map(req, headers, claim.signed_headers)
    provided = claim.signature.encode()
    for query in _query_candidates(req.query_string, presigned=claim.presigned):
        for payload in _payload_candidates(body_hash, claim.presigned, req.body):
            signer = _ServerSigV4(
                Credentials(claim.access_key_id, secret),
                claim.service,
                claim.region,
                header_map=header_map,
                payload_hash=payload,
            )
            expected = signer.expected_signature(req.method, req.url_path, query, claim.timestamp)
            if hmac.compare_digest(expected.encode(), provided):
                return
    raise errors.SignatureDoesNotMatch()


def _check_declared_payload(declared: str | None, body_hash: str, claim: _Claim, body: bytes) -> None:
    """Never trust X-Amz-Content-SHA256: it must be the hash of what we received.

    ``UNSIGNED-PAYLOAD`` is honoured only for a presigned request without a body.
    """
    if declared is None or declared == body_hash:
        return
    if claim.presigned and declared == UNSIGNED_PAYLOAD and not body:
        return
    raise errors.SignatureDoesNotMatch(
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    )


# --- Signature Version 2 -----------------------------------------------------


def _sigv2_pairs(req: SignedRequest, headers: Mapping[str, str]) -> list[tuple[str, str]] | None:
    """Every parameter of a SigV2-signed request (query, then form body); None if not SigV2."""
    pairs = parse_qsl(req.query_string, keep_blank_values=True)
    if any(name.startswith("X-Amz-") for name, _ in pairs):
        return None  # a SigV4 presigned URL
    ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if req.body and ctype in ("", "application/x-www-form-urlencoded"):
        try:
            pairs += parse_qsl(req.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return None
    if not any(name in _V2_PARAMS for name, _ in pairs):
        return None
    return pairs


def _verify_v2(
    req: SignedRequest,
    headers: Mapping[str, str],
    pairs: list[tuple[str, str]],
    lookup: Callable[[str], tuple[str, str] | None],
    *,
    region: str,
    now: datetime,
    max_skew: int,
) -> Identity:
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    for name in (*_V2_PARAMS, "Timestamp"):
        if not params.get(name) and not (name == "Timestamp" and params.get("Expires")):
            raise errors.MissingParameter(name=name)
    if params["SignatureVersion"] != "2":
        raise errors.InvalidParameterValue(
            value=params["SignatureVersion"], name="SignatureVersion", reason="Valid values: 2, 4."
        )
    digest = _V2_METHODS.get(params["SignatureMethod"])
    if digest is None:
        raise errors.InvalidParameterValue(
            value=params["SignatureMethod"],
            name="SignatureMethod",
            reason="Valid values: HmacSHA256, HmacSHA1.",
        )
    _check_v2_time(params, now=now, max_skew=max_skew)
    found = lookup(params["AWSAccessKeyId"])
    if found is None or params.get("SecurityToken"):
        raise errors.AuthFailure()
    account_id, secret = found
    signed = sorted((name, value) for name, value in pairs if name != "Signature")
    query = "&".join(f"{_v2_encode(name)}={_v2_encode(value)}" for name, value in signed)
    provided = params["Signature"].encode()
    for host in _v2_hosts(req.host or headers.get("host", "")):
        text = f"{req.method.upper()}\n{host}\n{req.url_path or '/'}\n{query}"
        mac = hmac.new(secret.encode(), text.encode(), digest).digest()
        if hmac.compare_digest(base64.b64encode(mac), provided):
            return Identity(params["AWSAccessKeyId"], account_id, region, "ec2")
    raise errors.SignatureDoesNotMatch()


def _v2_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _v2_hosts(host: str) -> list[str]:
    """The host as received, and without its port (libcloud signs the bare name)."""
    host = host.lower()
    bare = host.rsplit(":", 1)[0] if host.rpartition(":")[2].isdigit() and not host.endswith("]") else host
    return [host] if bare == host else [host, bare]


def _v2_time(value: str, name: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise errors.InvalidParameterValue(
            value=value, name=name, reason="It must be an ISO 8601 timestamp."
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _check_v2_time(params: Mapping[str, str], *, now: datetime, max_skew: int) -> None:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if params.get("Timestamp") and params.get("Expires"):
        raise errors.InvalidParameterCombination(
            reason="The parameter Timestamp cannot be used with the parameter Expires"
        )
    if params.get("Expires"):
        expires = _v2_time(params["Expires"], "Expires")
        if expires < now:
            raise errors.RequestExpired()
        if expires - now > timedelta(seconds=MAX_PRESIGNED_EXPIRES):
            raise errors.InvalidParameterValue(
                value=params["Expires"], name="Expires", reason="It must be at most a week ahead."
            )
        return
    signed_at = _v2_time(params["Timestamp"], "Timestamp")
    if abs((now - signed_at).total_seconds()) > max_skew:
        raise errors.RequestExpired()


# --- canonicalization through botocore ---------------------------------------


class _ServerSigV4(SigV4Auth):  # botocore has no type hints
    """botocore's SigV4 signer, told exactly which headers and payload hash to use.

    The client-side signer picks the headers itself (all but a few) and hashes
    the body it is about to send; a verifier must instead use the client's
    ``SignedHeaders`` and the body it actually received.
    """

    def __init__(
        self,
        credentials: Credentials,
        service_name: str,
        region_name: str,
        *,
        header_map: HTTPHeaders,
        payload_hash: str,
    ) -> None:
        super().__init__(credentials, service_name, region_name)
        self._header_map = header_map
        self._payload_hash = payload_hash

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._header_map

    def payload(self, request: AWSRequest) -> str:
        return self._payload_hash

    def expected_signature(self, method: str, path: str, query: str, timestamp: str) -> str:
        if not path.startswith("/"):
            path = "/" + path
        url = f"http://verifier{path}" + (f"?{query}" if query else "")
        request = AWSRequest(method=method, url=url)
        request.context["timestamp"] = timestamp
        canonical = self.canonical_request(request)
        return str(self.signature(self.string_to_sign(request, canonical), request))


def _signed_header_map(req: SignedRequest, headers: Mapping[str, str], names: tuple[str, ...]) -> HTTPHeaders:
    header_map = HTTPHeaders()
    for name in names:
        if name == "host":
            header_map[name] = req.host or headers.get("host", "")
        else:
            header_map[name] = headers.get(name, "")
    return header_map


def _query_candidates(query: str, *, presigned: bool) -> list[str]:
    """The raw query (botocore's canonicalization) and its normalized form."""
    pairs = query.split("&") if query else []
    if presigned:
        pairs = [p for p in pairs if unquote(p.partition("=")[0]) != "X-Amz-Signature"]
    raw = "&".join(pairs)
    normalized = "&".join(f"{key}={value}" for key, value in sorted(_normalized_pairs(pairs)))
    return [raw] if normalized == raw else [raw, normalized]


def _normalized_pairs(pairs: list[str]) -> Iterator[tuple[str, str]]:
    """Each pair decoded (``+`` is a space) and URI-encoded as SigV4 specifies."""
    for pair in pairs:
        if not pair:
            continue
        key, _, value = pair.partition("=")
        yield _uri_encode(key), _uri_encode(value)


def _uri_encode(component: str) -> str:
    raw = unquote_to_bytes(component.replace("+", " "))
    return quote(raw, safe="-_.~")


def _payload_candidates(body_hash: str, presigned: bool, body: bytes) -> list[str]:
    # A presigned URL may declare its payload unsigned; accepted only with no
    # body, so that nothing unsigned ever reaches a handler.
    if presigned and not body:
        return [body_hash, UNSIGNED_PAYLOAD]
    return [body_hash]


# --- the WSGI edge -------------------------------------------------------------


def signed_request_from_wsgi(environ: Mapping[str, Any], body: bytes) -> SignedRequest:
    """Build a :class:`SignedRequest` from a WSGI environ and the body read from it.

    Works for gunicorn (``RAW_URI`` = the request target), falcon.testing
    (``RAW_URI`` = the raw path), uWSGI/mod_wsgi (``REQUEST_URI``) and
    wsgiref (no raw URI: the path is re-encoded from ``SCRIPT_NAME`` +
    ``PATH_INFO``, which is exact for any path a client encodes minimally).
    """
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return SignedRequest(
        method=environ.get("REQUEST_METHOD", "GET"),
        url_path=_untunnel(_raw_path(environ)),
        query_string=_untunnel(environ.get("QUERY_STRING", "")),
        headers=headers,
        body=body,
        host=headers.get("host") or _server_host(environ),
    )


def _raw_path(environ: Mapping[str, Any]) -> str:
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if target:
        path = str(target).split("?", 1)[0]
        if "://" in path:  # absolute-form, as sent to a proxy
            path = urlsplit(path).path
        return path or "/"
    decoded = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return quote(decoded.encode("latin-1"), safe=_PATH_SAFE) or "/"


def _server_host(environ: Mapping[str, Any]) -> str:
    name = str(environ.get("SERVER_NAME", ""))
    port = str(environ.get("SERVER_PORT", ""))
    default = "443" if environ.get("wsgi.url_scheme") == "https" else "80"
    return name if not port or port == default else f"{name}:{port}"


def _untunnel(text: str) -> str:
    """Undo WSGI's latin-1 tunnelling of a request-target's bytes (PEP 3333)."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
