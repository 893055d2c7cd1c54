"""``ocs-scheduler``: the scheduler service as its own process.

Several may run at once on one bus and database: they share the ``scheduler``
queue, and every change they make is a conditional update.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from oslo_config import cfg

from ocs.api_ec2.service import database_url
from ocs.cmd.common import bus_from_conf, parse_conf
from ocs.db import engine as db_engine
from ocs.scheduler.core import Ratios
from ocs.scheduler.service import SchedulerService, SchedulerSettings

LOG = logging.getLogger(__name__)


def settings_from_conf(conf: cfg.ConfigOpts) -> SchedulerSettings:
    sched = conf.scheduler
    return SchedulerSettings(
        host=conf.host,
        weigher=sched.weigher,
        ratios=Ratios(sched.cpu_allocation_ratio, sched.ram_allocation_ratio, sched.disk_allocation_ratio),
        host_subset_size=sched.host_subset_size,
        max_attempts=sched.max_attempts,
        service_down_time=float(sched.service_down_time),
        build_timeout=float(sched.build_timeout),
        terminated_ttl=float(conf.ec2.terminated_instance_ttl),
        periodic_interval=float(sched.periodic_interval),
        reschedule_on_host_down=sched.reschedule_on_host_down,
        orphan_timeout=float(sched.orphan_timeout),
        host_view_ttl=float(sched.host_view_ttl),
    )


def run_until_signal(start: Callable[[], None], stop: Callable[[], None], what: str) -> int:
    """Start, wait for SIGTERM or SIGINT, stop; 0 when all went well."""
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        LOG.info("signal %d: stopping %s", signum, what)
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    start()
    LOG.info("%s running", what)
    stopping.wait()
    stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    conf = parse_conf(argv, "ocs-scheduler")
    bus = bus_from_conf(conf)
    engine = db_engine.make_engine(
        database_url(conf), pool_size=conf.database.pool_size, max_overflow=conf.database.max_overflow
    )
    service = SchedulerService(bus, db_engine.session_factory(engine), settings_from_conf(conf))

    def stop() -> None:
        service.stop()
        bus.close()
        engine.dispose()

    return run_until_signal(service.start, stop, f"scheduler on {conf.host}")


if __name__ == "__main__":
    sys.exit(main())
