"""The hypervisor driver contract of the compute agent.

The agent drives its host's hypervisor only through :class:`Driver`: fifteen
methods, each with its failure semantics written in its docstring. Drivers come
from the registry in :mod:`ocs.compute_agent.drivers` (``fake``, ``libvirt``).

Everything a driver needs about a guest arrives in the bus message as a
:class:`GuestSpec`; the value types here are frozen dataclasses made of bus
payload types (no ``bytes``: user-data travels base64-encoded, as EC2 carries
it), so they go on the wire unchanged. A driver never reads the database or the
configuration: its settings are constructor arguments.

Rules that hold for every method unless its docstring says otherwise:

- Every method may be called from several threads at once.
- A method that names a guest raises :class:`GuestNotFound` when the hypervisor
  has no such guest. Only :meth:`Driver.destroy` treats a missing guest as done.
- :class:`DriverError` (or a subclass) is the only exception a driver lets out
  on purpose; after one, the guest is as it was before the call.
- A method that returns has finished its work (no "accepted, still running").
- Power operations are idempotent where EC2 would be: powering off an off guest
  or on a running one is a no-op. Whether an action is *allowed* for the
  instance's EC2 state is the API's business, not the driver's.
"""

from __future__ import annotations

import abc
import base64
import binascii
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: EC2 returns at most the last 64 KiB of a console (GetConsoleOutput).
CONSOLE_MAX_BYTES = 64 * 1024


# --- what arrives in bus messages -------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    """An image as the agent sees it: where to fetch it and how to check it.

    ``location`` is a path or URL in the image store; ``disk_format`` is one of
    ``raw``, ``qcow2``, ``aki`` (kernel), ``ari`` (ramdisk), ``ami``;
    ``checksum`` is ``"<algorithm>:<hex>"`` (e.g. ``sha256:ab12…``) or empty;
    ``size`` is in bytes (0 when unknown).
    """

    image_id: str
    location: str
    disk_format: str = "qcow2"
    checksum: str = ""
    size: int = 0


@dataclass(frozen=True)
class NicSpec:
    """A network interface of a guest, already allocated by the network service.

    The driver plugs a device with this ``mac`` into ``bridge``; addresses are
    handed out by DHCP on that bridge, ``ip`` is here for the config drive and
    for the console. ``mac`` identifies the interface on the hypervisor.
    ``tap`` is the name the network service gave the host's end of the interface
    (its security-group rules key on it); with a ``tap`` and no ``bridge`` the
    driver makes the tap unattached and the network service plugs it in (its
    bridges live in another network namespace). Both come from the network
    service's :class:`~ocs.network.rpcapi.PortBinding`.
    """

    mac: str
    bridge: str
    ip: str = ""
    interface_id: str = ""
    network_id: str = ""
    device_index: int = 0
    mtu: int = 1500
    tap: str = ""


@dataclass(frozen=True)
class VolumeAttachment:
    """A block device (EBS volume) to attach to a guest.

    ``backend`` names the volume backend (``file``, ``rbd``), ``target`` is what
    that backend's connector needs (a path, ``pool/image``) and ``options`` any
    further connection details. ``device`` is the EC2 device name (``/dev/sdf``).
    """

    volume_id: str
    device: str
    backend: str
    target: str
    options: dict[str, str] = field(default_factory=dict)
    read_only: bool = False

    @classmethod
    def of_export(cls, volume_id: str, device: str, export: Mapping[str, Any] | None) -> VolumeAttachment:
        """The attachment of a volume whose backend export (``{"backend", "target",
        "options"}``, as the volume service records it) is ``export``; empty if unknown."""
        export = export or {}
        return cls(
            volume_id=volume_id,
            device=device,
            backend=str(export.get("backend", "")),
            target=str(export.get("target", "")),
            options={str(k): str(v) for k, v in (export.get("options") or {}).items()},
        )


@dataclass(frozen=True)
class GuestSpec:
    """Everything needed to spawn one guest: the compute part of RunInstances.

    ``kernel`` and ``ramdisk`` (EC2's AKI/ARI) boot the guest directly when set;
    they belong to the instance rather than to the image because RunInstances
    may override the image's. ``user_data`` is base64 text as EC2 carries it
    (see :meth:`user_data_bytes`); ``public_key`` is the OpenSSH public key of
    ``key_name``. ``volumes`` are attached at boot (block device mappings).
    ``root_volume`` (an EBS-backed instance) is the EBS volume the guest boots
    from, its root disk in place of a disk made from ``image`` (whose bytes are
    then not fetched; ``disk_gib`` may be 0: the guest uses no local disk); it is
    the guest's for its whole life, never attached or detached on its own.
    ``config_drive`` asks for a cloud-init NoCloud drive in addition to the
    metadata service.
    """

    instance_id: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    image: ImageRef
    hostname: str = ""
    architecture: str = "x86_64"
    kernel: ImageRef | None = None
    ramdisk: ImageRef | None = None
    user_data: str = ""
    key_name: str = ""
    public_key: str = ""
    nics: tuple[NicSpec, ...] = ()
    volumes: tuple[VolumeAttachment, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    config_drive: bool = False
    root_volume: VolumeAttachment | None = None

    def user_data_bytes(self) -> bytes:
        """The decoded user-data; raises ``ValueError`` if it is not base64."""
        try:
            return base64.b64decode(self.user_data, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"user data of {self.instance_id} is not valid base64") from exc


# --- what drivers report -----------------------------------------------------


class PowerState(enum.Enum):
    """A guest's power state as the hypervisor sees it (nova's names)."""

    NOSTATE = "nostate"  # being spawned, or the hypervisor cannot tell
    RUNNING = "running"
    PAUSED = "paused"
    SHUTDOWN = "shutdown"  # off: powered off by us or by the guest itself
    CRASHED = "crashed"  # off: the guest crashed


class GuestEvent(enum.Enum):
    """A lifecycle event, delivered to the handler given to :meth:`Driver.init_host`."""

    STARTED = "started"
    STOPPED = "stopped"
    CRASHED = "crashed"


#: Called with ``(instance_id, event)``; see :meth:`Driver.init_host`.
EventHandler = Callable[[str, GuestEvent], None]


@dataclass(frozen=True)
class GuestInfo:
    """What the hypervisor knows about one guest.

    ``volumes`` lists the attached volume ids and ``interfaces`` the MACs of the
    plugged interfaces, both in attachment order; ``root_volume`` is the EBS
    volume the guest boots from ('' for a root disk of its own; never among
    ``volumes``). ``console_bytes`` is the size of what
    :meth:`Driver.console_output` would return now.
    """

    instance_id: str
    power_state: PowerState
    vcpus: int
    memory_mib: int
    disk_gib: int
    volumes: tuple[str, ...] = ()
    interfaces: tuple[str, ...] = ()
    console_bytes: int = 0
    root_volume: str = ""


@dataclass(frozen=True)
class HostResources:
    """The host's capacity and what its guests use of it.

    A guest uses its vCPUs, memory and disk from the start of :meth:`Driver.spawn`
    until :meth:`Driver.destroy`, whatever its power state (a stopped guest keeps
    its place on the host). ``architectures`` lists what guests may run here,
    best first.
    """

    hostname: str
    hypervisor_type: str
    hypervisor_version: str
    architectures: tuple[str, ...]
    vcpus: int
    memory_mib: int
    disk_gib: int
    vcpus_used: int = 0
    memory_mib_used: int = 0
    disk_gib_used: int = 0
    guests: int = 0

    @property
    def vcpus_free(self) -> int:
        return self.vcpus - self.vcpus_used

    @property
    def memory_mib_free(self) -> int:
        return self.memory_mib - self.memory_mib_used

    @property
    def disk_gib_free(self) -> int:
        return self.disk_gib - self.disk_gib_used


# --- errors ------------------------------------------------------------------


class DriverError(Exception):
    """Base of every error a driver raises on purpose.

    The message is for operators (logs), not for EC2 clients, except
    :attr:`SpawnFailed.reason`. Driver errors are not :class:`ocs.errors.OcsError`:
    the agent decides what each one means for the instance and the caller.
    """


class GuestNotFound(DriverError):
    """The hypervisor has no guest with this instance id."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"no guest {instance_id} on this host")


class GuestExists(DriverError):
    """``spawn`` of an instance id the host already has; the existing guest is untouched."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"guest {instance_id} already exists on this host")


class InvalidGuestState(DriverError):
    """The guest's power state does not allow the operation (e.g. soft reboot of an off guest)."""

    def __init__(self, instance_id: str, state: PowerState, action: str) -> None:
        self.instance_id = instance_id
        self.state = state
        super().__init__(f"cannot {action} guest {instance_id}: it is {state.value}")


class SpawnFailed(DriverError):
    """A guest could not be spawned; nothing of it is left on the host.

    ``reason`` is short and user-presentable (it becomes the instance's
    StateReason). ``retryable`` is true when the failure belongs to this host
    (capacity, a hypervisor fault) so another host may succeed, false when the
    request itself cannot work anywhere (bad user-data, a deleted guest).
    """

    def __init__(self, instance_id: str, reason: str, *, retryable: bool = False) -> None:
        self.instance_id = instance_id
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"spawning {instance_id} failed: {reason}")


# --- the contract ------------------------------------------------------------


class Driver(abc.ABC):
    """A hypervisor, as the compute agent uses it. See the module docstring for
    the rules every method follows."""

    @abc.abstractmethod
    def init_host(self, on_event: EventHandler | None = None) -> None:
        """Connect to the hypervisor and check that it works; call it first.

        ``on_event(instance_id, event)`` is then called whenever a guest's power
        state changes. Changes the guest made itself (it ran ``poweroff``, it
        crashed) are always reported; changes caused by a driver call may be
        reported too, so the handler treats events as hints and re-reads
        :meth:`guest_info`. It is called from any thread, never while the driver
        holds a lock, must return quickly, and what it raises is logged and
        dropped. Calling ``init_host`` again after :meth:`close` reconnects;
        guests survive (they live in the hypervisor, not in the driver).
        Raises :class:`DriverError` if the hypervisor is unusable.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Disconnect and stop delivering events. Guests keep running.

        Idempotent; never raises. Other methods raise :class:`DriverError`
        after it until :meth:`init_host` is called again.
        """

    @abc.abstractmethod
    def host_resources(self) -> HostResources:
        """The host's capacity and current use. Raises :class:`DriverError`
        only if the hypervisor cannot be asked."""

    @abc.abstractmethod
    def list_guests(self) -> list[GuestInfo]:
        """Every guest on the host, including ones OCS does not know (the agent
        reconciles), sorted by instance id. Raises :class:`DriverError` only if
        the hypervisor cannot be asked."""

    @abc.abstractmethod
    def guest_info(self, instance_id: str) -> GuestInfo:
        """One guest. Raises :class:`GuestNotFound`."""

    @abc.abstractmethod
    def spawn(self, spec: GuestSpec) -> GuestInfo:
        """Create and boot a guest; return when it is running.

        If spawn fails, any partial guest is completely cleaned up (disks,
        devices, capacity) and :class:`SpawnFailed` is raised with a
        user-presentable reason, whatever went wrong inside the driver.
        A guest destroyed while it was being spawned also ends in
        :class:`SpawnFailed`. Raises :class:`GuestExists` if the instance id is
        already on the host, leaving that guest alone (a redelivered message
        must not kill a running guest). A ``root_volume`` is the guest's root
        disk; a failed spawn leaves its bytes as they were (the volume service
        owns them).
        """

    @abc.abstractmethod
    def destroy(self, instance_id: str) -> None:
        """Power the guest off at once and remove it with its local disks,
        detaching its volumes and interfaces and freeing its capacity. Volumes,
        its root volume too, keep their bytes: they are the volume service's.

        Idempotent: destroying a missing guest is not an error. Raises
        :class:`DriverError` only if the guest could not be removed; it then
        still exists and destroy may be retried.
        """

    @abc.abstractmethod
    def power_off(self, instance_id: str, *, force: bool = False, timeout: float = 60.0) -> None:
        """Stop the guest; return when it is off (``SHUTDOWN``).

        Without ``force``, ask the guest to shut down (ACPI) and wait up to
        ``timeout`` seconds, then pull the plug; with ``force``, pull it at once.
        An off guest (``SHUTDOWN`` or ``CRASHED``) is left as it is. Raises
        :class:`GuestNotFound` (also if the guest vanished while shutting down)
        and :class:`InvalidGuestState` for a guest still being spawned.
        """

    @abc.abstractmethod
    def power_on(self, instance_id: str) -> None:
        """Start an off guest (or resume a paused one); return when it is running.

        A running guest is left as it is. Raises :class:`GuestNotFound` and
        :class:`InvalidGuestState` for a guest still being spawned.
        """

    @abc.abstractmethod
    def reboot(self, instance_id: str, *, hard: bool = False, timeout: float = 60.0) -> None:
        """Restart the guest; it is running when this returns.

        A soft reboot asks the guest (ACPI) and needs a running guest, else
        :class:`InvalidGuestState`; a guest that does not react within
        ``timeout`` seconds is rebooted hard. A hard reboot resets the guest
        from any power state (it is how a crashed guest is recovered). Raises
        :class:`GuestNotFound`.
        """

    @abc.abstractmethod
    def console_output(self, instance_id: str) -> bytes:
        """The last :data:`CONSOLE_MAX_BYTES` of the guest's serial console.

        Output survives power off and reboots; it is empty before the first
        boot. Raises :class:`GuestNotFound`.
        """

    @abc.abstractmethod
    def attach_volume(self, instance_id: str, volume: VolumeAttachment) -> None:
        """Attach a volume to a guest in any power state (hot-plug if running).

        Attaching the same volume again at the same device is a no-op. Raises
        :class:`GuestNotFound`, :class:`InvalidGuestState` while spawning, and
        :class:`DriverError` if the device name is taken or the backend fails
        (the guest is then unchanged).
        """

    @abc.abstractmethod
    def detach_volume(self, instance_id: str, volume_id: str) -> None:
        """Detach a volume; detaching one that is not attached is a no-op.

        Raises :class:`GuestNotFound`, :class:`InvalidGuestState` while
        spawning, and :class:`DriverError` if the hypervisor refuses (the
        volume then stays attached).
        """

    def resize_volume(self, instance_id: str, volume_id: str, size_bytes: int) -> bool:
        """Grow a volume plugged into a running guest to ``size_bytes``: the hypervisor
        resizes the image it holds open and the guest sees the new capacity at once
        (ModifyVolume). False, and nothing done, if the volume is not plugged in or the
        guest is not running (the backend then grows the bytes by itself).

        Raises :class:`GuestNotFound`, :class:`InvalidGuestState` while spawning, and
        :class:`DriverError` if the hypervisor refuses (the volume keeps its size).
        Optional (outside the contract's abstract methods): a driver that cannot resize
        a plugged volume answers False, as here.
        """
        return False

    @abc.abstractmethod
    def attach_interface(self, instance_id: str, nic: NicSpec) -> None:
        """Plug a network interface into a guest in any power state.

        Plugging the same MAC again is a no-op. A NIC with a ``tap`` and no
        ``bridge`` gets an unattached tap of that name (see :class:`NicSpec`).
        Raises :class:`GuestNotFound`, :class:`InvalidGuestState` while spawning,
        and :class:`DriverError` if the NIC has neither bridge nor tap, the bridge
        is missing or the hypervisor refuses.
        """

    @abc.abstractmethod
    def detach_interface(self, instance_id: str, mac: str) -> None:
        """Unplug the interface with this MAC; a MAC not plugged is a no-op.

        Raises :class:`GuestNotFound`, :class:`InvalidGuestState` while
        spawning, and :class:`DriverError` if the hypervisor refuses.
        """
