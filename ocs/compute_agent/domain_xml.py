"""libvirt domain XML for OCS guests: a pure function of the guest and its settings.

:func:`domain_xml` turns a :class:`~ocs.compute_agent.driver.GuestSpec`, the
paths of the guest's files on the host (:class:`GuestFiles`) and the host's
choices (:class:`DomainSettings`) into the XML that ``virDomainDefineXML``
takes. Nothing here does I/O, so golden files pin the output
(``tests/unit/compute_agent/golden/``). :func:`parse_domain` reads back what
OCS needs from a domain's XML, and tells OCS's domains from foreign ones.

What a guest gets:

- name ``ocs-<instance id>``, a UUID derived from the instance id, and an
  ``<ocs:instance>`` metadata element (namespace :data:`METADATA_NS`) holding
  the instance id, image and disk size: a domain is OCS's only if it has both
  the name prefix and the element, so the agent never touches foreign domains;
- ``<features><acpi/><apic/></features>``: without ACPI, ``poweroff`` in the
  guest only halts it and libvirt's shutdown/reboot requests go unheard;
- memory and vCPUs from the spec; ``host-passthrough`` CPU under KVM;
- direct kernel boot (``<kernel>``, ``<initrd>``, ``<cmdline>``) when the spec
  names a kernel (EC2's AKI/ARI), else boot from the root disk;
- the root disk, virtio ``vda``: a qcow2 overlay, or, for an EBS-backed
  instance, its root volume (``GuestSpec.root_volume``, a disk like any volume's
  but without the volume alias: it is never hot-unplugged, and it is recorded as
  ``<ocs:root-volume>`` in the metadata);
- the config drive (NoCloud ISO9660, label ``cidata``): a read-only virtio disk
  (``vdz``; libvirt orders virtio disks by target, so it comes after the
  root disk and the volumes) or a cdrom (IDE, SATA on q35);
- volumes: virtio disks whose libvirt alias is ``ua-<volume id>`` and whose
  serial is the volume id without its dash (as EC2's Nitro shows it);
- one interface per NIC that has a bridge or a tap (NICs with neither are
  left out): on the bridge with a tap of the network service's name
  (``NicSpec.tap``, which its security-group rules key on; ``tap`` + 12 hex
  digits of the interface id for NICs the network service did not bind), or
  with a tap only (``type='ethernet'``) that the network service plugs into a
  bridge in its own namespace; the NIC's MAC, ``<mtu>``, virtio model;
- the serial console (ttyS0) appended to a log file, which survives reboots;
- ``on_poweroff``/``on_crash`` destroy (the guest stays defined, off),
  ``on_reboot`` restart, and a pvpanic device so a kernel panic is a crash.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from ocs.compute_agent.driver import GuestSpec, NicSpec, VolumeAttachment

NAME_PREFIX = "ocs-"
METADATA_NS = "urn:ocs:compute:instance:1"
_NS = {"ocs": METADATA_NS}
_UUID_NAMESPACE = uuid.UUID("0c5c0a5e-6d9b-5b4e-9a3c-6f2c1d0e7a11")
ROOT_TARGET = "vda"
CONFIG_DRIVE_TARGET = "vdz"
VOLUME_ALIAS_PREFIX = "ua-"

#: The kernel command line of direct kernel boots (``[libvirt] kernel_cmdline``).
#: ``console=ttyS0``: the kernel's messages go to the serial console, which is
#: what GetConsoleOutput shows. ``cryptomgr.notests``: the kernel skips the
#: self-tests of its crypto algorithms at boot, which under software emulation
#: were a tenth of the kernel's boot (0.1-0.3 s; benchmarks/libvirt_boot.py);
#: a kernel booted with ``fips=1`` runs them anyway.
DEFAULT_KERNEL_CMDLINE = "root=/dev/vda console=ttyS0 cryptomgr.notests"

#: Guest architecture (EC2's names) → libvirt's.
ARCHITECTURES = {"x86_64": "x86_64", "i386": "i686", "arm64": "aarch64", "aarch64": "aarch64"}

_DEVICE = re.compile(r"^/dev/(?:sd|xvd|vd|hd)([a-z]{1,2})$")


@dataclass(frozen=True)
class DomainSettings:
    """The host's choices for every guest (from the driver's settings).

    ``virt_type`` is libvirt's domain type (``kvm``, ``qemu``, ``test``);
    ``kernel_cmdline`` is used for direct kernel boots; ``machine`` ('' for
    libvirt's default, e.g. ``q35``); ``cpu_mode`` ('' for the hypervisor's
    default CPU, ``host-passthrough`` is what KVM hosts want);
    ``config_drive_device`` is ``disk`` (virtio) or ``cdrom`` (IDE);
    ``disk_cache`` is a libvirt cache mode or '' for the default;
    ``host`` is the compute host that owns the guest, written into the domain's
    metadata so that agents of several hosts can share one libvirtd ('' for none).
    """

    virt_type: str = "qemu"
    kernel_cmdline: str = DEFAULT_KERNEL_CMDLINE
    machine: str = ""
    cpu_mode: str = ""
    config_drive_device: str = "disk"
    disk_cache: str = ""
    host: str = ""

    def __post_init__(self) -> None:
        if self.config_drive_device not in ("disk", "cdrom"):
            raise ValueError(f"config_drive_device must be disk or cdrom, not {self.config_drive_device!r}")


@dataclass(frozen=True)
class GuestFiles:
    """Where a guest's files are on the host ('' for what it does not have)."""

    root_disk: str
    console_log: str
    config_drive: str = ""
    kernel: str = ""
    ramdisk: str = ""


@dataclass(frozen=True)
class DomainFacts:
    """What OCS reads back from one of its domains' XML."""

    instance_id: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    image_id: str = ""
    volumes: tuple[str, ...] = ()  # volume ids, in device order
    volume_targets: dict[str, str] = field(default_factory=dict)  # volume id → target dev
    targets: tuple[str, ...] = ()  # every disk's target dev
    interfaces: tuple[str, ...] = ()  # MACs, in device order
    console_log: str = ""
    host: str = ""  # the owning compute host ('' in domains made before hosts were recorded)
    root_volume: str = ""  # the EBS volume it boots from ('' for a root disk of its own)


# --- names -----------------------------------------------------------------------------


def domain_name(instance_id: str) -> str:
    return NAME_PREFIX + instance_id


def instance_id_of(name: str) -> str | None:
    """The instance id in an OCS domain name, None for any other name."""
    return name[len(NAME_PREFIX) :] if name.startswith(NAME_PREFIX) and len(name) > len(NAME_PREFIX) else None


def domain_uuid(instance_id: str) -> str:
    """A UUID that is a function of the instance id (stable across respawns)."""
    return str(uuid.uuid5(_UUID_NAMESPACE, instance_id))


def volume_target(device: str) -> str:
    """The virtio target of an EC2 device name: ``/dev/sdf`` → ``vdf``.

    ``/dev/sdX``, ``/dev/xvdX``, ``/dev/vdX`` and ``/dev/hdX`` are accepted;
    ``a`` (the root disk) and ``z`` (the config drive) are not. Raises ``ValueError``.
    """
    match = _DEVICE.match(device or "")
    if not match:
        raise ValueError(f"{device!r} is not a device name such as /dev/sdf")
    target = "vd" + match.group(1)
    if target in (ROOT_TARGET, CONFIG_DRIVE_TARGET):
        raise ValueError(f"device {device} is reserved")
    return target


def tap_name(nic: NicSpec) -> str:
    """The network service's tap name, else ``tap`` + 12 hex digits of the interface id
    ('' lets libvirt choose)."""
    if nic.tap:
        return nic.tap
    digits = re.sub(r"[^0-9a-f]", "", nic.interface_id.lower().removeprefix("eni-"))
    return f"tap{digits[:12]}" if digits else ""


# --- building ----------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _metadata(root: ET.Element, spec: GuestSpec, settings: DomainSettings) -> None:
    meta = _sub(root, "metadata")
    inst = _sub(meta, "ocs:instance", **{"xmlns:ocs": METADATA_NS})
    _sub(inst, "ocs:id", spec.instance_id)
    if settings.host:
        _sub(inst, "ocs:host", settings.host)
    _sub(inst, "ocs:image", spec.image.image_id)
    _sub(inst, "ocs:disk-gib", str(spec.disk_gib))
    if spec.root_volume is not None:
        _sub(inst, "ocs:root-volume", spec.root_volume.volume_id)
    if spec.hostname:
        _sub(inst, "ocs:hostname", spec.hostname)


def _os(root: ET.Element, spec: GuestSpec, files: GuestFiles, settings: DomainSettings) -> None:
    os_ = _sub(root, "os")
    attrs = {"arch": ARCHITECTURES.get(spec.architecture, spec.architecture)}
    if settings.machine:
        attrs["machine"] = settings.machine
    _sub(os_, "type", "hvm", **attrs)
    if files.kernel:
        _sub(os_, "kernel", files.kernel)
        if files.ramdisk:
            _sub(os_, "initrd", files.ramdisk)
        _sub(os_, "cmdline", settings.kernel_cmdline)
    else:
        _sub(os_, "boot", dev="hd")


def _disk(
    devices: ET.Element, path: str, target: str, fmt: str, settings: DomainSettings, *, bus: str = "virtio"
) -> ET.Element:
    disk = _sub(devices, "disk", type="file", device="disk" if bus == "virtio" else "cdrom")
    driver = {"name": "qemu", "type": fmt}
    if settings.disk_cache:
        driver["cache"] = settings.disk_cache
    _sub(disk, "driver", **driver)
    _sub(disk, "source", file=path)
    _sub(disk, "target", dev=target, bus=bus)
    return disk


def _volume(parent: ET.Element, volume: VolumeAttachment, target: str, *, alias: bool = True) -> ET.Element:
    """A volume's ``<disk>`` (``alias``: with the ``ua-<volume id>`` alias that hot-unplug
    names; a root volume has none); ``ValueError`` for a backend libvirt cannot reach."""
    options = volume.options
    if volume.backend == "file":
        kind = "block" if volume.target.startswith("/dev/") else "file"
        disk = _sub(parent, "disk", type=kind, device="disk")
        driver = {"name": "qemu", "type": options.get("format", "raw")}
        if kind == "block":
            driver["cache"] = "none"
        _sub(disk, "driver", **driver)
        _sub(disk, "source", **({"dev": volume.target} if kind == "block" else {"file": volume.target}))
    elif volume.backend == "rbd":
        disk = _sub(parent, "disk", type="network", device="disk")
        _sub(disk, "driver", name="qemu", type="raw", cache="writeback")
        source = _sub(disk, "source", protocol="rbd", name=volume.target)
        for monitor in filter(None, options.get("monitors", "").split(",")):
            host, _, port = monitor.strip().rpartition(":")
            _sub(source, "host", name=host or port, port=port if host else "6789")
        if options.get("auth_username"):
            auth = _sub(disk, "auth", username=options["auth_username"])
            _sub(auth, "secret", type="ceph", uuid=options.get("secret_uuid", ""))
    else:
        raise ValueError(f"volume backend {volume.backend!r} is not supported by libvirt guests")
    _sub(disk, "target", dev=target, bus="virtio")
    _sub(disk, "serial", volume.volume_id.replace("-", "")[:20])
    if volume.read_only:
        _sub(disk, "readonly")
    if alias:
        _sub(disk, "alias", name=VOLUME_ALIAS_PREFIX + volume.volume_id)
    return disk


def _interface(parent: ET.Element, nic: NicSpec) -> ET.Element:
    iface = _sub(parent, "interface", type="bridge" if nic.bridge else "ethernet")
    _sub(iface, "mac", address=nic.mac.lower())
    if nic.bridge:
        _sub(iface, "source", bridge=nic.bridge)
    tap = tap_name(nic)
    if tap:
        _sub(iface, "target", dev=tap)
    _sub(iface, "model", type="virtio")
    if nic.mtu:
        _sub(iface, "mtu", size=str(nic.mtu))
    return iface


def _devices(root: ET.Element, spec: GuestSpec, files: GuestFiles, settings: DomainSettings) -> None:
    devices = _sub(root, "devices")
    if spec.root_volume is not None:
        _volume(devices, spec.root_volume, ROOT_TARGET, alias=False)
    else:
        _disk(devices, files.root_disk, ROOT_TARGET, "qcow2", settings)
    if files.config_drive:
        if settings.config_drive_device == "cdrom":  # q35 has no IDE: its cdroms are SATA
            bus, target = ("sata", "sdc") if "q35" in settings.machine else ("ide", "hdc")
        else:
            bus, target = "virtio", CONFIG_DRIVE_TARGET
        drive = _disk(devices, files.config_drive, target, "raw", settings, bus=bus)
        _sub(drive, "readonly")
    for volume in spec.volumes:
        _volume(devices, volume, volume_target(volume.device))
    for nic in sorted(spec.nics, key=lambda n: n.device_index):
        if nic.bridge or nic.tap:
            _interface(devices, nic)
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=files.console_log, append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="file")
    _sub(console, "source", path=files.console_log, append="on")
    _sub(console, "target", type="serial", port="0")
    _sub(devices, "controller", type="usb", model="none")
    _sub(devices, "memballoon", model="none")
    _sub(devices, "panic", model="isa")


def _to_text(element: ET.Element) -> str:
    ET.indent(element, "  ")
    return ET.tostring(element, encoding="unicode") + "\n"


def domain_xml(spec: GuestSpec, files: GuestFiles, settings: DomainSettings) -> str:
    """The domain XML of ``spec`` (see the module docstring for what is in it).

    Raises ``ValueError`` for a volume whose device name or backend cannot be used.
    """
    root = ET.Element("domain", type=settings.virt_type)
    _sub(root, "name", domain_name(spec.instance_id))
    _sub(root, "uuid", domain_uuid(spec.instance_id))
    _sub(root, "title", f"OCS instance {spec.instance_id}")
    _metadata(root, spec, settings)
    _sub(root, "memory", str(spec.memory_mib), unit="MiB")
    _sub(root, "vcpu", str(spec.vcpus))
    _os(root, spec, files, settings)
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if settings.cpu_mode:
        _sub(root, "cpu", mode=settings.cpu_mode)
    _sub(root, "clock", offset="utc")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")
    _devices(root, spec, files, settings)
    return _to_text(root)


def volume_xml(volume: VolumeAttachment, target: str, *, alias: bool = True) -> str:
    """The ``<disk>`` of a volume, for attach and detach (``ValueError`` for a bad backend)."""
    holder = ET.Element("holder")
    return _to_text(_volume(holder, volume, target, alias=alias))


def interface_xml(nic: NicSpec) -> str:
    """The ``<interface>`` of a NIC, for attach and detach."""
    holder = ET.Element("holder")
    return _to_text(_interface(holder, nic))


# --- reading back ---------------------------------------------------------------------------

_MEMORY_UNITS = {
    "b": 1,
    "bytes": 1,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
}
_MEMORY_UNITS |= {"kb": 1000, "mb": 1000**2, "gb": 1000**3}


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        return default


def _memory_mib(root: ET.Element) -> int:
    memory = root.find("memory")
    if memory is None:
        return 0
    unit = _MEMORY_UNITS.get((memory.get("unit") or "KiB").lower(), 1024)
    return _int(memory.text) * unit // 1024**2


def _disks(root: ET.Element) -> tuple[tuple[str, ...], dict[str, str]]:
    """Every disk's target, and volume id → target for OCS volumes."""
    targets: list[str] = []
    volumes: dict[str, str] = {}
    for disk in root.iterfind("devices/disk"):
        target = disk.find("target")
        dev = target.get("dev", "") if target is not None else ""
        targets.append(dev)
        alias = disk.find("alias")
        name = alias.get("name", "") if alias is not None else ""
        if name.startswith(VOLUME_ALIAS_PREFIX + "vol-"):
            volumes[name[len(VOLUME_ALIAS_PREFIX) :]] = dev
    return tuple(targets), volumes


def interface_of(xml: str, mac: str) -> str | None:
    """The ``<interface>`` with this MAC in a domain's XML (what a detach names), or None."""
    for iface in ET.fromstring(xml).iterfind("devices/interface"):
        address = iface.find("mac")
        if address is not None and address.get("address", "").lower() == mac.lower():
            return _to_text(iface)
    return None


def parse_domain(xml: str) -> DomainFacts | None:
    """What OCS knows of a domain from its XML; None if it is not an OCS domain."""
    root = ET.fromstring(xml)
    name = root.findtext("name") or ""
    instance_id = instance_id_of(name)
    meta = root.find("metadata/ocs:instance", _NS)
    if instance_id is None or meta is None or meta.findtext("ocs:id", "", _NS) != instance_id:
        return None
    targets, volumes = _disks(root)
    macs = tuple(
        mac.get("address", "").lower() for mac in root.iterfind("devices/interface/mac") if mac.get("address")
    )
    console = root.find("devices/serial/source")
    return DomainFacts(
        instance_id=instance_id,
        vcpus=_int(root.findtext("vcpu")),
        memory_mib=_memory_mib(root),
        disk_gib=_int(meta.findtext("ocs:disk-gib", "0", _NS)),
        image_id=meta.findtext("ocs:image", "", _NS),
        volumes=tuple(volumes),
        volume_targets=volumes,
        targets=targets,
        interfaces=macs,
        console_log=console.get("path", "") if console is not None else "",
        host=meta.findtext("ocs:host", "", _NS),
        root_volume=meta.findtext("ocs:root-volume", "", _NS),
    )
