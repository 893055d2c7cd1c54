"""A simulated hypervisor: guests in memory, configured through the constructor.

The fake keeps the whole driver contract honestly, so the agent, the scheduler
and the API can be exercised without virtualization: capacity is enforced,
power states move as a hypervisor's would, consoles fill with a boot log, and
lifecycle events fire. It is a product feature too: ``ocs-manage all-in-one``
runs it by default, and one process can hold hundreds of instances (hosts) of
it for scale runs, since no state is shared between instances.

Time: ``spawn`` returns once the guest runs, after ``boot_delay`` seconds spent
in the injected ``sleep`` (image fetch, define and start, all in one); power-on
and hard reboots are instant; a graceful shutdown or soft reboot takes
``shutdown_delay`` seconds, or the whole ``timeout`` for a guest that ignores
ACPI (see :class:`FaultPlan`). Waits happen outside the driver's lock, so other
calls go on meanwhile. Tests pass a :class:`ManualClock` as ``clock`` and its
``sleep`` as ``sleep``: nothing really sleeps and timings are exact.

Faults: a :class:`FaultPlan` makes spawns fail (the next N, given instance ids,
or at random from a seeded generator) after the boot delay, so the clean-up of a
partial guest is exercised, makes any other operation fail, or makes guests
ignore ACPI. :meth:`FakeDriver.simulate_shutdown` and
:meth:`FakeDriver.simulate_crash` play a guest that stops by itself.
"""

from __future__ import annotations

import logging
import random
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ocs.compute_agent.driver import (
    CONSOLE_MAX_BYTES,
    Driver,
    DriverError,
    EventHandler,
    GuestEvent,
    GuestExists,
    GuestInfo,
    GuestNotFound,
    GuestSpec,
    HostResources,
    InvalidGuestState,
    NicSpec,
    PowerState,
    SpawnFailed,
    VolumeAttachment,
)

LOG = logging.getLogger(__name__)

HYPERVISOR_TYPE = "fake"
HYPERVISOR_VERSION = "1.0.0"

#: Architectures a host of the given one runs, best first.
_ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "x86_64": ("x86_64", "i386"),
    "aarch64": ("arm64", "aarch64"),
    "arm64": ("arm64", "aarch64"),
}

#: Operations a :class:`FaultPlan` can make fail (``spawn`` has its own knobs).
FAILABLE_OPERATIONS = frozenset(
    {
        "init_host",
        "destroy",
        "power_off",
        "power_on",
        "reboot",
        "console_output",
        "attach_volume",
        "detach_volume",
        "resize_volume",
        "attach_interface",
        "detach_interface",
    }
)

_ON = (PowerState.RUNNING, PowerState.PAUSED)


class ManualClock:
    """A clock that moves only when slept on or advanced. Thread-safe.

    Pass the instance as ``clock`` and its :meth:`sleep` as ``sleep``. Sleeps
    from several threads add up (time is simulated, not shared out).
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(seconds, 0.0)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


@dataclass
class FaultPlan:
    """What the fake hypervisor gets wrong on purpose.

    Tests may change a plan between calls; the driver reads and updates it under
    its own lock, so give each driver its own plan.

    - ``spawn_failures``: the next N spawns fail (counts down);
    - ``failing_instances``: spawns of these instance ids always fail;
    - ``spawn_failure_rate``: any spawn fails with this probability, drawn from
      ``rng`` (seed it for repeatable runs);
    - ``spawn_failure_reason`` / ``spawn_failure_retryable``: the resulting
      :class:`SpawnFailed`;
    - ``operation_failures``: ``{"power_on": 2}`` makes the next two
      ``power_on`` calls raise :class:`DriverError` (see
      :data:`FAILABLE_OPERATIONS`), leaving the guest as it was;
    - ``ignore_acpi``: guests that ignore shutdown and reboot requests, so a
      graceful power-off or soft reboot waits its whole timeout.
    """

    spawn_failures: int = 0
    failing_instances: set[str] = field(default_factory=set)
    spawn_failure_rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    spawn_failure_reason: str = "simulated hypervisor failure"
    spawn_failure_retryable: bool = True
    operation_failures: dict[str, int] = field(default_factory=dict)
    ignore_acpi: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.spawn_failures < 0:
            raise ValueError("spawn_failures must not be negative")
        if not 0.0 <= self.spawn_failure_rate <= 1.0:
            raise ValueError("spawn_failure_rate must be between 0 and 1")
        unknown = set(self.operation_failures) - FAILABLE_OPERATIONS
        if unknown:
            raise ValueError(f"cannot make {sorted(unknown)} fail; choose from {sorted(FAILABLE_OPERATIONS)}")

    def take_spawn_failure(self, instance_id: str) -> bool:
        """Whether this spawn fails (consumes one of ``spawn_failures``)."""
        if instance_id in self.failing_instances:
            return True
        if self.spawn_failures > 0:
            self.spawn_failures -= 1
            return True
        return self.spawn_failure_rate > 0 and self.rng.random() < self.spawn_failure_rate

    def take_operation_failure(self, operation: str) -> bool:
        """Whether this call of ``operation`` fails (consumes one failure)."""
        left = self.operation_failures.get(operation, 0)
        if left <= 0:
            return False
        self.operation_failures[operation] = left - 1
        return True


@dataclass
class _Guest:
    spec: GuestSpec
    power_state: PowerState = PowerState.NOSTATE
    spawning: bool = True
    doomed: bool = False  # an injected spawn failure, revealed after the boot delay
    booted_at: float = 0.0
    boots: int = 0
    console: bytearray = field(default_factory=bytearray)
    volumes: dict[str, VolumeAttachment] = field(default_factory=dict)
    volume_bytes: dict[str, int] = field(default_factory=dict)  # the size a resize gave
    nics: dict[str, NicSpec] = field(default_factory=dict)

    def info(self) -> GuestInfo:
        spec = self.spec
        return GuestInfo(
            instance_id=spec.instance_id,
            power_state=self.power_state,
            vcpus=spec.vcpus,
            memory_mib=spec.memory_mib,
            disk_gib=spec.disk_gib,
            volumes=tuple(self.volumes),
            interfaces=tuple(self.nics),
            console_bytes=len(self.console),
            root_volume=spec.root_volume.volume_id if spec.root_volume else "",
        )


class FakeDriver(Driver):
    """A simulated host named ``hostname`` with the given capacity.

    ``vcpus``, ``memory_mib`` and ``disk_gib`` are enforced without overcommit;
    ``architecture`` is the host's (``x86_64`` also runs ``i386`` guests).
    See the module docstring for ``boot_delay``, ``shutdown_delay``, ``faults``,
    ``clock`` and ``sleep``.
    """

    def __init__(
        self,
        hostname: str,
        *,
        vcpus: int = 16,
        memory_mib: int = 64 * 1024,
        disk_gib: int = 1024,
        architecture: str = "x86_64",
        boot_delay: float = 0.0,
        shutdown_delay: float = 0.0,
        faults: FaultPlan | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if min(vcpus, memory_mib, disk_gib) <= 0:
            raise ValueError("vcpus, memory_mib and disk_gib must be positive")
        if min(boot_delay, shutdown_delay) < 0:
            raise ValueError("delays must not be negative")
        self.hostname = hostname
        self.capacity = (vcpus, memory_mib, disk_gib)
        self.architectures = _ARCHITECTURES.get(architecture, (architecture,))
        self.boot_delay = boot_delay
        self.shutdown_delay = shutdown_delay
        self.faults = faults if faults is not None else FaultPlan()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._guests: dict[str, _Guest] = {}
        self._open = False
        self._on_event: EventHandler | None = None

    def __repr__(self) -> str:
        return f"FakeDriver({self.hostname!r})"

    # --- connection --------------------------------------------------------

    def init_host(self, on_event: EventHandler | None = None) -> None:
        with self._lock:
            self._fail_if_planned("init_host", self.hostname)
            self._open = True
            self._on_event = on_event

    def close(self) -> None:
        with self._lock:
            self._open = False
            self._on_event = None

    # --- inventory ---------------------------------------------------------

    def host_resources(self) -> HostResources:
        with self._connected():
            specs = [g.spec for g in self._guests.values()]
        vcpus, memory_mib, disk_gib = self.capacity
        return HostResources(
            hostname=self.hostname,
            hypervisor_type=HYPERVISOR_TYPE,
            hypervisor_version=HYPERVISOR_VERSION,
            architectures=self.architectures,
            vcpus=vcpus,
            memory_mib=memory_mib,
            disk_gib=disk_gib,
            vcpus_used=sum(s.vcpus for s in specs),
            memory_mib_used=sum(s.memory_mib for s in specs),
            disk_gib_used=sum(s.disk_gib for s in specs),
            guests=len(specs),
        )

    def list_guests(self) -> list[GuestInfo]:
        with self._connected():
            return [self._guests[i].info() for i in sorted(self._guests)]

    def guest_info(self, instance_id: str) -> GuestInfo:
        with self._connected():
            return self._find(instance_id).info()

    # --- life and death ----------------------------------------------------

    def spawn(self, spec: GuestSpec) -> GuestInfo:
        with self._connected():
            guest = self._begin_spawn(spec)
        if self.boot_delay > 0:
            self._sleep(self.boot_delay)
        with self._lock:
            info = self._finish_spawn(guest)
        self._emit(spec.instance_id, GuestEvent.STARTED)
        return info

    def _begin_spawn(self, spec: GuestSpec) -> _Guest:
        """Check the request and reserve the guest's place (under the lock)."""
        instance_id = spec.instance_id
        if instance_id in self._guests:
            raise GuestExists(instance_id)
        if min(spec.vcpus, spec.memory_mib) <= 0 or (spec.disk_gib <= 0 and spec.root_volume is None):
            raise SpawnFailed(instance_id, "vCPUs, memory and disk must be positive")
        if spec.architecture not in self.architectures:
            raise SpawnFailed(
                instance_id,
                f"architecture {spec.architecture} is not supported on this host",
                retryable=True,
            )
        try:
            spec.user_data_bytes()
        except ValueError:
            raise SpawnFailed(instance_id, "user data is not valid base64") from None
        shortage = self._shortage(spec)
        if shortage:
            raise SpawnFailed(instance_id, f"insufficient capacity on host: {shortage}", retryable=True)
        guest = _Guest(spec=spec, doomed=self.faults.take_spawn_failure(instance_id))
        guest.volumes = {v.volume_id: v for v in spec.volumes}
        guest.nics = {n.mac: n for n in spec.nics}
        self._guests[instance_id] = guest
        return guest

    def _shortage(self, spec: GuestSpec) -> str:
        """What the host lacks to add ``spec`` ("" if nothing)."""
        wanted = (spec.vcpus, spec.memory_mib, spec.disk_gib)
        used = [0, 0, 0]
        for guest in self._guests.values():
            used[0] += guest.spec.vcpus
            used[1] += guest.spec.memory_mib
            used[2] += guest.spec.disk_gib
        units = ("vCPUs", "MiB of memory", "GiB of disk")
        lacking = [
            f"needs {want} {unit}, {total - use} free"
            for want, total, use, unit in zip(wanted, self.capacity, used, units, strict=True)
            if want > total - use
        ]
        return "; ".join(lacking)

    def _finish_spawn(self, guest: _Guest) -> GuestInfo:
        """Boot the reserved guest, or clean it up (under the lock)."""
        instance_id = guest.spec.instance_id
        if self._guests.get(instance_id) is not guest:
            raise SpawnFailed(instance_id, "the instance was deleted while it was being spawned")
        if guest.doomed:
            del self._guests[instance_id]
            raise SpawnFailed(
                instance_id,
                self.faults.spawn_failure_reason,
                retryable=self.faults.spawn_failure_retryable,
            )
        guest.spawning = False
        self._boot(guest)
        return guest.info()

    def destroy(self, instance_id: str) -> None:
        with self._connected():
            guest = self._guests.get(instance_id)
            if guest is None:
                return
            self._fail_if_planned("destroy", instance_id)
            del self._guests[instance_id]
        if guest.power_state in _ON:
            self._emit(instance_id, GuestEvent.STOPPED)

    # --- power -------------------------------------------------------------

    def power_off(self, instance_id: str, *, force: bool = False, timeout: float = 60.0) -> None:
        if timeout < 0:
            raise ValueError("timeout must not be negative")
        with self._connected():
            guest = self._ready(instance_id, "power off")
            if guest.power_state not in _ON:
                return
            self._fail_if_planned("power_off", instance_id)
            wait, obeys = (
                (0.0, False) if force else self._acpi_request(guest, "power button pressed", timeout)
            )
        if wait > 0:
            self._sleep(wait)
        with self._lock:
            guest = self._still(guest)
            if guest.power_state not in _ON:
                return
            self._log(guest, "reboot: Power down" if obeys else "qemu: terminating on signal 15")
            guest.power_state = PowerState.SHUTDOWN
        self._emit(instance_id, GuestEvent.STOPPED)

    def power_on(self, instance_id: str) -> None:
        with self._connected():
            guest = self._ready(instance_id, "power on")
            if guest.power_state is PowerState.RUNNING:
                return
            self._fail_if_planned("power_on", instance_id)
            if guest.power_state is PowerState.PAUSED:
                guest.power_state = PowerState.RUNNING
            else:
                self._boot(guest)
        self._emit(instance_id, GuestEvent.STARTED)

    def reboot(self, instance_id: str, *, hard: bool = False, timeout: float = 60.0) -> None:
        if timeout < 0:
            raise ValueError("timeout must not be negative")
        with self._connected():
            guest = self._ready(instance_id, "reboot")
            if not hard and guest.power_state is not PowerState.RUNNING:
                raise InvalidGuestState(instance_id, guest.power_state, "soft-reboot")
            self._fail_if_planned("reboot", instance_id)
            wait, obeys = (0.0, False) if hard else self._acpi_request(guest, "reboot requested", timeout)
        if wait > 0:
            self._sleep(wait)
        with self._lock:
            guest = self._still(guest)
            if not hard and guest.power_state is not PowerState.RUNNING:
                raise InvalidGuestState(instance_id, guest.power_state, "soft-reboot")
            was_running = guest.power_state is PowerState.RUNNING
            self._log(guest, "reboot: Restarting system" if obeys else "qemu: system reset")
            self._boot(guest)
        if not was_running:
            self._emit(instance_id, GuestEvent.STARTED)

    def _acpi_request(self, guest: _Guest, what: str, timeout: float) -> tuple[float, bool]:
        """Log an ACPI request; how long until the guest obeys it, or until
        ``timeout`` when it does not obey in time (then the driver forces)."""
        self._log(guest, f"ACPI: {what}")
        if guest.spec.instance_id in self.faults.ignore_acpi or self.shutdown_delay > timeout:
            return timeout, False
        return self.shutdown_delay, True

    # --- console and devices -----------------------------------------------

    def console_output(self, instance_id: str) -> bytes:
        with self._connected():
            guest = self._find(instance_id)
            self._fail_if_planned("console_output", instance_id)
            return bytes(guest.console[-CONSOLE_MAX_BYTES:])

    def attach_volume(self, instance_id: str, volume: VolumeAttachment) -> None:
        with self._connected():
            guest = self._ready(instance_id, "attach a volume to")
            current = guest.volumes.get(volume.volume_id)
            if current is not None and current.device == volume.device:
                return
            if current is not None:
                raise DriverError(f"{volume.volume_id} is already attached at {current.device}")
            if any(v.device == volume.device for v in guest.volumes.values()):
                raise DriverError(f"device {volume.device} of {instance_id} is in use")
            self._fail_if_planned("attach_volume", instance_id)
            guest.volumes[volume.volume_id] = volume
            self._log(guest, f"virtio_blk: {volume.volume_id} attached as {volume.device}")

    def detach_volume(self, instance_id: str, volume_id: str) -> None:
        with self._connected():
            guest = self._ready(instance_id, "detach a volume from")
            if volume_id not in guest.volumes:
                return
            self._fail_if_planned("detach_volume", instance_id)
            volume = guest.volumes.pop(volume_id)
            self._log(guest, f"virtio_blk: {volume_id} at {volume.device} detached")

    def resize_volume(self, instance_id: str, volume_id: str, size_bytes: int) -> bool:
        with self._connected():
            guest = self._ready(instance_id, "resize a volume of")
            root = guest.spec.root_volume.volume_id if guest.spec.root_volume else None
            if (volume_id not in guest.volumes and volume_id != root) or guest.power_state not in _ON:
                return False
            self._fail_if_planned("resize_volume", instance_id)
            guest.volume_bytes[volume_id] = size_bytes
            self._log(guest, f"virtio_blk: {volume_id}: new size {size_bytes // 512} 512-byte logical blocks")
            return True

    def attach_interface(self, instance_id: str, nic: NicSpec) -> None:
        with self._connected():
            guest = self._ready(instance_id, "attach an interface to")
            if nic.mac in guest.nics:
                return
            self._fail_if_planned("attach_interface", instance_id)
            guest.nics[nic.mac] = nic
            self._log(guest, f"virtio_net: link up, {nic.mac} on {nic.bridge}")

    def detach_interface(self, instance_id: str, mac: str) -> None:
        with self._connected():
            guest = self._ready(instance_id, "detach an interface from")
            if mac not in guest.nics:
                return
            self._fail_if_planned("detach_interface", instance_id)
            del guest.nics[mac]
            self._log(guest, f"virtio_net: {mac} removed")

    # --- what a guest does by itself ----------------------------------------

    def simulate_shutdown(self, instance_id: str) -> None:
        """The guest runs ``poweroff``: it is ``SHUTDOWN`` and a STOPPED event fires.

        Raises :class:`GuestNotFound`, and :class:`InvalidGuestState` if the
        guest is not running.
        """
        self._simulate(instance_id, PowerState.SHUTDOWN, "reboot: Power down", GuestEvent.STOPPED)

    def simulate_crash(self, instance_id: str) -> None:
        """The guest's kernel panics: it is ``CRASHED`` and a CRASHED event fires.

        Raises :class:`GuestNotFound`, and :class:`InvalidGuestState` if the
        guest is not running.
        """
        text = "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009"
        self._simulate(instance_id, PowerState.CRASHED, text, GuestEvent.CRASHED)

    def _simulate(self, instance_id: str, state: PowerState, text: str, event: GuestEvent) -> None:
        with self._connected():
            guest = self._ready(instance_id, f"make {state.value}")
            if guest.power_state is not PowerState.RUNNING:
                raise InvalidGuestState(instance_id, guest.power_state, f"make {state.value}")
            self._log(guest, text)
            guest.power_state = state
        self._emit(instance_id, event)

    # --- helpers (callers hold the lock unless said otherwise) ---------------

    @contextmanager
    def _connected(self) -> Iterator[None]:
        """Hold the lock; refuse to work before ``init_host`` or after ``close``."""
        with self._lock:
            if not self._open:
                raise DriverError(f"fake hypervisor {self.hostname} is not connected (call init_host)")
            yield

    def _find(self, instance_id: str) -> _Guest:
        guest = self._guests.get(instance_id)
        if guest is None:
            raise GuestNotFound(instance_id)
        return guest

    def _ready(self, instance_id: str, action: str) -> _Guest:
        """The guest, which must exist and be spawned already."""
        guest = self._find(instance_id)
        if guest.spawning:
            raise InvalidGuestState(instance_id, guest.power_state, action)
        return guest

    def _still(self, guest: _Guest) -> _Guest:
        """``guest`` after a wait without the lock: raises if it was destroyed."""
        instance_id = guest.spec.instance_id
        if self._guests.get(instance_id) is not guest:
            raise GuestNotFound(instance_id)
        return guest

    def _fail_if_planned(self, operation: str, instance_id: str) -> None:
        if self.faults.take_operation_failure(operation):
            raise DriverError(f"simulated failure of {operation} on {instance_id}")

    def _boot(self, guest: _Guest) -> None:
        guest.power_state = PowerState.RUNNING
        guest.boots += 1
        guest.booted_at = self._clock()
        for line in boot_log(guest.spec, self.hostname, guest.boots, tuple(guest.nics.values())):
            self._append(guest, line)

    def _log(self, guest: _Guest, text: str) -> None:
        """A console line stamped with the seconds since the guest booted."""
        uptime = max(self._clock() - guest.booted_at, 0.0) if guest.boots else 0.0
        self._append(guest, f"[{uptime:12.6f}] {text}")

    @staticmethod
    def _append(guest: _Guest, line: str) -> None:
        guest.console += line.encode("utf-8", "replace") + b"\r\n"
        if len(guest.console) > CONSOLE_MAX_BYTES:
            del guest.console[: len(guest.console) - CONSOLE_MAX_BYTES]

    def _emit(self, instance_id: str, event: GuestEvent) -> None:
        """Tell the event handler (called without the lock)."""
        handler = self._on_event
        if handler is None:
            return
        try:
            handler(instance_id, event)
        except Exception:
            LOG.exception("event handler failed on %s %s", event.value, instance_id)


# --- the simulated console ----------------------------------------------------


def boot_log(spec: GuestSpec, hostname: str, boot: int, nics: tuple[NicSpec, ...]) -> list[str]:
    """The console lines of one boot of ``spec``: kernel, cloud-init, login prompt.

    Deterministic: timestamps are made up, user-data scripts are not run but
    their ``echo`` lines are shown as if they had been.
    """
    iid = spec.instance_id
    name = spec.hostname or iid
    lines = [
        "[    0.000000] Linux version 6.1.0-ocs-fake (ocs@fake) #1 SMP PREEMPT_DYNAMIC",
        f"[    0.000000] Command line: root=/dev/vda1 console=ttyS0 ds=ec2 boot={boot}",
        f"[    0.000000] Hypervisor detected: {HYPERVISOR_TYPE} on {hostname}",
        f"[    0.010000] smpboot: Allowing {spec.vcpus} CPUs, memory: {spec.memory_mib}M",
        _root_disk_line(spec),
    ]
    lines += [
        f"[    1.200000] cloud-init[312]: ci-info: | eth{n.device_index} | True | {n.ip or '-'} | {n.mac} |"
        for n in nics
    ]
    lines += [f"[    1.300000] cloud-init[312]: instance-id: {iid}", f"[    1.300000] hostname: {name}"]
    if spec.key_name:
        lines.append(f"[    1.400000] cloud-init[312]: authorized key {spec.key_name!r} for the default user")
    lines += [f"[    1.500000] cloud-init[389]: {line}" for line in _user_data_lines(spec)]
    lines += [
        f"[    2.000000] cloud-init[389]: Cloud-init v. 23.1 finished. Datasource DataSourceEc2. "
        f"Up 2.00 seconds (boot {boot} of {iid})",
        "",
        f"OCS fake guest {name} ttyS0",
        "",
        f"{name} login: ",
    ]
    return lines


def _root_disk_line(spec: GuestSpec) -> str:
    root = spec.root_volume
    if root is not None:  # an EBS-backed guest: its root disk is the volume's export
        return f"[    0.420000] virtio_blk virtio0: [vda] EBS volume {root.volume_id} at {root.target}"
    return f"[    0.420000] virtio_blk virtio0: [vda] {spec.disk_gib} GiB disk from {spec.image.image_id}"


def _user_data_lines(spec: GuestSpec, limit: int = 200) -> list[str]:
    data = spec.user_data_bytes()
    if not data:
        return ["no user-data"]
    text = data.decode("utf-8", "replace")
    first = text.splitlines()[0] if text.strip() else ""
    if first.startswith("#cloud-config"):
        return [f"applying cloud-config user-data ({len(data)} bytes)"]
    if not first.startswith("#!"):
        return [f"user-data of {len(data)} bytes is neither a script nor cloud-config; ignored"]
    out = [f"running user-data script {first[2:].strip()} ({len(data)} bytes)"]
    for line in text.splitlines()[1:]:
        words = line.strip()
        if words.startswith("echo ") and len(out) <= limit:
            try:
                out.append(" ".join(shlex.split(words[5:])))
            except ValueError:
                out.append(words[5:])
    return out
