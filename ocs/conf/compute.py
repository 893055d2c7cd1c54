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
        "[ec2] availability_zones.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
