"""Options of the [compute] group: the compute agent and its hypervisor driver."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "compute"

OPTS = [
    cfg.StrOpt(
        "driver",
        default="fake",
        choices=[
            ("fake", "a simulated hypervisor (demos and scale tests)"),
            ("libvirt", "real QEMU/KVM guests through libvirt"),
        ],
        help="Hypervisor driver of the compute agent.",
    ),
    cfg.IntOpt(
        "heartbeat_interval",
        default=10,
        min=1,
        help="Seconds between the agent's heartbeats and resource reports.",
    ),
    cfg.StrOpt(
        "availability_zone",
        help="Availability zone of this host; defaults to the first zone of "
        "[ec2] availability_zones. The all-in-one spreads its simulated hosts over "
        "every configured zone unless this is set.",
    ),
    cfg.BoolOpt(
        "plug_network",
        default=True,
        help="Plug guests into the host's network through the network service on this "
        "host (ocs-network, listening on network.<host>): it binds each NIC to a bridge "
        "and a tap before the guest is built. Turn it off only where no ocs-network runs; "
        "guests then get no network interface.",
    ),
    cfg.IntOpt(
        "workers",
        default=8,
        min=1,
        help="Operations (builds, stops, reboots ...) the agent runs at once.",
    ),
    cfg.FloatOpt(
        "shutdown_timeout",
        default=60.0,
        min=0.0,
        help="Seconds a guest may take to shut down cleanly on StopInstances (and to "
        "react to a soft reboot) before the agent pulls the plug.",
    ),
    cfg.IntOpt(
        "fake_hosts",
        default=1,
        min=1,
        max=1000,
        help="Simulated hosts the all-in-one runs with the fake driver (named fake-1 "
        "... fake-N), so that scheduling can be seen at work on one machine. "
        "'ocs-manage all-in-one --fake-hosts N' overrides it.",
    ),
    cfg.IntOpt(
        "fake_vcpus",
        default=64,
        min=1,
        help="vCPUs of each simulated host (fake driver). The fake enforces its "
        "capacity without overcommit: with [scheduler] cpu_allocation_ratio above "
        "1.0 the scheduler may place more vCPUs than a fake host has, and those "
        "builds fail there and are rescheduled.",
    ),
    cfg.IntOpt(
        "fake_memory_mib",
        default=256 * 1024,
        min=1,
        help="Memory of each simulated host in MiB (fake driver).",
    ),
    cfg.IntOpt(
        "fake_disk_gib",
        default=4096,
        min=1,
        help="Local disk of each simulated host in GiB (fake driver).",
    ),
    cfg.StrOpt(
        "fake_architecture",
        default="x86_64",
        help="Architecture of each simulated host (x86_64 hosts also run i386 guests).",
    ),
    cfg.FloatOpt(
        "fake_boot_delay",
        default=0.0,
        min=0.0,
        help="Seconds a simulated guest takes to build and boot.",
    ),
    cfg.FloatOpt(
        "fake_shutdown_delay",
        default=0.0,
        min=0.0,
        help="Seconds a simulated guest takes to shut down cleanly or soft-reboot.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
