"""The ``libvirt`` hypervisor driver: real QEMU/KVM guests behind the driver contract.

Each guest is a persistent libvirt domain named ``ocs-<instance id>`` carrying
an ``<ocs:instance>`` metadata element (see :mod:`ocs.compute_agent.domain_xml`);
domains without both are foreign and never listed or touched. Its files live
in ``<instances_path>/<instance id>/``: ``disk`` (a qcow2 overlay on the
cached image, sized to the instance's disk), ``config.iso`` (the NoCloud config
drive) and ``console.log`` (the serial console, appended across boots).
Kernels and ramdisks (EC2's AKI/ARI) are booted directly from the image cache.
An EBS-backed guest (``GuestSpec.root_volume``) has no ``disk``: its root disk is
its root volume's export, reached as AttachVolume reaches a volume (a file of the
``file`` backend, an RBD image), so its bytes outlive the guest.

Power: ``power_off`` presses the ACPI power button and waits up to ``timeout``
seconds, then destroys; ``force`` destroys at once. A soft reboot presses the
button in libvirt's reboot mode (the guest shuts down, libvirt resets it) and
waits for the reset (libvirt's REBOOT event); a guest that does not react in
``timeout`` seconds, and any hard reboot, is destroyed and started again.
Lifecycle events reach the ``on_event`` handler from libvirt's event thread.

Spawning: images are fetched into the per-host cache (checksum verified),
then the overlay and the config drive are made, then the domain is defined
and started. What a failed or cancelled spawn made is removed, and the spawn
raises :class:`SpawnFailed`. While it runs, the guest is listed as ``NOSTATE``
and counts against the host's capacity.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import libvirt

from ocs.compute_agent import configdrive, domain_xml
from ocs.compute_agent.domain_xml import DomainFacts, DomainSettings, GuestFiles
from ocs.compute_agent.driver import (
    CONSOLE_MAX_BYTES,
    Driver,
    DriverError,
    EventHandler,
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
from ocs.compute_agent.image_cache import ImageCache, ImageUnavailable
from ocs.compute_agent.libvirt import ceph_secrets
from ocs.compute_agent.libvirt.connection import Connection, guest_event, power_state
from ocs.compute_agent.libvirt.host import (
    HostCapabilities,
    choose_virt_type,
    is_local_uri,
    parse_capabilities,
)

LOG = logging.getLogger(__name__)

GIB = 1024**3
_ON = (PowerState.RUNNING, PowerState.PAUSED)
_INSTANCE_DIR = re.compile(r"^i-[0-9a-f]{8,17}$")
_POLL = 0.05
AFFECT_CONFIG = libvirt.VIR_DOMAIN_AFFECT_CONFIG
_DETACH_RETRY = 2.0  # seconds between repeated hot-unplug requests
DISK_FILE, CONFIG_DRIVE_FILE, CONSOLE_FILE = "disk", "config.iso", "console.log"


class _Cancelled(Exception):
    """The guest was destroyed while it was being spawned."""


@dataclass
class _Spawn:
    spec: GuestSpec
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def info(self) -> GuestInfo:
        s = self.spec
        root = s.root_volume.volume_id if s.root_volume else ""
        return GuestInfo(
            s.instance_id, PowerState.NOSTATE, s.vcpus, s.memory_mib, s.disk_gib, root_volume=root
        )


class LibvirtDriver(Driver):
    """Guests of the libvirt host at ``uri``; see the module docstring.

    Settings (constructor keywords, passed by the agent from ``[libvirt]``):
    ``hostname`` (default: this machine's), ``uri``, ``instances_path``,
    ``image_cache_path``, ``image_store_path`` (the image store directory, for
    store keys), ``virt_type`` (``auto`` probes KVM, or ``kvm``/``qemu``),
    ``kernel_cmdline`` for direct kernel boots, ``machine``, ``cpu_mode``
    ('' means host-passthrough under KVM), ``force_config_drive`` (every guest
    gets a config drive, not only those that ask), ``config_drive_device``
    (``disk`` or ``cdrom``), ``qemu_img``, ``detach_timeout`` (seconds a
    guest may take to release a hot-unplugged device) and ``rbd_keyring`` (the
    keyring with the cephx keys of Ceph RBD volumes' users, '' for Ceph's
    defaults; see :mod:`.ceph_secrets`).
    """

    def __init__(
        self,
        hostname: str | None = None,
        *,
        uri: str = "qemu:///system",
        instances_path: str = "/var/lib/ocs/instances",
        image_cache_path: str = "/var/lib/ocs/image-cache",
        image_store_path: str | None = None,
        virt_type: str = "auto",
        kernel_cmdline: str = domain_xml.DEFAULT_KERNEL_CMDLINE,
        machine: str = "",
        cpu_mode: str = "",
        force_config_drive: bool = True,
        config_drive_device: str = "disk",
        qemu_img: str = "qemu-img",
        detach_timeout: float = 30.0,
        rbd_keyring: str = "",
    ) -> None:
        self.hostname = hostname or socket.gethostname()
        self.uri = uri
        self.instances_path = Path(instances_path).expanduser()
        self.images = ImageCache(image_cache_path, image_store_path, qemu_img=qemu_img)
        self.requested_virt_type = virt_type
        self.force_config_drive = force_config_drive
        self.detach_timeout = detach_timeout
        self.rbd_keyring = rbd_keyring
        self.virt_type = ""  # chosen by init_host
        self._settings = DomainSettings(
            kernel_cmdline=kernel_cmdline,
            machine=machine,
            cpu_mode=cpu_mode,
            config_drive_device=config_drive_device,
            host=self.hostname,
        )
        self._caps = HostCapabilities(arch="")
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._on_event: EventHandler | None = None
        self._spawning: dict[str, _Spawn] = {}
        self._reboots: dict[str, threading.Event] = {}
        self._synchronous_reboot = False

    def __repr__(self) -> str:
        return f"LibvirtDriver({self.hostname!r}, uri={self.uri!r})"

    # --- connection ------------------------------------------------------------------------------

    def init_host(self, on_event: EventHandler | None = None) -> None:
        conn = Connection(self.uri, self._lifecycle_event, self._reboot_event)
        conn.open()
        try:
            virconn = conn.get()
            self._caps = parse_capabilities(virconn.getCapabilities())
            if not self.virt_type:
                self.virt_type, why = choose_virt_type(
                    self.requested_virt_type, self._caps, local=is_local_uri(self.uri)
                )
                LOG.info("libvirt at %s: guests run with domain type %s (%s)", self.uri, self.virt_type, why)
            self._synchronous_reboot = virconn.getType().upper() == "TEST"
            self.instances_path.mkdir(parents=True, exist_ok=True)
            if self.uri.startswith("qemu:///system"):
                for path in (self.instances_path, self.images.cache_dir):
                    _warn_if_hidden(path)
        except (libvirt.libvirtError, ValueError, OSError) as exc:
            conn.close()
            raise DriverError(f"libvirt host {self.uri} is unusable: {exc}") from exc
        cpu_mode = self._settings.cpu_mode or ("host-passthrough" if self.virt_type == "kvm" else "")
        self._settings = replace(self._settings, virt_type=self.virt_type, cpu_mode=cpu_mode)
        with self._lock:
            old, self._conn, self._on_event = self._conn, conn, on_event
        if old is not None:
            old.close()
        self._remove_orphans()

    def close(self) -> None:
        with self._lock:
            conn, self._conn, self._on_event = self._conn, None, None
        if conn is not None:
            conn.close()

    # --- inventory ----------------------------------------------------------------------------------

    def host_resources(self) -> HostResources:
        virconn = self._virconn()
        with self._errors():
            info, version = virconn.getInfo(), virconn.getVersion()
        guests = self.list_guests()
        try:
            fs = os.statvfs(self.instances_path)
            disk_gib = fs.f_blocks * fs.f_frsize // GIB
        except OSError as exc:
            raise DriverError(f"cannot read the size of {self.instances_path}: {exc}") from exc
        return HostResources(
            hostname=self.hostname,
            hypervisor_type=self.virt_type,
            hypervisor_version=f"{version // 1_000_000}.{version // 1000 % 1000}.{version % 1000}",
            architectures=self._caps.architectures(),
            vcpus=int(info[2]),
            memory_mib=int(info[1]),
            disk_gib=disk_gib,
            vcpus_used=sum(g.vcpus for g in guests),
            memory_mib_used=sum(g.memory_mib for g in guests),
            disk_gib_used=sum(g.disk_gib for g in guests),
            guests=len(guests),
        )

    def list_guests(self) -> list[GuestInfo]:
        with self._lock:  # before the domains: a spawn that ends meanwhile has its domain listed
            spawning = {iid: job.info() for iid, job in self._spawning.items()}
        with self._errors():
            domains = self._virconn().listAllDomains(0)
        found: dict[str, GuestInfo] = {}
        for dom in domains:
            if domain_xml.instance_id_of(dom.name()) is None:
                continue
            try:
                facts = domain_xml.parse_domain(dom.XMLDesc(0))
                if facts is not None and self._ours(facts):
                    found[facts.instance_id] = self._info(dom, facts)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise DriverError(f"libvirt: cannot read domain {dom.name()}: {exc}") from exc
        found.update(spawning)
        return [found[iid] for iid in sorted(found)]

    def guest_info(self, instance_id: str) -> GuestInfo:
        with self._lock:
            job = self._spawning.get(instance_id)
        if job is not None:
            return job.info()
        dom, facts = self._domain(instance_id)
        with self._errors(instance_id):
            return self._info(dom, facts)

    # --- life and death -------------------------------------------------------------------------------

    def spawn(self, spec: GuestSpec) -> GuestInfo:
        iid = spec.instance_id
        self._check_spec(spec)
        with self._lock:
            exists = iid in self._spawning or self._lookup(iid) is not None
            if exists:
                raise GuestExists(iid)
            job = self._spawning[iid] = _Spawn(spec)
        try:
            return self._build(job)
        finally:
            with self._lock:
                self._spawning.pop(iid, None)
            job.done.set()

    def _check_spec(self, spec: GuestSpec) -> None:
        """Refuse a spec this host can never run (before anything is made)."""
        iid = spec.instance_id
        virconn = self._virconn()  # DriverError when closed
        if min(spec.vcpus, spec.memory_mib) <= 0 or (spec.disk_gib <= 0 and spec.root_volume is None):
            raise SpawnFailed(iid, "vCPUs, memory and disk must be positive")
        try:
            spec.user_data_bytes()
            for volume in spec.volumes:
                domain_xml.volume_xml(volume, domain_xml.volume_target(volume.device))
            if spec.root_volume is not None:
                domain_xml.volume_xml(spec.root_volume, domain_xml.ROOT_TARGET, alias=False)
        except ValueError as exc:
            raise SpawnFailed(iid, str(exc)) from None
        if spec.architecture not in self._caps.architectures():
            raise SpawnFailed(
                iid, f"architecture {spec.architecture} is not supported on this host", retryable=True
            )
        with self._errors():
            info = virconn.getInfo()
        lacking = [
            f"needs {want} {unit}, the host has {have}"
            for want, have, unit in (
                (spec.vcpus, info[2], "vCPUs"),
                (spec.memory_mib, info[1], "MiB of memory"),
            )
            if want > have
        ]
        if lacking:
            raise SpawnFailed(iid, "insufficient capacity on host: " + "; ".join(lacking), retryable=True)

    def _build(self, job: _Spawn) -> GuestInfo:
        spec = job.spec
        iid = spec.instance_id
        try:
            files = self._make_files(job)
            self._checkpoint(job)
            xml = domain_xml.domain_xml(spec, files, self._settings)
            self._ceph_secrets(spec.volumes + ((spec.root_volume,) if spec.root_volume else ()))
            with self._errors(action="define the domain"):
                dom = self._virconn().defineXML(xml)
            self._checkpoint(job)
            with self._errors(action="start the domain"):
                dom.create()
            with self._lock:
                if job.cancelled:
                    raise _Cancelled
                self._spawning.pop(iid, None)  # from now on it is an ordinary guest
            facts = domain_xml.parse_domain(xml)
            assert facts is not None
            with self._errors(iid):
                return self._info(dom, facts)
        except BaseException as exc:
            self._undo_spawn(iid)
            if not isinstance(exc, Exception):
                raise
            raise self._spawn_failure(iid, exc) from exc

    def _make_files(self, job: _Spawn) -> GuestFiles:
        spec = job.spec
        home = self._home(spec.instance_id)
        if home.exists():
            shutil.rmtree(home)  # a leftover without a domain (see _remove_orphans)
        home.mkdir(parents=True, mode=0o755)
        local_root = spec.root_volume is None  # an EBS-backed guest boots from its root volume
        base = self.images.fetch(spec.image) if local_root and spec.image.location else None
        kernel = self.images.fetch(spec.kernel).path if spec.kernel else None
        ramdisk = self.images.fetch(spec.ramdisk).path if spec.kernel and spec.ramdisk else None
        self._checkpoint(job)
        disk = self.images.create_overlay(base, home / DISK_FILE, spec.disk_gib) if local_root else ""
        drive = ""
        if spec.config_drive or self.force_config_drive:
            drive = str(configdrive.write_config_drive(spec, home / CONFIG_DRIVE_FILE))
        console = home / CONSOLE_FILE
        console.touch()
        return GuestFiles(
            root_disk=str(disk),
            console_log=str(console),
            config_drive=drive,
            kernel=str(kernel or ""),
            ramdisk=str(ramdisk or ""),
        )

    def _checkpoint(self, job: _Spawn) -> None:
        with self._lock:
            if job.cancelled:
                raise _Cancelled

    def _spawn_failure(self, iid: str, exc: BaseException) -> SpawnFailed:
        if isinstance(exc, SpawnFailed):
            return exc
        if isinstance(exc, _Cancelled):
            return SpawnFailed(iid, "the instance was deleted while it was being spawned")
        if isinstance(exc, ImageUnavailable):
            return SpawnFailed(iid, f"image {exc.image_id}: {exc.reason}", retryable=exc.retryable)
        if isinstance(exc, ValueError):
            return SpawnFailed(iid, str(exc))
        LOG.error("spawning %s failed: %s", iid, exc, exc_info=not isinstance(exc, DriverError))
        return SpawnFailed(iid, "the hypervisor could not start the instance", retryable=True)

    def _undo_spawn(self, iid: str) -> None:
        try:
            self._remove(iid)
        except Exception:
            LOG.exception("cleaning up after the failed spawn of %s failed", iid)

    def destroy(self, instance_id: str) -> None:
        with self._lock:
            job = self._spawning.get(instance_id)
            if job is not None:
                job.cancelled = True
        if job is not None:
            job.done.wait(600.0)  # the spawn removes what it made
        self._remove(instance_id)

    def _remove(self, iid: str) -> None:
        """Remove the domain (if it is ours) and the instance's files. Idempotent."""
        dom = self._lookup(iid)
        if dom is not None:
            with self._errors(action=f"remove {iid}"):
                if dom.isActive():
                    self._destroy_domain(dom)
                self._undefine(dom)
        home = self._home(iid)
        try:
            shutil.rmtree(home)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise DriverError(f"cannot remove {home}: {exc}") from exc

    @staticmethod
    def _destroy_domain(dom: Any) -> None:
        try:
            dom.destroy()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:  # it was not running any more
                raise

    @staticmethod
    def _undefine(dom: Any) -> None:
        flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        try:
            dom.undefineFlags(flags | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        except libvirt.libvirtError as exc:
            code = exc.get_error_code()
            if code == libvirt.VIR_ERR_NO_DOMAIN:
                return
            if code not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT):
                raise
            dom.undefineFlags(0)  # a hypervisor without NVRAM or snapshots

    def _remove_orphans(self) -> None:
        """Remove instance directories that no domain or spawn owns (a spawn that crashed)."""
        try:
            entries = [e for e in self.instances_path.iterdir() if e.is_dir() and _INSTANCE_DIR.match(e.name)]
        except OSError:
            return
        for entry in entries:
            with self._lock:
                if entry.name in self._spawning:
                    continue
            try:
                if self._lookup(entry.name) is None:
                    LOG.warning("removing %s: no guest owns it", entry)
                    shutil.rmtree(entry, ignore_errors=True)
            except DriverError:
                LOG.warning("cannot check whether %s is orphaned", entry, exc_info=True)

    # --- power ----------------------------------------------------------------------------------------

    def power_off(self, instance_id: str, *, force: bool = False, timeout: float = 60.0) -> None:
        if timeout < 0:
            raise ValueError("timeout must not be negative")
        dom, _ = self._domain(instance_id, "power off")
        with self._errors(instance_id, "power off"):
            state = self._state(dom)
            if state not in _ON:
                return
            if not force and state is PowerState.RUNNING:
                try:
                    _acpi(dom.shutdownFlags, libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                        raise
                if self._wait(dom, lambda s: s not in _ON, timeout):
                    return
                LOG.info("%s did not shut down within %.0f s; destroying it", instance_id, timeout)
            self._destroy_domain(dom)

    def power_on(self, instance_id: str) -> None:
        dom, _ = self._domain(instance_id, "power on")
        with self._errors(instance_id, "power on"):
            state = self._state(dom)
            if state is PowerState.PAUSED:
                dom.resume()
            elif state is not PowerState.RUNNING:
                self._start(dom)

    @staticmethod
    def _start(dom: Any) -> None:
        try:
            dom.create()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID or not dom.isActive():
                raise  # OPERATION_INVALID "already running" means another call started it

    def reboot(self, instance_id: str, *, hard: bool = False, timeout: float = 60.0) -> None:
        if timeout < 0:
            raise ValueError("timeout must not be negative")
        dom, _ = self._domain(instance_id, "reboot")
        with self._errors(instance_id, "reboot"):
            if not hard:
                state = self._state(dom)
                if state is not PowerState.RUNNING:
                    raise InvalidGuestState(instance_id, state, "soft-reboot")
                if self._soft_reboot(instance_id, dom, timeout):
                    return
                LOG.info("%s did not reboot within %.0f s; resetting it", instance_id, timeout)
            if dom.isActive():
                self._destroy_domain(dom)
            self._start(dom)

    def _soft_reboot(self, iid: str, dom: Any, timeout: float) -> bool:
        """Ask the guest to reboot (ACPI); whether it did within ``timeout``."""
        rebooted = threading.Event()
        with self._lock:
            self._reboots[iid] = rebooted
        try:
            _acpi(dom.reboot, libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN)
            if self._synchronous_reboot:
                return True
            deadline = time.monotonic() + timeout
            while not rebooted.wait(min(0.5, max(deadline - time.monotonic(), 0))):
                if time.monotonic() >= deadline:
                    return False
                if self._state(dom) not in _ON:
                    return False  # it powered off instead (or crashed)
            return True
        finally:
            with self._lock:
                self._reboots.pop(iid, None)

    # --- console and devices ----------------------------------------------------------------------------

    def console_output(self, instance_id: str) -> bytes:
        with self._lock:
            spawning = instance_id in self._spawning
        if spawning:
            return b""
        _, facts = self._domain(instance_id)
        return _tail(facts.console_log or str(self._home(instance_id) / CONSOLE_FILE), CONSOLE_MAX_BYTES)

    def attach_volume(self, instance_id: str, volume: VolumeAttachment) -> None:
        dom, facts = self._domain(instance_id, "attach a volume to")
        try:
            target = domain_xml.volume_target(volume.device)
            xml = domain_xml.volume_xml(volume, target)
        except ValueError as exc:
            raise DriverError(str(exc)) from None
        current = facts.volume_targets.get(volume.volume_id)
        if current == target:
            return
        if current is not None:
            raise DriverError(f"{volume.volume_id} is already attached to {instance_id} as {current}")
        if target in facts.targets:
            raise DriverError(f"device {volume.device} of {instance_id} is in use")
        self._ceph_secrets((volume,))
        with self._errors(instance_id, f"attach {volume.volume_id}"):
            dom.attachDeviceFlags(xml, self._device_flags(dom))

    def detach_volume(self, instance_id: str, volume_id: str) -> None:
        dom, facts = self._domain(instance_id, "detach a volume from")
        if volume_id not in facts.volume_targets:
            return
        alias = domain_xml.VOLUME_ALIAS_PREFIX + volume_id

        def detach(flags: int) -> None:
            dom.detachDeviceAlias(alias, flags)

        self._detach(instance_id, dom, detach, lambda f: volume_id not in f.volume_targets, volume_id)

    def resize_volume(self, instance_id: str, volume_id: str, size_bytes: int) -> bool:
        dom, facts = self._domain(instance_id, "resize a volume of")
        target = facts.volume_targets.get(volume_id)
        if target is None and volume_id and facts.root_volume == volume_id:
            target = domain_xml.ROOT_TARGET  # an EBS root grows like any volume
        if target is None:
            return False
        with self._errors(instance_id, f"resize {volume_id}"):
            if not dom.isActive():
                return False
            # QEMU grows the image it holds open (a file through its block layer, an RBD
            # image through librbd) and the virtio disk reports its new capacity.
            dom.blockResize(target, size_bytes, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
        return True

    def attach_interface(self, instance_id: str, nic: NicSpec) -> None:
        dom, facts = self._domain(instance_id, "attach an interface to")
        if nic.mac.lower() in facts.interfaces:
            return
        if not nic.bridge and not nic.tap:
            raise DriverError(f"interface {nic.mac} of {instance_id} has no bridge or tap to plug into")
        with self._errors(instance_id, f"attach interface {nic.mac}"):
            dom.attachDeviceFlags(domain_xml.interface_xml(nic), self._device_flags(dom))

    def detach_interface(self, instance_id: str, mac: str) -> None:
        dom, facts = self._domain(instance_id, "detach an interface from")
        mac = mac.lower()
        if mac not in facts.interfaces:
            return

        def detach(flags: int) -> None:
            source = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if flags & AFFECT_CONFIG else 0)
            element = domain_xml.interface_of(source, mac)
            if element is not None:  # else it is gone from that definition already
                dom.detachDeviceFlags(element, flags)

        self._detach(instance_id, dom, detach, lambda f: mac not in f.interfaces, f"interface {mac}")

    def _detach(
        self,
        iid: str,
        dom: Any,
        detach: Callable[[int], None],
        gone: Callable[[DomainFacts], bool],
        what: str,
    ) -> None:
        """Detach a device and wait until the guest let it go.

        Hot-unplug is a request to the guest (ACPI): a guest still booting may
        miss it, so the live request is repeated every couple of seconds until
        the device is gone or ``detach_timeout`` has passed (as nova does).
        """
        with self._errors(iid, f"detach {what}"):
            detach(self._device_flags(dom))
        deadline = time.monotonic() + self.detach_timeout
        retry_at = time.monotonic() + _DETACH_RETRY
        while True:
            with self._errors(iid, f"detach {what}"):
                facts = domain_xml.parse_domain(dom.XMLDesc(0))
                if facts is None or gone(facts):
                    return
                now = time.monotonic()
                if now > deadline:
                    raise DriverError(f"{iid} did not release {what} within {self.detach_timeout:.0f} s")
                if now >= retry_at and dom.isActive():
                    retry_at = now + _DETACH_RETRY
                    try:
                        detach(libvirt.VIR_DOMAIN_AFFECT_LIVE)
                    except libvirt.libvirtError as exc:
                        LOG.debug("repeating the detach of %s from %s: %s", what, iid, exc)
            time.sleep(_POLL * 4)

    def _ceph_secrets(self, volumes: tuple[VolumeAttachment, ...]) -> None:
        """Define the libvirt secrets that the Ceph RBD volumes authenticate with
        (DriverError if this host has no key for their user)."""
        for volume in volumes:
            user, uuid = volume.options.get("auth_username", ""), volume.options.get("secret_uuid", "")
            if volume.backend != "rbd" or not user or not uuid:
                continue
            try:
                key = ceph_secrets.find_key(user, self.rbd_keyring)
            except ceph_secrets.KeyMissing as exc:
                raise DriverError(f"cannot attach {volume.volume_id}: {exc}") from None
            with self._errors(action=f"define the Ceph secret of {volume.volume_id}"):
                ceph_secrets.ensure_secret(self._virconn(), uuid, user, key)

    @staticmethod
    def _device_flags(dom: Any) -> int:
        flags = int(libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        return flags | libvirt.VIR_DOMAIN_AFFECT_LIVE if dom.isActive() else flags

    # --- events -------------------------------------------------------------------------------------------

    def _lifecycle_event(self, name: str, event: int, detail: int) -> None:
        iid = domain_xml.instance_id_of(name)
        mapped = guest_event(event, detail)
        handler = self._on_event
        if iid is None or mapped is None or handler is None:
            return
        try:
            handler(iid, mapped)
        except Exception:
            LOG.exception("event handler failed on %s %s", mapped.value, iid)

    def _reboot_event(self, name: str) -> None:
        iid = domain_xml.instance_id_of(name)
        with self._lock:
            waiter = self._reboots.get(iid or "")
        if waiter is not None:
            waiter.set()

    # --- helpers ------------------------------------------------------------------------------------------

    def _home(self, iid: str) -> Path:
        if not iid or "/" in iid or iid.startswith("."):
            raise DriverError(f"not an instance id: {iid!r}")
        return self.instances_path / iid

    def _virconn(self) -> Any:
        conn = self._conn  # read without the lock: spawn looks domains up while holding it
        if conn is None:
            raise DriverError(f"libvirt driver for {self.uri} is not connected (call init_host)")
        return conn.get()

    @contextmanager
    def _errors(self, instance_id: str | None = None, action: str = "") -> Iterator[None]:
        """libvirt's errors as driver errors (``GuestNotFound`` for a vanished domain)."""
        try:
            yield
        except libvirt.libvirtError as exc:
            if instance_id and exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise GuestNotFound(instance_id) from exc
            what = f"cannot {action}" if action else "call failed"
            raise DriverError(f"libvirt {self.uri}: {what}: {exc}") from exc

    def _ours(self, facts: DomainFacts | None) -> bool:
        """Whether a domain is an OCS guest of this host (domains from before hosts
        were recorded in the metadata count as this host's)."""
        return facts is not None and facts.host in ("", self.hostname)

    def _lookup(self, iid: str) -> Any | None:
        """The domain of ``iid`` (None if there is none, or it is not this host's OCS guest)."""
        with self._errors():
            try:
                dom = self._virconn().lookupByName(domain_xml.domain_name(iid))
                return dom if self._ours(domain_xml.parse_domain(dom.XMLDesc(0))) else None
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return None
                raise

    def _domain(self, iid: str, action: str = "") -> tuple[Any, DomainFacts]:
        """The spawned guest ``iid``: GuestNotFound, or InvalidGuestState while it spawns."""
        with self._lock:
            if action and iid in self._spawning:
                raise InvalidGuestState(iid, PowerState.NOSTATE, action)
        with self._errors(iid):
            dom = self._virconn().lookupByName(domain_xml.domain_name(iid))
            facts = domain_xml.parse_domain(dom.XMLDesc(0))
        if facts is None or not self._ours(facts):
            raise GuestNotFound(iid)
        return dom, facts

    @staticmethod
    def _state(dom: Any) -> PowerState:
        state, reason = dom.state()
        return power_state(state, reason)

    def _wait(self, dom: Any, done: Callable[[PowerState], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done(self._state(dom)):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL)
        return True

    def _info(self, dom: Any, facts: DomainFacts) -> GuestInfo:
        try:
            console = min(os.path.getsize(facts.console_log), CONSOLE_MAX_BYTES) if facts.console_log else 0
        except OSError:
            console = 0
        return GuestInfo(
            instance_id=facts.instance_id,
            power_state=self._state(dom),
            vcpus=facts.vcpus,
            memory_mib=facts.memory_mib,
            disk_gib=facts.disk_gib,
            volumes=facts.volumes,
            interfaces=facts.interfaces,
            console_bytes=console,
            root_volume=facts.root_volume,
        )


def _warn_if_hidden(path: Path) -> None:
    """Warn if QEMU, running as libvirt's own user (qemu:///system), cannot reach ``path``."""
    for parent in (path, *path.parents):
        try:
            mode = parent.stat().st_mode
        except OSError:
            continue
        if not mode & 0o001:
            LOG.warning(
                "%s is under %s, which other users cannot enter: QEMU (run by libvirtd as its own "
                "user) will not open guest files there; choose a directory such as /var/lib/ocs",
                path,
                parent,
            )
            return


def _acpi(call: Callable[[int], Any], flag: int) -> None:
    """``call(flag)``: a shutdown or reboot by ACPI power button; a hypervisor that
    has no such mode (libvirt's test driver) gets its default (0)."""
    try:
        call(flag)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT):
            raise
        call(0)


def _tail(path: str, limit: int) -> bytes:
    """The last ``limit`` bytes of a file (b"" if it is missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - limit, 0))
            return f.read(limit)
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise DriverError(f"cannot read the console log {path}: {exc}") from exc
