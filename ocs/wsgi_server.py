"""A small threaded WSGI server for serving apps inside one process.

The all-in-one and the functional tests serve the EC2 app from a thread of
their own process (so the in-memory bus reaches every service); ``ocs-api``
uses gunicorn instead.
"""

from __future__ import annotations

import logging
import socketserver
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

LOG = logging.getLogger(__name__)


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandler):
    """The app logs each request itself; keep wsgiref's access log out."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        LOG.debug("%s " + format, self.client_address[0], *args)


class ThreadedWSGIServer:
    """Serve ``app`` on ``host:port`` (port 0 picks a free one) from a thread."""

    def __init__(self, app: Callable[..., Any] | None, host: str, port: int):
        self._server = make_server(
            host, port, app or _unavailable, server_class=_Server, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="wsgi", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def set_app(self, app: Callable[..., Any]) -> None:
        """Serve ``app`` from now on (bind first, then build the app that needs the port)."""
        self._server.set_app(app)

    def start(self) -> ThreadedWSGIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _unavailable(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting\n"]


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` → (host, port); raises ValueError with a clear message."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid listen address {value!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)
