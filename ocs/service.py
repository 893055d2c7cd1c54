"""What every bus service shares: a ``status`` operation and the process runner.

Each service declares its operations on a client class that inherits
:class:`ServiceApi`, so every service answers ``status`` on its own topic;
``ocs-manage`` and the tests use it to see that a service is up.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

from ocs import __version__
from ocs.bus import Bus, RpcClient, RpcServer, call

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatusRequest:
    """Asks a service who and how it is."""


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    host: str
    pid: int
    version: str
    started_at: str


class ServiceApi(RpcClient):
    """Operations every service answers; service clients inherit them."""

    service = "service"
    status = call(StatusRequest, ServiceStatus, timeout=5.0)


class StatusEndpoint:
    """Answers ``status``; service endpoints inherit it."""

    def __init__(self, service: str, host: str):
        self._status = ServiceStatus(
            service=service,
            host=host,
            pid=os.getpid(),
            version=__version__,
            started_at=datetime.now(UTC).isoformat(),
        )

    def status(self, request: StatusRequest) -> ServiceStatus:
        return self._status


def run_forever(bus: Bus, server: RpcServer) -> int:
    """Serve until SIGTERM/SIGINT; then stop cleanly and close the bus."""
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        LOG.info("signal %d: stopping %s", signum, server.topic)
        stopping.set()
        server.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.start()
    LOG.info("serving %s on the bus", server.topic)
    stopping.wait()
    bus.close()
    return 0
