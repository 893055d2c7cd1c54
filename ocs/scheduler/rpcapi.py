"""The scheduler service's operations on the bus.

The scheduler service places instances (``schedule_instances``, called by the
API during RunInstances so that a request that cannot fit fails at once)
and is the one service that records what the compute agents observe
(``instance_event``, ``host_report``): agents never touch the database. The
volume service tells it when a volume of an instance's launch is made
(``launch_volume``): the guest is built once all of them exist. Every
cast is persistent and acknowledged after it is handled; handlers are
idempotent (delivery is at least once) and safe with several schedulers
consuming the same queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ocs.bus import call, cast
from ocs.service import ServiceApi


@dataclass(frozen=True)
class ScheduleInstances:
    """Place and build these pending instances (all from one RunInstances).

    At least ``min_count`` must fit, else nothing is placed, the instances and
    their reservation are deleted and NoValidHost (InsufficientInstanceCapacity)
    comes back. Instances beyond what fits are deleted likewise.
    """

    instance_ids: list[str]
    min_count: int = 1


@dataclass(frozen=True)
class ScheduleResult:
    placed: list[str]  # instance ids placed (and being built), in launch order


@dataclass(frozen=True)
class InstanceEvent:
    """What an agent saw happen to one of its guests.

    ``event``: ``spawned``, ``spawn_failed``, ``stopped``, ``started``,
    ``rebooted``, ``destroyed``, ``shutdown`` (the guest powered itself off),
    ``crashed``, ``missing`` (an operation found no guest), ``error`` (an
    operation failed; ``power_state`` says how the guest is now).
    ``retryable`` (for ``spawn_failed``): another host might succeed.
    """

    host: str
    instance_id: str
    event: str
    power_state: str = "nostate"
    reason: str = ""
    retryable: bool = False
    attempt: int = 1


@dataclass(frozen=True)
class VolumeEvent:
    """What an agent did with an EBS volume of one of its guests.

    ``event``: ``attached``, ``attach_failed``, ``detached`` or ``detach_failed``;
    ``reason`` says why it failed (for the logs)."""

    host: str
    instance_id: str
    volume_id: str
    event: str
    reason: str = ""


@dataclass(frozen=True)
class LaunchVolume:
    """The volume service made a volume of ``instance_id``'s launch (or could not):
    the scheduler builds the guest once all of them exist, or fails the launch."""

    instance_id: str
    volume_id: str = ""


@dataclass(frozen=True)
class GuestSummary:
    instance_id: str
    power_state: str


@dataclass(frozen=True)
class HostReport:
    """An agent's heartbeat: its resources and every guest its hypervisor has."""

    host: str
    availability_zone: str
    hypervisor_type: str
    hypervisor_version: str
    architectures: list[str]
    vcpus: int
    memory_mib: int
    disk_gib: int
    guests: list[GuestSummary] = field(default_factory=list)


class SchedulerApi(ServiceApi):
    service = "scheduler"

    schedule_instances = call(ScheduleInstances, ScheduleResult, timeout=30.0)
    instance_event = cast(InstanceEvent)
    volume_event = cast(VolumeEvent)
    launch_volume = cast(LaunchVolume)
    host_report = cast(HostReport)
