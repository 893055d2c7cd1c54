"""``ocs-compute-agent``: one per host, listening on compute.<host>."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ocs.bus import RpcServer
from ocs.cmd.common import bus_from_conf, parse_conf
from ocs.compute_agent.rpcapi import ComputeApi
from ocs.service import StatusEndpoint, run_forever


def main(argv: Sequence[str] | None = None) -> int:
    conf = parse_conf(argv, "ocs-compute-agent")
    bus = bus_from_conf(conf)
    endpoint = StatusEndpoint("compute", conf.host)
    server = RpcServer(bus, ComputeApi, endpoint, topic=f"compute.{conf.host}", workers=4)
    return run_forever(bus, server)


if __name__ == "__main__":
    sys.exit(main())
