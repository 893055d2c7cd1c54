"""Serving the metadata app with EC2's hop limit on IMDSv2 token responses.

EC2 sends the answer to a token ``PUT`` with an IP TTL equal to the instance's
``http_put_response_hop_limit`` (1 by default): a process one hop further away
(a container behind the guest's bridge) never receives it, so it cannot get a
token. GET answers keep the normal TTL, which is why IMDSv1 still works from
containers when the hop limit is 1 (EC2's user guide).

A WSGI app cannot touch its connection's IP header, so this server does: a
threaded ``wsgiref`` server (one request per connection) whose handler, once it
has parsed a ``PUT``, asks ``hop_limit_for(peer address)`` and sets ``IP_TTL``
(``IPV6_UNICAST_HOPS`` too on an IPv6 socket) on the accepted socket before the
app answers. The SYN-ACK has already left with the default TTL, so a caller too
far away connects but never gets the answer, exactly as on EC2.

The hop limit is only enforced where the guest's TCP connection ends: the
listener must be this server, inside the subnet's namespace (pass a socket
bound there as ``sock``). Behind a relaying proxy the proxy must set the TTL.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from ocs.network.metadata.model import CallerKey, InstanceMetadata

LOG = logging.getLogger(__name__)

HopLimitFor = Callable[[str], int | None]
"""Peer address → the IP TTL for its token response (``None``: leave the socket's default)."""


def set_hop_limit(sock: socket.socket, hops: int) -> None:
    """Make every packet ``sock`` sends from now on carry an IP TTL (hop limit) of ``hops``."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, hops)
        try:  # IPv4 peers of a dual-stack socket (::ffff:a.b.c.d)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, hops)
        except OSError:
            pass
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, hops)


def hop_limit_lookup(lookup: Callable[[CallerKey], InstanceMetadata | None], network_id: str) -> HopLimitFor:
    """``hop_limit_for`` of a listener in subnet ``network_id``: the caller's own hop limit.

    An unknown caller gets EC2's default, 1 (it gets a 404 anyway).
    """

    def hop_limit_for(peer: str) -> int | None:
        try:
            meta = lookup(CallerKey(network_id, peer))
        except ValueError:
            return 1
        return meta.metadata_options.http_put_response_hop_limit if meta is not None else 1

    return hop_limit_for


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    hop_limit_for: HopLimitFor

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves its own name (getfqdn), which can stall
        # in a namespace without DNS; the address is all WSGI needs.
        socketserver.TCPServer.server_bind(self)
        self._name_from_socket()

    def _name_from_socket(self) -> None:
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()


class _Server6(_Server):
    address_family = socket.AF_INET6


class _HopLimitHandler(WSGIRequestHandler):
    server: _Server

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.command == "PUT":
            hops = self.server.hop_limit_for(str(self.client_address[0]))
            if hops is not None:
                set_hop_limit(self.connection, hops)
        return True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        LOG.debug("%s " + format, self.client_address[0], *args)


class MetadataServer:
    """A metadata listener serving from a daemon thread (see :func:`serve_metadata`)."""

    def __init__(self, server: _Server):
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="metadata", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> MetadataServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetadataServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_metadata(
    app: Callable[..., Any],
    host: str,
    port: int,
    hop_limit_for: HopLimitFor,
    *,
    sock: socket.socket | None = None,
) -> MetadataServer:
    """Serve ``app`` on ``host:port`` (port 0: any free one) from a thread; already started.

    ``sock``: a socket already bound (e.g. to 169.254.169.254:80 inside a subnet's
    namespace: a socket stays in the namespace it was created in); ``host`` and
    ``port`` are then ignored.
    """
    server_class = _Server6 if ":" in (sock.getsockname()[0] if sock else host) else _Server
    if sock is None:
        server = server_class((host, port), _HopLimitHandler)
    else:
        server = server_class(sock.getsockname()[:2], _HopLimitHandler, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server._name_from_socket()
        server.server_activate()
    server.hop_limit_for = hop_limit_for
    server.set_app(app)
    return MetadataServer(server).start()
