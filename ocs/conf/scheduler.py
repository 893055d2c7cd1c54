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
    cfg.FloatOpt(
        "cpu_allocation_ratio",
        default=4.0,
        min=0.01,
        help="Virtual CPUs the scheduler may place per physical CPU of a host.",
    ),
    cfg.FloatOpt(
        "ram_allocation_ratio",
        default=1.0,
        min=0.01,
        help="Memory the scheduler may place per MiB of a host's memory (above 1.0 overcommits memory).",
    ),
    cfg.FloatOpt(
        "disk_allocation_ratio",
        default=1.0,
        min=0.01,
        help="Root disk the scheduler may place per GiB of a host's disk (qcow2 "
        "overlays grow on demand, so above 1.0 is common).",
    ),
    cfg.IntOpt(
        "host_subset_size",
        default=1,
        min=1,
        help="Pick at random among this many best hosts instead of always the best "
        "one, so that several schedulers running at once collide less on claims.",
    ),
    cfg.FloatOpt(
        "host_view_ttl",
        default=1.0,
        min=0.0,
        help="Seconds the host states the scheduler read from the database serve its "
        "next decisions (its own placements are counted in at once). Changes made "
        "elsewhere (a host disabled or resized, other schedulers' claims, instances "
        "terminated) are seen by decisions starting this long after them; claims stay "
        "conditional on the host's current row, so a stale view never overcommits a "
        "host nor uses a disabled one. 0 reads every host for every decision.",
    ),
    cfg.IntOpt(
        "build_timeout",
        default=600,
        min=10,
        help="Seconds an instance may stay pending (scheduling or being built) "
        "before it is given up and ends terminated with a StateReason.",
    ),
    cfg.IntOpt(
        "orphan_timeout",
        default=60,
        min=1,
        help="Seconds after which the periodic tasks place an instance still pending "
        "without a host: its RunInstances was answered without a placement (no reply "
        "from a scheduler in time, or the API worker died after committing the launch). "
        "It is placed where it fits, else it ends terminated with "
        "Server.InsufficientInstanceCapacity. Keep it above the scheduler call's timeout "
        "(30 s), so that a slow scheduler and the periodic tasks seldom both try.",
    ),
    cfg.IntOpt(
        "periodic_interval",
        default=10,
        min=1,
        help="Seconds between the scheduler's periodic tasks: failing builds that "
        "took too long, marking silent hosts down, purging old terminated instances.",
    ),
    cfg.IntOpt(
        "service_down_time",
        default=60,
        min=1,
        help="Seconds without a heartbeat after which a host counts as down and receives no new instances.",
    ),
    cfg.BoolOpt(
        "reschedule_on_host_down",
        default=True,
        help="What the periodic tasks do with operations in flight on a host that "
        "counts as down (see service_down_time): a build there is rescheduled on "
        "another host (one of max_attempts; past them the instance ends terminated "
        "with Server.InternalError), a termination there is finished without the "
        "host, a start there fails and leaves the instance stopped. Should the host "
        "come back, the guests it then builds for instances placed elsewhere are "
        "destroyed. Off: they wait for the host until build_timeout gives them up. "
        "Instances already running on a down host are left as they are: their "
        "guests may well be running (only the agent is gone).",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
