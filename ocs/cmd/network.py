"""``ocs-network``: the network service on one host (data plane, metadata listeners)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from oslo_config import cfg

from ocs.api_ec2.service import database_url
from ocs.cmd.common import bus_from_conf, parse_conf
from ocs.cmd.scheduler import run_until_signal
from ocs.db import engine as db_engine
from ocs.network.driver import make_driver
from ocs.network.plan import PlanSettings
from ocs.network.service import NetworkHostEndpoint, NetworkService, NetworkSettings


def settings_from_conf(conf: cfg.ConfigOpts) -> NetworkSettings:
    net = conf.network
    return NetworkSettings(
        host=conf.host,
        plan=PlanSettings(
            state_dir=net.state_dir,
            lease_time=net.dhcp_lease_time,
            metadata_port=net.metadata_port,
            vxlan_port=net.vxlan_port,
            mtu=net.mtu,
        ),
        tunnel_ip=net.tunnel_ip,
        tunnel_ips=dict(net.tunnel_ips),
        region=conf.ec2.region,
        metadata_secret=net.metadata_token_secret.encode(),
        sync_interval=float(net.sync_interval),
    )


def main(argv: Sequence[str] | None = None) -> int:
    conf = parse_conf(argv, "ocs-network")
    bus = bus_from_conf(conf)
    engine = db_engine.make_engine(
        database_url(conf), pool_size=conf.database.pool_size, max_overflow=conf.database.max_overflow
    )
    kwargs = {"netns": conf.network.host_namespace} if conf.network.driver == "linux" else {}
    driver = make_driver(conf.network.driver, **kwargs)
    endpoint = NetworkHostEndpoint(db_engine.session_factory(engine), driver, settings_from_conf(conf))
    service = NetworkService(bus, endpoint)

    def stop() -> None:
        service.stop()
        bus.close()
        engine.dispose()

    return run_until_signal(service.start, stop, f"network on {conf.host}")


if __name__ == "__main__":
    sys.exit(main())
