"""``ocs-network``: the network service on one host (data plane, metadata listeners)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from oslo_config import cfg

from ocs import errors
from ocs.api_ec2.service import database_url
from ocs.cmd.common import bus_from_conf, parse_conf
from ocs.cmd.scheduler import run_until_signal
from ocs.db import engine as db_engine
from ocs.network.driver import NetworkDriver, make_driver
from ocs.network.plan import PlanSettings
from ocs.network.service import NetworkHostEndpoint, NetworkService, NetworkSettings


def driver_name(conf: cfg.ConfigOpts) -> str:
    """[network] driver, else noop with the fake hypervisor and linux with real ones.

    A real hypervisor with the bookkeeping driver is refused (ConfigError): its guests
    would boot with nothing behind their network interface and no security groups."""
    name = str(conf.network.driver or ("noop" if conf.compute.driver == "fake" else "linux"))
    if name == "noop" and conf.compute.driver not in ("fake", None, ""):
        raise errors.ConfigError(
            reason=f"[network] driver noop cannot carry the guests of [compute] driver "
            f"{conf.compute.driver}: use linux (or leave [network] driver unset)"
        )
    return name


def driver_from_conf(conf: cfg.ConfigOpts) -> NetworkDriver:
    name = driver_name(conf)
    kwargs = {"netns": conf.network.host_namespace} if name == "linux" else {}
    return make_driver(name, **kwargs)


def settings_from_conf(conf: cfg.ConfigOpts, host: str | None = None) -> NetworkSettings:
    """The network service's settings for ``host`` (default: ``[DEFAULT] host``)."""
    net = conf.network
    return NetworkSettings(
        host=host or conf.host,
        plan=PlanSettings(
            state_dir=net.state_dir,
            lease_time=net.dhcp_lease_time,
            metadata_port=net.metadata_port,
            vxlan_port=net.vxlan_port,
            mtu=net.mtu,
            public_gateway=net.public_gateway,
            public_bridge=net.public_bridge,
            public_interface=net.public_interface,
            public_gateway_on_host=net.public_gateway_on_host,
        ),
        tunnel_ip=net.tunnel_ip,
        tunnel_ips=dict(net.tunnel_ips),
        region=conf.ec2.region,
        metadata_secret=net.metadata_token_secret.encode(),
        sync_interval=float(net.sync_interval),
    )


def served_hosts(conf: cfg.ConfigOpts) -> list[str]:
    """The hosts this process serves: ``[network] hosts``, else ``[DEFAULT] host``."""
    hosts = list(dict.fromkeys(h.strip() for h in conf.network.hosts if h.strip()))
    if len(hosts) > 1 and driver_name(conf) != "noop":
        raise cfg.Error(
            f"[network] hosts lists {len(hosts)} hosts: only the noop driver serves several "
            "hosts from one process (run one ocs-network on each host)"
        )
    return hosts or [str(conf.host)]


def main(argv: Sequence[str] | None = None) -> int:
    conf = parse_conf(argv, "ocs-network")
    hosts = served_hosts(conf)
    bus = bus_from_conf(conf)
    engine = db_engine.make_engine(
        database_url(conf), pool_size=conf.database.pool_size, max_overflow=conf.database.max_overflow
    )
    readers = db_engine.session_factory(engine, read_only=True)
    writers = db_engine.session_factory(engine)  # what the hosts built (NAT gateways, heartbeats)
    services = [
        NetworkService(
            bus,
            NetworkHostEndpoint(
                readers, driver_from_conf(conf), settings_from_conf(conf, host), writers=writers
            ),
            status=index == 0,
        )
        for index, host in enumerate(hosts)
    ]

    def start() -> None:
        for service in services:
            service.start()

    def stop() -> None:
        for service in reversed(services):
            service.stop()
        bus.close()
        engine.dispose()

    return run_until_signal(start, stop, f"network on {', '.join(hosts)}")


if __name__ == "__main__":
    sys.exit(main())
