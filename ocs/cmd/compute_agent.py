"""``ocs-compute-agent``: one per host, listening on compute.<host>."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from oslo_config import cfg

from ocs.cmd.common import bus_from_conf, parse_conf
from ocs.cmd.scheduler import run_until_signal
from ocs.compute_agent.driver import Driver
from ocs.compute_agent.drivers import load_driver
from ocs.compute_agent.service import AgentSettings, ComputeAgent
from ocs.conf.images import store_path


def availability_zone(conf: cfg.ConfigOpts, index: int = 0) -> str:
    """This host's zone: [compute] availability_zone, else the configured zones in turn."""
    if conf.compute.availability_zone:
        return str(conf.compute.availability_zone)
    zones = list(conf.ec2.availability_zones) or [f"{conf.ec2.region}a"]
    return str(zones[index % len(zones)])


def agent_settings(conf: cfg.ConfigOpts, host: str, zone: str) -> AgentSettings:
    return AgentSettings(
        host=host,
        availability_zone=zone,
        heartbeat_interval=float(conf.compute.heartbeat_interval),
        stop_timeout=float(conf.compute.shutdown_timeout),
        reboot_timeout=float(conf.compute.shutdown_timeout),
        workers=conf.compute.workers,
        network=conf.compute.plug_network,
    )


def driver_settings(conf: cfg.ConfigOpts, host: str) -> dict[str, Any]:
    """The constructor keywords of the configured driver."""
    if conf.compute.driver == "fake":
        c = conf.compute
        return {
            "hostname": host,
            "vcpus": c.fake_vcpus,
            "memory_mib": c.fake_memory_mib,
            "disk_gib": c.fake_disk_gib,
            "architecture": c.fake_architecture,
            "boot_delay": c.fake_boot_delay,
            "shutdown_delay": c.fake_shutdown_delay,
        }
    if conf.compute.driver == "libvirt":
        lv = conf.libvirt
        return {
            "hostname": host,
            "uri": lv.uri,
            "virt_type": lv.virt_type,
            "instances_path": lv.instances_path,
            "image_cache_path": lv.image_cache_path,
            "image_store_path": str(store_path(conf)),
            "kernel_cmdline": lv.kernel_cmdline,
            "machine": lv.machine,
            "cpu_mode": lv.cpu_mode,
            "force_config_drive": lv.force_config_drive,
            "config_drive_device": lv.config_drive_device,
            "qemu_img": lv.qemu_img,
            "detach_timeout": lv.detach_timeout,
            "rbd_keyring": lv.rbd_keyring,
        }
    return {}


def driver_from_conf(conf: cfg.ConfigOpts, host: str) -> Driver:
    return load_driver(conf.compute.driver, **driver_settings(conf, host))


def main(argv: Sequence[str] | None = None) -> int:
    conf = parse_conf(argv, "ocs-compute-agent")
    bus = bus_from_conf(conf)
    agent = ComputeAgent(
        bus, driver_from_conf(conf, conf.host), agent_settings(conf, conf.host, availability_zone(conf))
    )

    def stop() -> None:
        agent.stop()
        bus.close()

    return run_until_signal(agent.start, stop, f"compute agent {conf.host}")


if __name__ == "__main__":
    sys.exit(main())
