"""What every service entry point does first."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from oslo_config import cfg

from ocs import __version__, log
from ocs import conf as ocs_conf
from ocs.bus import Bus


def parse_conf(argv: Sequence[str] | None, prog: str) -> cfg.ConfigOpts:
    """Parse ``--config-file``/``--config-dir`` and the options; set up logging."""
    conf = ocs_conf.make_conf()
    conf(list(sys.argv[1:] if argv is None else argv), project="ocs", prog=prog, version=__version__)
    log.setup(debug=conf.debug)
    return conf


def bus_from_conf(conf: cfg.ConfigOpts) -> Bus:
    return Bus(
        conf.bus.transport_url,
        conf.bus.exchange,
        rpc_timeout=conf.bus.rpc_timeout,
        reconnect_interval=conf.bus.reconnect_interval,
        handler_attempts=conf.bus.handler_attempts,
    )
