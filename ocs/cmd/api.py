"""``ocs-api``: the EC2 front end, and the Compute Engine one beside it, under gunicorn."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker
from oslo_config import cfg

from ocs.cmd.common import parse_conf

#: The request header by which the worker tells the app how long a request waited
#: (ocs.api_ec2.app.QUEUED_ENVIRON); a client's own is replaced.
QUEUED_HEADER = "X-OCS-QUEUED-SECONDS"


class QueueTimedWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, telling the app how long each request waited between
    arriving (accepted, or readable on a kept connection) and a thread taking it up:
    time the app cannot see, where an overloaded worker's requests queue."""

    def enqueue_req(self, conn: Any) -> None:
        conn.ocs_enqueued = time.monotonic()
        super().enqueue_req(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        began = getattr(conn, "ocs_enqueued", None)
        waited = 0.0 if began is None else time.monotonic() - began
        req.headers = [(k, v) for k, v in req.headers if k.upper() != QUEUED_HEADER]
        req.headers.append((QUEUED_HEADER, f"{waited:.3f}"))
        return super().handle_request(req, conn)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, conf: cfg.ConfigOpts):
        self.conf = conf
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", self.conf.api.listen)
        self.cfg.set("workers", self.conf.api.workers)
        self.cfg.set("worker_class", "ocs.cmd.api.QueueTimedWorker")
        self.cfg.set("threads", self.conf.api.threads)
        # gunicorn's default of 2 s let a worker whose main loop was late by that much
        # (a loaded machine) close kept connections with a request already on them,
        # answering the client with a reset (see the option's help).
        self.cfg.set("keepalive", self.conf.api.keepalive)
        self.cfg.set("accesslog", None)
        self.cfg.set("proc_name", "ocs-api")
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn 25.1+ opens a control socket at one path per user
            # (~/.gunicorn/gunicorn.ctl): two ocs-api on one machine would take it
            # from each other. Nothing in OCS uses it.
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Any:
        from ocs.api_ec2.service import bus_clients
        from ocs.api_gce.service import front_ends
        from ocs.cmd.common import bus_from_conf

        # gunicorn calls this in each worker after the fork: the bus belongs to that worker.
        return front_ends(self.conf, bus_clients(bus_from_conf(self.conf)))


def main(argv: Sequence[str] | None = None) -> int:
    conf = parse_conf(argv, "ocs-api")
    _Gunicorn(conf).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
