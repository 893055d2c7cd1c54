"""``ocs-network``: the network service as its own process."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ocs.bus import RpcServer
from ocs.cmd.common import bus_from_conf, parse_conf
from ocs.network.rpcapi import NetworkApi
from ocs.service import StatusEndpoint, run_forever


def main(argv: Sequence[str] | None = None) -> int:
    conf = parse_conf(argv, "ocs-network")
    bus = bus_from_conf(conf)
    endpoint = StatusEndpoint("network", conf.host)
    return run_forever(bus, RpcServer(bus, NetworkApi, endpoint, workers=4))


if __name__ == "__main__":
    sys.exit(main())
