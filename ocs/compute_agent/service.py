"""The compute agent service: one per host, it drives the hypervisor for the cloud.

:class:`ComputeEndpoint` serves :class:`~ocs.compute_agent.rpcapi.ComputeApi`
on ``compute.<host>`` through a :class:`~ocs.compute_agent.driver.Driver` and
tells the scheduler service what happened, as
:class:`~ocs.scheduler.rpcapi.InstanceEvent` casts:

===========  ===================================================================
operation    event(s) sent
===========  ===================================================================
spawn        ``spawned``; ``spawn_failed`` (``retryable`` from the driver); a
             guest that exists already counts as spawned (a redelivered message)
stop         ``stopped``
start        ``started``
reboot       ``rebooted``
destroy      ``destroyed`` (idempotent: a missing guest is destroyed already)
attach_/     none: the interface's attachment is the API's record; a failure is
detach_      logged and leaves the guest as it was (plugging the same MAC twice
interface    or unplugging one not plugged is a no-op)
attach_      a ``VolumeEvent``: ``attached`` or ``attach_failed`` (the reason); a
volume       guest still being spawned is waited for, as for interfaces
detach_      ``detached`` (also for a guest that is gone, and with Force whatever
volume       the guest did) or ``detach_failed`` (the volume stays attached)
resize_      a call: the answer says whether the running guest's hypervisor grew
volume       the plugged volume (ModifyVolume)
guest_       a call: the volumes plugged into the guest now (the volume service
volumes      settles an attachment whose ``VolumeEvent`` was lost)
image_guest  ``rebooted`` once the guest runs again (CreateImage: it was powered off
             while the volume service copied its volumes, ``VolumeApi.snapshot_now``),
             or what a failed start sends
===========  ===================================================================

A start (``GuestAction.volumes``) and a spawn of a guest that exists already
first give the guest exactly the volumes the message lists (attached or detached
while it was stopped); a failure there is logged and the guest starts anyway.

Guests are plugged into the host's network through the host's network service
(:class:`~ocs.network.rpcapi.NetworkHostApi` on ``network.<host>``), when the
agent has one: before a spawn, ``setup_port`` for each NIC, whose binding (bridge,
tap, MAC, MTU) the NIC spec takes; ``setup_ports`` (every interface of the guest)
before a start (a stopped guest's taps are gone; its NICs are made those the service
has ports for: interfaces attached or detached while it was stopped) and, in the
background, for running guests when the agent starts (the host's data plane may
have been rebuilt); ``teardown_port`` after a destroy. A hot-plug
(``attach_interface``) is ``setup_port`` for that interface, then the driver's
plug; an unplug (``detach_interface``) is the driver's, then ``teardown_port`` for
that interface. A hot-plug that arrives while the guest is still being spawned
waits for the spawn (up to :data:`SPAWN_WAIT` seconds).
When the binding says the bridge is in another namespace (tests, demos), the tap
is made unattached and a second ``setup_port`` has the service plug it in. A
network service that fails or does not answer fails the spawn (retryable): a
guest is never started unfiltered. A NIC the network service has no port for
(the instance has no address) is left out of the guest.

An operation that finds no guest sends ``missing``; one that fails in the
driver sends ``error`` with the guest's power state as it is now. Guests that
power off or crash by themselves (the driver's lifecycle events) send
``shutdown`` or ``crashed``; events caused by the agent's own operations are
not reported twice.

:class:`ComputeAgent` runs the endpoint on the bus and casts a
:class:`~ocs.scheduler.rpcapi.HostReport` (resources and every guest the
hypervisor has: the scheduler reconciles the database with it) at start and
every ``heartbeat_interval`` seconds.

This service never touches the database (an import-linter contract checks it):
everything it needs arrives in the messages.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ocs import errors
from ocs.bus import Bus, RpcServer
from ocs.compute_agent.driver import (
    Driver,
    DriverError,
    GuestEvent,
    GuestExists,
    GuestNotFound,
    GuestSpec,
    InvalidGuestState,
    NicSpec,
    PowerState,
    SpawnFailed,
    VolumeAttachment,
)
from ocs.compute_agent.rpcapi import (
    ComputeApi,
    ConsoleOutput,
    ConsoleRequest,
    GuestAction,
    GuestVolumes,
    GuestVolumesRequest,
    ImageGuest,
    InterfaceAction,
    Spawn,
    VolumeAction,
    VolumeResize,
    VolumeResized,
)
from ocs.network.rpcapi import NetworkHostApi, PortBinding, SetupPort, SetupPorts, TeardownPort
from ocs.scheduler.rpcapi import GuestSummary, HostReport, InstanceEvent, SchedulerApi, VolumeEvent
from ocs.service import StatusEndpoint
from ocs.volume.rpcapi import CreateSnapshot, SnapshotNow, VolumeApi

LOG = logging.getLogger(__name__)

_OFF = (PowerState.SHUTDOWN, PowerState.CRASHED)
_NO_PORT = "InvalidNetworkInterfaceID.NotFound"
#: Seconds a hot-plug or unplug waits for a guest still being spawned.
SPAWN_WAIT = 120.0
#: Seconds a hot-plug waits for a guest the host does not have yet (its spawn is queued).
ARRIVAL_WAIT = 10.0
#: Why an operation on a guest was not done: the host has no such guest.
NO_GUEST = "no such guest"


@dataclass(frozen=True)
class AgentSettings:
    """The agent's settings, read from configuration at the process edge.

    ``stop_timeout``: seconds a guest may take to shut down on StopInstances
    before the plug is pulled; ``reboot_timeout`` likewise for a soft reboot;
    ``network``: plug guests in through the host's network service (``ocs-network``
    on ``network.<host>``; off only where no network service runs).
    """

    host: str
    availability_zone: str
    heartbeat_interval: float = 10.0
    stop_timeout: float = 60.0
    reboot_timeout: float = 60.0
    workers: int = 8
    network: bool = True


class ComputeEndpoint(StatusEndpoint):
    """The agent's bus operations over one driver."""

    def __init__(
        self,
        driver: Driver,
        scheduler: SchedulerApi,
        settings: AgentSettings,
        *,
        network: NetworkHostApi | None = None,
        volumes: VolumeApi | None = None,
        on_doubt: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__("compute", settings.host)
        self.driver = driver
        self.scheduler = scheduler
        self.network = network
        self.volumes = volumes
        self.settings = settings
        self.on_doubt = on_doubt  # asks for a heartbeat soon (the hypervisor surprised us)
        self._busy: Counter[str] = Counter()
        self._lock = threading.Lock()

    # --- helpers -------------------------------------------------------------

    @contextmanager
    def busy(self, instance_id: str) -> Iterator[None]:
        """Mark an operation of ours in flight: the driver's events about it are ours."""
        with self._lock:
            self._busy[instance_id] += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy[instance_id] -= 1
                if self._busy[instance_id] <= 0:
                    del self._busy[instance_id]

    def is_busy(self, instance_id: str) -> bool:
        with self._lock:
            return self._busy[instance_id] > 0 if instance_id in self._busy else False

    def tell(
        self, instance_id: str, event: str, power: PowerState | str = "nostate", **extra: object
    ) -> None:
        """Cast an InstanceEvent to the scheduler; a lost one is repaired by heartbeats."""
        power_state = power.value if isinstance(power, PowerState) else power
        message = InstanceEvent(
            host=self.settings.host,
            instance_id=instance_id,
            event=event,
            power_state=power_state,
            **extra,  # type: ignore[arg-type]
        )
        try:
            self.scheduler.instance_event(message)
        except Exception:
            LOG.exception("%s: could not report %s to the scheduler", instance_id, event)

    def power_of(self, instance_id: str) -> PowerState | None:
        """The guest's power state now (None: no such guest, or the driver cannot tell)."""
        try:
            return self.driver.guest_info(instance_id).power_state
        except GuestNotFound:
            return None
        except DriverError as exc:
            LOG.warning("%s: cannot read its power state: %s", instance_id, exc)
            return None

    def _failed(self, instance_id: str, action: str, exc: DriverError) -> None:
        LOG.warning("%s: %s failed: %s", instance_id, action, exc)
        power = self.power_of(instance_id)
        if power is None:
            self.tell(instance_id, "missing", reason=f"{action}: {exc}")
        else:
            self.tell(instance_id, "error", power, reason=f"{action}: {exc}")
        self.on_doubt()

    # --- ports ------------------------------------------------------------------

    def setup_port(self, instance_id: str, interface_id: str = "") -> PortBinding | None:
        """The network service's binding of one of the guest's interfaces ("": its
        primary one); None when it has no port for it (or there is no network service).
        Raises what the call raises otherwise (the service failed or did not answer)."""
        if self.network is None:
            return None
        try:
            return self.network.setup_port(SetupPort(self.settings.host, instance_id, interface_id))
        except errors.OcsError as exc:
            if exc.code == _NO_PORT:
                return None
            raise

    def bind_nics(self, spec: GuestSpec) -> tuple[GuestSpec, bool]:
        """``spec`` with its NICs as the network service bound them (bridge, tap, MAC,
        MTU), and whether their taps must be plugged in once the guest exists."""
        if self.network is None or not spec.nics:
            return spec, False
        nics = []
        plug_later = False
        for nic in spec.nics:
            binding = self.setup_port(spec.instance_id, nic.interface_id)
            if binding is None:
                LOG.warning("%s: the network service has no port for %s", spec.instance_id, nic.mac)
                nics.append(replace(nic, bridge="", tap=""))
                continue
            bridge = "" if binding.netns else binding.bridge
            nics.append(replace(nic, bridge=bridge, tap=binding.tap, mac=binding.mac, mtu=binding.mtu))
            plug_later = plug_later or bool(binding.netns)
        return replace(spec, nics=tuple(nics)), plug_later

    def ports_up(self, instance_id: str, *, plug: bool = False) -> list[PortBinding] | None:
        """``setup_ports`` for every interface of the guest, failures logged (a start,
        an agent restart: the guest has its NICs already); None if there is no answer
        (or no network service). ``plug``: and once more if their taps must be moved
        onto a bridge in another namespace."""
        if self.network is None:
            return None
        request = SetupPorts(self.settings.host, instance_id)
        try:
            bindings = self.network.setup_ports(request).ports
            if plug and any(b.netns for b in bindings):
                bindings = self.network.setup_ports(request).ports
            return bindings
        except Exception as exc:  # noqa: BLE001 - the periodic convergence repairs it
            LOG.warning("%s: network setup failed: %s", instance_id, exc)
            return None

    @staticmethod
    def nic_of(binding: PortBinding) -> NicSpec:
        """The NIC the driver plugs for a binding (no bridge: the service moves the tap)."""
        return NicSpec(
            mac=binding.mac,
            bridge="" if binding.netns else binding.bridge,
            ip=binding.ip,
            interface_id=binding.interface_id,
            device_index=binding.device_index,
            mtu=binding.mtu,
            tap=binding.tap,
        )

    def sync_nics(self, instance_id: str, bindings: list[PortBinding] | None) -> None:
        """Give an off guest exactly the NICs the network service has ports for
        (interfaces attached or detached while it was stopped); nothing without an
        answer naming at least one port. Failures are logged: the guest starts anyway."""
        if not bindings:
            return
        wanted = {b.mac.lower(): b for b in bindings}
        try:
            plugged = {m.lower() for m in self.driver.guest_info(instance_id).interfaces}
            for mac in sorted(plugged - set(wanted)):
                LOG.info("%s: unplugging %s, detached while it was stopped", instance_id, mac)
                self.driver.detach_interface(instance_id, mac)
            for mac, binding in wanted.items():
                if mac not in plugged:
                    LOG.info("%s: plugging %s, attached while it was stopped", instance_id, mac)
                    self.driver.attach_interface(instance_id, self.nic_of(binding))
        except DriverError as exc:
            LOG.warning("%s: could not update its interfaces: %s", instance_id, exc)

    def sync_volumes(self, instance_id: str, volumes: tuple[VolumeAttachment, ...] | None) -> None:
        """Give an off guest exactly ``volumes`` (None: leave them). Failures are logged:
        the guest starts anyway, and the API's record stays what the user asked."""
        if volumes is None:
            return
        wanted = {v.volume_id: v for v in volumes}
        try:
            plugged = set(self.driver.guest_info(instance_id).volumes)
            for volume_id in sorted(plugged - set(wanted)):
                LOG.info("%s: detaching %s, detached while it was stopped", instance_id, volume_id)
                self.driver.detach_volume(instance_id, volume_id)
            for volume_id, volume in wanted.items():
                if volume_id not in plugged:
                    LOG.info("%s: attaching %s, attached while it was stopped", instance_id, volume_id)
                    self.driver.attach_volume(instance_id, volume)
        except DriverError as exc:
            LOG.warning("%s: could not update its volumes: %s", instance_id, exc)

    def teardown_ports(self, instance_id: str) -> None:
        if self.network is None:
            return
        try:
            self.network.teardown_port(TeardownPort(self.settings.host, instance_id))
        except Exception as exc:  # noqa: BLE001 - the periodic convergence repairs it
            LOG.warning("%s: could not tell the network service it is gone: %s", instance_id, exc)

    # --- operations ------------------------------------------------------------

    def spawn(self, req: Spawn) -> None:
        iid = req.spec.instance_id
        with self.busy(iid):
            try:
                spec, plug_later = self.bind_nics(req.spec)
            except Exception as exc:  # noqa: BLE001 - never a guest without its network
                LOG.warning("%s: network setup failed: %s", iid, exc)
                reason = f"network setup failed: {exc}"[:200]
                self.tell(iid, "spawn_failed", reason=reason, retryable=True, attempt=req.attempt)
                return
            try:
                info = self.driver.spawn(spec)
            except GuestExists:
                self._spawned_already(iid, req.attempt, req.spec.volumes)
                return
            except SpawnFailed as exc:
                LOG.info("%s: spawn failed (attempt %d): %s", iid, req.attempt, exc.reason)
                self.tell(
                    iid, "spawn_failed", reason=exc.reason, retryable=exc.retryable, attempt=req.attempt
                )
                return
            except DriverError as exc:
                LOG.exception("%s: the driver failed to spawn it", iid)
                reason = f"hypervisor error: {exc}"[:200]
                self.tell(iid, "spawn_failed", reason=reason, retryable=True, attempt=req.attempt)
                return
            if plug_later:
                self.ports_up(iid)
        LOG.info("%s: spawned (attempt %d)", iid, req.attempt)
        self.tell(iid, "spawned", info.power_state, attempt=req.attempt)

    def _spawned_already(self, iid: str, attempt: int, volumes: tuple[VolumeAttachment, ...] = ()) -> None:
        """Spawn of a guest that exists: a redelivery, or a start that builds again."""
        power = self.power_of(iid)
        if power is None or power is PowerState.NOSTATE:
            return  # still being spawned by another handler, which reports
        if power in _OFF:
            bindings = self.ports_up(iid)
            self.sync_nics(iid, bindings)
            self.sync_volumes(iid, volumes)
            try:
                self.driver.power_on(iid)
            except DriverError as exc:
                self._failed(iid, "power on", exc)
                return
            if bindings and any(b.netns for b in bindings):
                self.ports_up(iid)
            power = PowerState.RUNNING
        self.tell(iid, "spawned", power, attempt=attempt)

    def stop(self, req: GuestAction) -> None:
        iid = req.instance_id
        with self.busy(iid):
            try:
                self.driver.power_off(iid, force=req.force, timeout=self.settings.stop_timeout)
            except GuestNotFound:
                self.tell(iid, "missing", reason="stop: no such guest")
                return
            except DriverError as exc:
                self._failed(iid, "stop", exc)
                return
        self.tell(iid, "stopped", self.power_of(iid) or PowerState.SHUTDOWN)

    def start(self, req: GuestAction) -> None:
        iid = req.instance_id
        with self.busy(iid):
            bindings = self.ports_up(iid)  # a stopped guest's taps are gone: its ports may be too
            self.sync_nics(iid, bindings)
            self.sync_volumes(iid, req.volumes)
            try:
                self.driver.power_on(iid)
            except GuestNotFound:
                self.tell(iid, "missing", reason="start: no such guest")
                return
            except DriverError as exc:
                self._failed(iid, "start", exc)
                return
            if bindings and any(b.netns for b in bindings):
                self.ports_up(iid)
        self.tell(iid, "started", PowerState.RUNNING)

    def reboot(self, req: GuestAction) -> None:
        iid = req.instance_id
        with self.busy(iid):
            try:
                self.driver.reboot(iid, hard=req.force, timeout=self.settings.reboot_timeout)
            except GuestNotFound:
                self.tell(iid, "missing", reason="reboot: no such guest")
                return
            except DriverError as exc:
                self._failed(iid, "reboot", exc)
                return
        self.tell(iid, "rebooted", PowerState.RUNNING)

    def destroy(self, req: GuestAction) -> None:
        iid = req.instance_id
        with self.busy(iid):
            try:
                self.driver.destroy(iid)
            except DriverError as exc:
                # The guest is still there; the instance stays shutting-down and
                # the scheduler sends destroy again after the next heartbeat.
                LOG.warning("%s: destroy failed: %s", iid, exc)
                self.on_doubt()
                return
        self.teardown_ports(iid)
        self.tell(iid, "destroyed")

    def attach_interface(self, req: InterfaceAction) -> None:
        """Hot-plug an interface: its port first (a guest never gets a NIC unfiltered),
        then the driver's plug, then the tap onto a bridge in another namespace."""
        iid = req.instance_id
        try:
            binding = self.setup_port(iid, req.interface_id)
        except Exception as exc:  # noqa: BLE001 - never a NIC without its port
            LOG.warning("%s: network setup of %s failed: %s", iid, req.interface_id, exc)
            return
        if binding is None and self.network is not None:
            LOG.warning("%s: the network service has no port for %s", iid, req.interface_id)
            return  # detached again meanwhile: its detach follows
        nic = (
            self.nic_of(binding)
            if binding is not None
            else NicSpec(mac=req.mac, bridge="", interface_id=req.interface_id, device_index=req.device_index)
        )
        plugged = self._when_spawned(
            iid, lambda: self.driver.attach_interface(iid, nic), f"attach {req.interface_id}", ARRIVAL_WAIT
        )
        if plugged and binding is not None and binding.netns:
            try:
                self.setup_port(iid, req.interface_id)
            except Exception as exc:  # noqa: BLE001 - the periodic convergence repairs it
                LOG.warning("%s: plugging the tap of %s in failed: %s", iid, req.interface_id, exc)
        if plugged:
            LOG.info("%s: interface %s (%s) plugged in", iid, req.interface_id, nic.mac)

    def detach_interface(self, req: InterfaceAction) -> None:
        """Unplug an interface, then tell the network service its port is gone (also
        when the guest could not let go: the interface is detached on the API's record)."""
        iid = req.instance_id
        if self._when_spawned(
            iid, lambda: self.driver.detach_interface(iid, req.mac), f"detach {req.interface_id}", 0.0
        ):
            LOG.info("%s: interface %s (%s) unplugged", iid, req.interface_id, req.mac)
        if self.network is not None:
            try:
                self.network.teardown_port(TeardownPort(self.settings.host, iid, req.interface_id))
            except Exception as exc:  # noqa: BLE001 - the periodic convergence repairs it
                LOG.warning(
                    "%s: could not tell the network service %s is gone: %s", iid, req.interface_id, exc
                )

    def _when_spawned(self, iid: str, act: Callable[[], None], what: str, missing_wait: float) -> bool:
        """``act()`` on the guest once it is no longer being spawned (waiting up to
        :data:`SPAWN_WAIT` s, and ``missing_wait`` s for a guest not there yet);
        whether it was done. Failures are logged."""
        return self._on_guest(iid, act, what, missing_wait) is None

    def _on_guest(self, iid: str, act: Callable[[], None], what: str, missing_wait: float) -> str | None:
        """:meth:`_when_spawned`, answering None when done, else why not (:data:`NO_GUEST`
        for a guest that is not there)."""
        started = time.monotonic()
        while True:
            waited = time.monotonic() - started
            try:
                act()
                return None
            except InvalidGuestState:
                if waited > SPAWN_WAIT:
                    LOG.warning("%s: %s: the guest is still being spawned", iid, what)
                    return "the guest is still being spawned"
            except GuestNotFound:
                if waited >= missing_wait:
                    LOG.info("%s: %s: no such guest", iid, what)
                    return NO_GUEST
            except DriverError as exc:
                LOG.warning("%s: %s failed: %s", iid, what, exc)
                self.on_doubt()
                return str(exc)[:200] or type(exc).__name__
            time.sleep(0.25)

    # --- volumes --------------------------------------------------------------------

    def tell_volume(self, instance_id: str, volume_id: str, event: str, reason: str = "") -> None:
        """Cast a VolumeEvent to the scheduler (a lost one leaves the attachment in its
        transitional state: attaching or detaching)."""
        message = VolumeEvent(self.settings.host, instance_id, volume_id, event, reason)
        try:
            self.scheduler.volume_event(message)
        except Exception:
            LOG.exception("%s: could not report %s of %s to the scheduler", instance_id, event, volume_id)

    def attach_volume(self, req: VolumeAction) -> None:
        """Hot-plug a volume (a guest still being spawned is waited for), then report."""
        iid, volume = req.instance_id, req.volume
        why = self._on_guest(
            iid, lambda: self.driver.attach_volume(iid, volume), f"attach {volume.volume_id}", ARRIVAL_WAIT
        )
        if why is None:
            LOG.info("%s: volume %s attached as %s", iid, volume.volume_id, volume.device)
            self.tell_volume(iid, volume.volume_id, "attached")
        else:
            self.tell_volume(iid, volume.volume_id, "attach_failed", why)

    def detach_volume(self, req: VolumeAction) -> None:
        """Unplug a volume, then report: a guest that is gone holds no volume, and with
        Force the volume is detached whatever the guest did."""
        iid, volume_id = req.instance_id, req.volume.volume_id
        why = self._on_guest(
            iid, lambda: self.driver.detach_volume(iid, volume_id), f"detach {volume_id}", 0.0
        )
        if why is None or why == NO_GUEST or req.force:
            LOG.info("%s: volume %s detached%s", iid, volume_id, f" (forced: {why})" if why else "")
            self.tell_volume(iid, volume_id, "detached")
        else:
            self.tell_volume(iid, volume_id, "detach_failed", why)

    def resize_volume(self, req: VolumeResize) -> VolumeResized:
        """Grow a plugged volume through the hypervisor (ModifyVolume of an attached volume)."""
        iid, volume_id = req.instance_id, req.volume_id
        resized: list[bool] = []
        why = self._on_guest(
            iid,
            lambda: resized.append(self.driver.resize_volume(iid, volume_id, req.size_gib * 1024**3)),
            f"resize {volume_id}",
            0.0,
        )
        if why == NO_GUEST:
            return VolumeResized(volume_id, False)
        if why is not None:
            return VolumeResized(volume_id, False, why)
        if resized and resized[0]:
            LOG.info("%s: volume %s grown to %d GiB", iid, volume_id, req.size_gib)
        return VolumeResized(volume_id, bool(resized and resized[0]))

    def guest_volumes(self, req: GuestVolumesRequest) -> GuestVolumes:
        """The volumes the guest has plugged in, as the hypervisor says."""
        try:
            info = self.driver.guest_info(req.instance_id)
        except GuestNotFound:
            return GuestVolumes(req.instance_id, False, [])
        return GuestVolumes(req.instance_id, True, list(info.volumes))

    # --- CreateImage ----------------------------------------------------------------

    def image_guest(self, req: ImageGuest) -> None:
        """CreateImage of a running instance: power the guest off (ACPI, then the plug
        after ``stop_timeout``), have its volumes copied, start it again; then report
        ``rebooted`` (the instance's task ends). A guest that is not running is left as
        it is (its snapshots are taken all the same) and reported as it is."""
        iid = req.instance_id
        with self.busy(iid):
            was_on = self.power_of(iid) in (PowerState.RUNNING, PowerState.PAUSED)
            if req.reboot and was_on:
                try:
                    self.driver.power_off(iid, timeout=self.settings.stop_timeout)
                except DriverError as exc:  # the snapshots are taken live then
                    LOG.warning("%s: could not power it off for CreateImage: %s", iid, exc)
            self.take_snapshots(iid, req.snapshot_ids)
            if not was_on:
                power = self.power_of(iid)
                self.tell(iid, "error", power or "nostate", reason="CreateImage: the guest was not running")
                return
            bindings = self.ports_up(iid)  # its taps went with the power
            try:
                self.driver.power_on(iid)
            except GuestNotFound:
                self.tell(iid, "missing", reason="CreateImage: no such guest")
                return
            except DriverError as exc:
                self._failed(iid, "start after CreateImage", exc)
                return
            if bindings and any(b.netns for b in bindings):
                self.ports_up(iid)
        LOG.info("%s: imaged (%s) and running again", iid, ", ".join(req.snapshot_ids))
        self.tell(iid, "rebooted", PowerState.RUNNING)

    def take_snapshots(self, instance_id: str, snapshot_ids: list[str]) -> None:
        """Have the volume service copy the snapshots now and wait for it; if it does not
        answer, leave them to it (persistent casts, copied when it gets them)."""
        if self.volumes is None or not snapshot_ids:
            return
        try:
            taken = self.volumes.snapshot_now(SnapshotNow(snapshot_ids=list(snapshot_ids)))
            LOG.info("%s: snapshots %s", instance_id, taken.states)
            return
        except Exception as exc:  # noqa: BLE001 - the casts below take over
            LOG.warning("%s: the volume service did not copy %s now: %s", instance_id, snapshot_ids, exc)
        for snapshot_id in snapshot_ids:
            try:
                self.volumes.create_snapshot(CreateSnapshot(snapshot_id))
            except Exception:  # the volume service re-drives pending snapshots when it starts
                LOG.exception("%s: could not ask for snapshot %s", instance_id, snapshot_id)

    def console_output(self, req: ConsoleRequest) -> ConsoleOutput:
        stamp = datetime.now(UTC).isoformat()
        try:
            data = self.driver.console_output(req.instance_id)
        except GuestNotFound:
            data = b""
        except DriverError as exc:
            LOG.warning("%s: cannot read its console: %s", req.instance_id, exc)
            data = b""
        return ConsoleOutput(req.instance_id, base64.b64encode(data).decode("ascii"), stamp)

    # --- what guests do by themselves ---------------------------------------------

    def on_guest_event(self, instance_id: str, event: GuestEvent) -> bool:
        """A driver lifecycle event; True if it is worth a look (not one of ours)."""
        return event is not GuestEvent.STARTED and not self.is_busy(instance_id)

    def check_guest(self, instance_id: str) -> None:
        """Report a guest that went off by itself (the event is only a hint)."""
        if self.is_busy(instance_id):
            return
        power = self.power_of(instance_id)
        if power is PowerState.SHUTDOWN:
            self.tell(instance_id, "shutdown", power)
        elif power is PowerState.CRASHED:
            self.tell(instance_id, "crashed", power)

    # --- heartbeat ---------------------------------------------------------------

    def host_report(self) -> HostReport:
        res = self.driver.host_resources()
        guests = self.driver.list_guests()
        return HostReport(
            host=self.settings.host,
            availability_zone=self.settings.availability_zone,
            hypervisor_type=res.hypervisor_type,
            hypervisor_version=res.hypervisor_version,
            architectures=list(res.architectures),
            vcpus=res.vcpus,
            memory_mib=res.memory_mib,
            disk_gib=res.disk_gib,
            guests=[GuestSummary(g.instance_id, g.power_state.value) for g in guests],
        )


class ComputeAgent:
    """The agent of one host: driver, bus server, event handling and heartbeats."""

    def __init__(self, bus: Bus, driver: Driver, settings: AgentSettings) -> None:
        self.bus = bus
        self.driver = driver
        self.settings = settings
        self.scheduler = SchedulerApi(bus)
        self.network = NetworkHostApi(bus) if settings.network else None
        self.endpoint = ComputeEndpoint(
            driver,
            self.scheduler,
            settings,
            network=self.network,
            volumes=VolumeApi(bus),
            on_doubt=self.report_soon,
        )
        self.server = RpcServer(
            bus, ComputeApi, self.endpoint, topic=f"compute.{settings.host}", workers=settings.workers
        )
        self._events: ThreadPoolExecutor | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, wait: float | None = 10.0) -> None:
        """Connect the hypervisor, report once, then serve and beat."""
        self._stopping.clear()
        self._events = ThreadPoolExecutor(1, thread_name_prefix=f"ocs-agent-events-{self.settings.host}")
        self.driver.init_host(self._on_event)
        self.report()
        self.server.start(wait=wait)
        self._thread = threading.Thread(
            target=self._beat, name=f"ocs-agent-heartbeat-{self.settings.host}", daemon=True
        )
        self._thread.start()
        if self.network is not None:
            threading.Thread(
                target=self._ports_of_running_guests,
                name=f"ocs-agent-ports-{self.settings.host}",
                daemon=True,
            ).start()
        LOG.info("compute agent %s serving on compute.%s", self.settings.host, self.settings.host)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop beating and serving (running handlers finish), then disconnect."""
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        self.server.stop(timeout)
        events, self._events = self._events, None
        if events is not None:
            events.shutdown(wait=True, cancel_futures=True)
        self.driver.close()

    def report(self) -> bool:
        """Cast one heartbeat now; False if it could not be made or sent."""
        try:
            self.scheduler.host_report(self.endpoint.host_report())
            return True
        except Exception as exc:  # noqa: BLE001 - the heartbeat must go on
            LOG.warning("%s: heartbeat failed: %s", self.settings.host, exc)
            return False

    def _ports_of_running_guests(self) -> None:
        """Plug the running guests in again (the data plane may have been rebuilt meanwhile)."""
        try:
            guests = self.driver.list_guests()
        except DriverError as exc:
            LOG.warning("%s: cannot list guests: %s", self.settings.host, exc)
            return
        for guest in guests:
            if self._stopping.is_set():
                return
            if guest.power_state is PowerState.RUNNING:
                self.endpoint.ports_up(guest.instance_id, plug=True)

    def report_soon(self) -> None:
        self._wake.set()

    def _beat(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.settings.heartbeat_interval)
            self._wake.clear()
            if not self._stopping.is_set():
                self.report()

    def _on_event(self, instance_id: str, event: GuestEvent) -> None:
        """The driver's callback: look at the guest later, on our own thread."""
        events = self._events
        if events is None or not self.endpoint.on_guest_event(instance_id, event):
            return
        try:
            events.submit(self.endpoint.check_guest, instance_id)
        except RuntimeError:  # shutting down
            pass
