"""Options of the [scheduler] group."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "scheduler"

OPTS = [
    cfg.StrOpt(
        "weigher",
        default="spread",
        choices=[
            ("spread", "place each instance on the least loaded host"),
            ("pack", "fill the most loaded host that still fits first"),
        ],
        help="How the scheduler orders the hosts that pass every filter.",
    ),
    cfg.IntOpt(
        "max_attempts",
        default=3,
        min=1,
        help="Hosts tried for one instance before its build is given up and the "
        "instance ends terminated with a StateReason.",
    ),
    cfg.IntOpt(
        "service_down_time",
        default=60,
        min=1,
        help="Seconds without a heartbeat after which a host counts as down and "
        "receives no new instances.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
