"""The compute agent's operations on the bus; each host listens on ``compute.<host>``.

Everything the agent needs arrives in the message (it never reads the database);
what it observes goes back to the scheduler service as casts (``instance_event``;
``volume_event`` for the outcome of ``attach_volume`` and ``detach_volume``)
(:class:`ocs.scheduler.rpcapi.SchedulerApi`). Every cast here is persistent and
acknowledged after it is handled, so a message survives an agent restart; handlers
are idempotent because delivery is at least once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocs.bus import call, cast
from ocs.compute_agent.driver import GuestSpec, VolumeAttachment
from ocs.service import ServiceApi


@dataclass(frozen=True)
class Spawn:
    """Build and boot ``spec`` on ``host``; ``attempt`` counts builds of this instance."""

    host: str
    spec: GuestSpec
    attempt: int = 1


@dataclass(frozen=True)
class GuestAction:
    """Act on one guest of ``host``. ``force``: stop without waiting for the guest.
    ``volumes`` (a start): the EBS volumes the guest must have when it boots (attached
    or detached while it was stopped); None leaves its volumes as they are."""

    host: str
    instance_id: str
    force: bool = False
    volumes: tuple[VolumeAttachment, ...] | None = None


@dataclass(frozen=True)
class VolumeAction:
    """Plug EBS volume ``volume`` into one guest of ``host``, or unplug it (``volume.target``
    unused). ``force`` (a detach): EC2's Force, the volume is reported detached even if
    the guest did not let go."""

    host: str
    instance_id: str
    volume: VolumeAttachment
    force: bool = False


@dataclass(frozen=True)
class VolumeResize:
    """Grow EBS volume ``volume_id``, plugged into one running guest of ``host``, to
    ``size_gib`` (ModifyVolume): the hypervisor resizes it and the guest sees it."""

    host: str
    instance_id: str
    volume_id: str
    size_gib: int


@dataclass(frozen=True)
class VolumeResized:
    """``resized``: the guest has the new size. False with no ``error``: the volume is
    not plugged in or the guest is not running (the backend grows the bytes itself)."""

    volume_id: str
    resized: bool
    error: str = ""


@dataclass(frozen=True)
class GuestVolumesRequest:
    host: str
    instance_id: str


@dataclass(frozen=True)
class GuestVolumes:
    """The EBS volumes plugged into the guest now (``exists`` False: the host has no such
    guest), for the volume service to settle an attachment whose report was lost."""

    instance_id: str
    exists: bool
    volumes: list[str]


@dataclass(frozen=True)
class InterfaceAction:
    """Plug network interface ``interface_id`` (MAC ``mac``) into one guest of ``host`` at
    ``device_index``, or unplug it. ``force`` (a detach): EC2's Force, the interface
    was released whatever the guest does."""

    host: str
    instance_id: str
    interface_id: str
    mac: str
    device_index: int = 0
    force: bool = False


@dataclass(frozen=True)
class ImageGuest:
    """CreateImage of a running instance of ``host``: power its guest off (``reboot``;
    without it, as NoReboot, the snapshots are taken live), have the volume service
    copy ``snapshot_ids`` (pending snapshots of its volumes) while it is off, then
    start it again."""

    host: str
    instance_id: str
    snapshot_ids: list[str]
    reboot: bool = True


@dataclass(frozen=True)
class ConsoleRequest:
    host: str
    instance_id: str


@dataclass(frozen=True)
class ConsoleOutput:
    instance_id: str
    output: str  # base64 of the last 64 KiB, as EC2 returns it
    timestamp: str  # ISO 8601, when it was read


class ComputeApi(ServiceApi):
    service = "compute"
    topic = "compute.{host}"

    spawn = cast(Spawn)
    stop = cast(GuestAction)
    start = cast(GuestAction)
    reboot = cast(GuestAction)
    destroy = cast(GuestAction)
    attach_interface = cast(InterfaceAction)
    detach_interface = cast(InterfaceAction)
    attach_volume = cast(VolumeAction)
    detach_volume = cast(VolumeAction)
    image_guest = cast(ImageGuest)
    console_output = call(ConsoleRequest, ConsoleOutput, timeout=10.0)
    resize_volume = call(VolumeResize, VolumeResized, timeout=60.0)
    guest_volumes = call(GuestVolumesRequest, GuestVolumes, timeout=10.0)
