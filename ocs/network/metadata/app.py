"""The metadata service as a falcon WSGI app: EC2's IMDS (v1 and v2) over an injected lookup.

``create_metadata_app(lookup, caller_key=..., token_secret=...)`` builds it. For
every request the app asks ``caller_key(req)`` where the request comes from
(a :class:`CallerKey`, or ``None``), then ``lookup(key)`` for that caller's own
:class:`InstanceMetadata`. A caller without a key or unknown to the lookup gets
404 for everything, token requests included, and the app answers nothing but
that instance's data to a known one.

What a known caller gets, in the order the checks are made (EC2's behaviour,
from its user guide and the real service's answers quoted in public issues):

1. ``http_endpoint`` disabled: 403, empty body.
2. ``/latest/api/token``: ``PUT`` with ``X-aws-ec2-metadata-token-ttl-seconds``
   1..21600 answers a token (``text/plain``) and echoes the TTL header; a PUT
   carrying ``X-Forwarded-For`` gets 403 (EC2 refuses tokens through proxies);
   a missing or bad TTL gets 400; any other method 405 with ``Allow: OPTIONS, PUT``.
3. ``PUT`` anywhere else (``/2021-03-23/api/token``, ``/latest/api/token/``): 403.
4. Methods other than GET and HEAD: 405.
5. A request with ``X-aws-ec2-metadata-token`` must carry a valid, unexpired
   token issued to this instance (in either mode), else 401; with
   ``http_tokens=required`` a request without one gets 401.
6. The path: a listing or a value (``text/plain``; ``user-data`` as
   ``application/octet-stream``), or 404.

Error pages: 404 is EC2's XHTML "404 - Not Found" page; 400, 401 and 405 use the
same page as AWS's own IMDS mock (amazon-ec2-metadata-mock); 403 has an empty
body, as EC2's has. Every answer carries ``Server: EC2ws``.

The hop limit (``http_put_response_hop_limit``) is not a matter of HTTP: it is
the IP TTL of the token response, set on the socket by
:func:`ocs.network.metadata.server.serve_metadata`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection

import falcon

from ocs.network.metadata import tree
from ocs.network.metadata.model import CallerKey, InstanceMetadata
from ocs.network.metadata.tokens import TokenAuthority, parse_ttl

LOG = logging.getLogger(__name__)

TOKEN_PATH = "/latest/api/token"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
NETWORK_ID_HEADER = "X-Ocs-Metadata-Network-Id"
SOURCE_IP_HEADER = "X-Ocs-Metadata-Source-Ip"

Lookup = Callable[[CallerKey], InstanceMetadata | None]
CallerKeyFunc = Callable[[falcon.Request], CallerKey | None]

NOT_FOUND_PAGE = """<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>404 - Not Found</title>
 </head>
 <body>
  <h1>404 - Not Found</h1>
 </body>
</html>
"""

_ERROR_PAGE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
   <head>
      <title>{title}</title>
   </head>
   <body>
      <h1>{title}</h1>
   </body>
</html>
"""


def error_page(status: int) -> str:
    """The body EC2 answers with for an HTTP error ``status`` (empty for 403)."""
    if status == 404:
        return NOT_FOUND_PAGE
    if status == 403:
        return ""
    return _ERROR_PAGE.format(title=f"{status} - {falcon.code_to_http_status(status)[4:]}")


# --- who is calling -----------------------------------------------------------------


def network_caller_key(network_id: str) -> CallerKeyFunc:
    """Callers of an app that listens inside one network: ``(network_id, peer address)``.

    For one app (and one :func:`serve_metadata` listener) per subnet, in that
    subnet's namespace. The peer address is the TCP peer's; no header is trusted.
    """

    def caller_key(req: falcon.Request) -> CallerKey | None:
        try:
            return CallerKey(network_id, req.remote_addr)
        except ValueError:
            return None

    return caller_key


def proxy_caller_key(trusted_proxies: Collection[str]) -> CallerKeyFunc:
    """Callers relayed by a per-subnet proxy that names them in two headers.

    The proxy sets ``X-Ocs-Metadata-Network-Id`` (its subnet id) and
    ``X-Ocs-Metadata-Source-Ip`` (the guest's address), after removing any
    copies the guest sent. The headers count only when the TCP peer is one of
    ``trusted_proxies``; anything else has no key (404).
    """
    trusted = frozenset(CallerKey("-", ip).source_ip for ip in trusted_proxies)

    def caller_key(req: falcon.Request) -> CallerKey | None:
        try:
            if CallerKey("-", req.remote_addr).source_ip not in trusted:
                return None
            network_id, source_ip = req.get_header(NETWORK_ID_HEADER), req.get_header(SOURCE_IP_HEADER)
            if not network_id or not source_ip:
                return None
            return CallerKey(network_id, source_ip)
        except ValueError:
            return None

    return caller_key


# --- the app ----------------------------------------------------------------------------


class _MetadataService:
    """The one handler behind every path (a falcon sink)."""

    def __init__(self, lookup: Lookup, caller_key: CallerKeyFunc, tokens: TokenAuthority):
        self._lookup = lookup
        self._caller_key = caller_key
        self._tokens = tokens

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        resp.set_header("Server", "EC2ws")
        key = self._caller_key(req)
        meta = self._lookup(key) if key is not None else None
        if meta is None:
            LOG.debug("metadata %s %s from unknown caller %s", req.method, req.path, key)
            return _error(resp, 404)
        if not meta.metadata_options.endpoint_enabled:
            return _error(resp, 403)
        if req.path == TOKEN_PATH:
            return self._token(req, resp, meta)
        if req.method == "PUT":
            return _error(resp, 403)
        if req.method not in ("GET", "HEAD"):
            resp.set_header("Allow", "GET, HEAD")
            return _error(resp, 405)
        if not self._authorized(req, meta):
            return _error(resp, 401)
        node = tree.resolve(meta, req.path)
        if node is None:
            return _error(resp, 404)
        _answer(resp, req.path, node)

    def _token(self, req: falcon.Request, resp: falcon.Response, meta: InstanceMetadata) -> None:
        if req.method != "PUT":
            resp.set_header("Allow", "OPTIONS, PUT")
            if req.method != "OPTIONS":
                return _error(resp, 405)
            resp.status = falcon.HTTP_200
            resp.content_type = "text/plain"
            resp.text = ""
            return
        if "HTTP_X_FORWARDED_FOR" in req.env:
            LOG.info("refused an IMDSv2 token to %s: the request came through a proxy", meta.instance_id)
            return _error(resp, 403)
        ttl = parse_ttl(req.get_header(TTL_HEADER))
        if ttl is None:
            return _error(resp, 400)
        resp.status = falcon.HTTP_200
        resp.content_type = "text/plain"
        resp.set_header(TTL_HEADER, str(ttl))
        resp.text = self._tokens.issue(meta.instance_id, ttl)

    def _authorized(self, req: falcon.Request, meta: InstanceMetadata) -> bool:
        token = req.env.get("HTTP_X_AWS_EC2_METADATA_TOKEN")
        if token is None:
            return not meta.metadata_options.tokens_required
        if self._tokens.is_valid(token.strip(), meta.instance_id):
            return True
        LOG.info("refused an invalid or expired IMDSv2 token from %s", meta.instance_id)
        return False


def _answer(resp: falcon.Response, path: str, node: tree.Node) -> None:
    resp.status = falcon.HTTP_200
    if isinstance(node, bytes):
        resp.content_type = "application/octet-stream"
        resp.data = node
        return
    resp.content_type = "text/plain"
    resp.text = node.listing() if isinstance(node, tree.Directory) else node


def _error(resp: falcon.Response, status: int) -> None:
    resp.status = falcon.code_to_http_status(status)
    resp.content_type = "text/plain" if status == 403 else "text/html"
    resp.text = error_page(status)


def create_metadata_app(
    lookup: Lookup,
    *,
    caller_key: CallerKeyFunc,
    token_secret: bytes,
    clock: Callable[[], float] = time.time,
) -> falcon.App[falcon.Request, falcon.Response]:
    """The metadata service.

    ``lookup(key)`` returns the instance calling from ``key`` or ``None``; it is
    asked on every request (options and addresses change while instances run).
    ``caller_key`` names the caller (:func:`network_caller_key`,
    :func:`proxy_caller_key`). ``token_secret`` (16+ bytes) signs IMDSv2 tokens
    and must be the same in every process serving the same instances; ``clock``
    gives seconds since the epoch. Whether tokens are required, and the hop
    limit, are per instance (``InstanceMetadata.metadata_options``), as in EC2.
    """
    service = _MetadataService(lookup, caller_key, TokenAuthority(token_secret, clock))
    app = falcon.App(media_type="text/plain")
    app.add_sink(service, prefix="/")
    app.add_error_handler(falcon.HTTPError, _on_http_error)
    app.add_error_handler(Exception, _on_unexpected)
    return app


def _on_http_error(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, str]) -> None:
    status = ex.status_code if isinstance(ex, falcon.HTTPError) else 400
    resp.set_header("Server", "EC2ws")
    _error(resp, status)


def _on_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, str]) -> None:
    LOG.exception("metadata request %s %s failed", req.method, req.path)
    resp.set_header("Server", "EC2ws")
    _error(resp, 500)
