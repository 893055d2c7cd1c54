"""What a libvirt host can run: its capabilities, and whether KVM really works.

``/dev/kvm`` existing, and libvirt offering domain type ``kvm``, do not prove
that KVM boots a guest: on some machines (nested or paravirtual KVM) the device
is there and a normal guest kernel hangs at its first steps. So the choice of
domain type (:func:`choose_virt_type`) rests on a probe: QEMU boots a 512-byte
guest (:data:`PROBE_BOOT_SECTOR`) that goes from real mode through protected
mode into 64-bit long mode, printing ``R``, ``P``, ``L`` on the serial port,
then exits QEMU through the ``isa-debug-exit`` device. The probe runs under
software emulation (TCG) first, then under KVM with a deadline derived from
the TCG run: KVM is chosen only if it boots the probe and is not much slower
than emulation. Measured on a machine whose KVM cannot boot Linux: TCG 0.2 s,
KVM 4-5 s, so the domain type is ``qemu``; a working KVM host runs the probe
in about the time QEMU takes to start.

The probe needs the emulator on this machine, so it runs only for a local
connection URI; for a remote one, ``virt_type`` must be set explicitly to use KVM.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LOG = logging.getLogger(__name__)

#: The probe guest's code (GNU as, ``as --32``; 212 bytes, then zeros and the boot signature)::
#:
#:   .code16: cli; zero ds/ss; sp=0x7c00; out 'R' to 0x3f8; lgdt; set CR0.PE; ljmp 0x08:pm
#:   .code32 pm: load 0x10 data segments; out 'P'; zero 3 pages at 0x1000;
#:     PML4[0]=0x2003, PDPT[0]=0x3003, PD[0]=0x83 (2 MiB identity page); CR3=0x1000;
#:     CR4.PAE; EFER.LME (rdmsr/wrmsr 0xC0000080); CR0.PG; ljmp 0x18:lm
#:   .code64 lm: out 'L', '\n' to 0x3f8; out 0x10 to 0xf4 (isa-debug-exit: status 33); hlt
#:   gdt: null, code32 0x00cf9a000000ffff, data 0x00cf92000000ffff, code64 0x00af9a000000ffff
_PROBE_CODE = bytes.fromhex(
    "fa31c08ed88ed0bc007cbaf803b052ee660f0116d07c0f20c06683c8010f22c066ea287c0000080066b81000"
    "8ed88ec08ed066baf803b050eebf0010000031c0b9000c0000f3abc7050010000003200000c705002000000330"
    "0000c7050030000083000000b8001000000f22d80f20e083c8200f22e0b9800000c00f320d000100000f300f20"
    "c00d000000800f22c0ea967c0000180066baf803b04ceeb00aee66baf400b010eef4ebfd8db600000000000000"
    "0000000000ffff0000009acf00ffff00000092cf00ffff0000009aaf001f00b07c"
)
PROBE_BOOT_SECTOR = _PROBE_CODE.ljust(510, b"\0") + b"\x55\xaa"
PROBE_OUTPUT = b"RPL"
PROBE_EXIT_STATUS = 33  # (0x10 << 1) | 1

#: EC2 architecture names a host of a libvirt architecture runs, best first.
_EC2_ARCHITECTURES = {"x86_64": "x86_64", "i686": "i386", "aarch64": "arm64"}


@dataclass(frozen=True)
class HostCapabilities:
    """The parts of ``virConnectGetCapabilities`` OCS uses."""

    arch: str  # the host CPU's architecture (libvirt's name)
    guests: dict[str, tuple[str, ...]] = field(default_factory=dict)  # guest arch → domain types
    emulators: dict[str, str] = field(default_factory=dict)  # guest arch → emulator path

    def architectures(self) -> tuple[str, ...]:
        """EC2 names of the guest architectures, the host's own first."""
        names = [self.arch, *sorted(a for a in self.guests if a != self.arch)]
        return tuple(dict.fromkeys(_EC2_ARCHITECTURES.get(a, a) for a in names if a))

    def domain_types(self) -> tuple[str, ...]:
        """The domain types offered for the host's own architecture."""
        return self.guests.get(self.arch, ())


def parse_capabilities(xml: str) -> HostCapabilities:
    """A :class:`HostCapabilities` from libvirt's capabilities XML (hvm guests only)."""
    root = ET.fromstring(xml)
    host_arch = root.findtext("host/cpu/arch") or ""
    guests: dict[str, tuple[str, ...]] = {}
    emulators: dict[str, str] = {}
    for guest in root.iterfind("guest"):
        if (guest.findtext("os_type") or "") not in ("hvm", ""):
            continue
        arch = guest.find("arch")
        if arch is None or not arch.get("name"):
            continue
        name = arch.get("name", "")
        types = [d.get("type", "") for d in arch.iterfind("domain")]
        guests[name] = tuple(dict.fromkeys([*guests.get(name, ()), *filter(None, types)]))
        emulator = arch.findtext("emulator")
        if emulator:
            emulators.setdefault(name, emulator)
    return HostCapabilities(arch=host_arch or next(iter(guests), ""), guests=guests, emulators=emulators)


def is_local_uri(uri: str) -> bool:
    """Whether a libvirt URI names this machine (no host part)."""
    netloc = urllib.parse.urlsplit(uri).netloc
    return netloc in ("", "localhost", "127.0.0.1")


@dataclass(frozen=True)
class ProbeResult:
    booted: bool
    seconds: float
    detail: str


def run_probe(emulator: str, accel: str, deadline: float) -> ProbeResult:
    """Boot the probe guest with ``-accel accel``; killed after ``deadline`` seconds."""
    with tempfile.TemporaryDirectory(prefix="ocs-kvm-probe-") as tmp:
        disk = Path(tmp) / "probe.img"
        disk.write_bytes(PROBE_BOOT_SECTOR)
        cmd = [
            emulator, "-accel", accel, "-machine", "pc", "-m", "16", "-nodefaults", "-display", "none",
            "-no-reboot", "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-drive", f"format=raw,file={disk},if=ide",
        ]  # fmt: skip
        started = time.monotonic()
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=deadline, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return ProbeResult(False, time.monotonic() - started, f"no result within {deadline:.1f} s")
        except OSError as exc:
            return ProbeResult(False, time.monotonic() - started, f"cannot run {emulator}: {exc}")
    seconds = time.monotonic() - started
    if done.returncode == PROBE_EXIT_STATUS and PROBE_OUTPUT in done.stdout:
        return ProbeResult(True, seconds, f"booted to 64-bit mode in {seconds:.2f} s")
    error = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return ProbeResult(
        False, seconds, f"exit status {done.returncode}: {error[-1] if error else 'no output'}"
    )


def probe_kvm(emulator: str, probe: Callable[[str, str, float], ProbeResult] = run_probe) -> tuple[bool, str]:
    """Whether KVM genuinely runs guests with ``emulator``, and why (see the module docstring)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is missing or not accessible"
    tcg = probe(emulator, "tcg", 10.0)
    if not tcg.booted:
        return False, f"the probe guest does not boot even without KVM ({tcg.detail})"
    deadline = min(max(2 * tcg.seconds + 0.5, 1.0), 5.0)
    kvm = probe(emulator, "kvm", deadline)
    if not kvm.booted:
        return False, f"KVM failed the probe ({kvm.detail}; software emulation took {tcg.seconds:.2f} s)"
    return True, f"KVM passed the probe ({kvm.detail}; software emulation took {tcg.seconds:.2f} s)"


_probe_lock = threading.Lock()
_probe_results: dict[str, tuple[bool, str]] = {}


def probe_kvm_once(emulator: str) -> tuple[bool, str]:
    """:func:`probe_kvm`, run once per emulator in this process."""
    with _probe_lock:
        if emulator not in _probe_results:
            _probe_results[emulator] = probe_kvm(emulator)
        return _probe_results[emulator]


def choose_virt_type(
    requested: str,
    caps: HostCapabilities,
    *,
    local: bool,
    probe: Callable[[str], tuple[bool, str]] = probe_kvm_once,
) -> tuple[str, str]:
    """The domain type for guests, and the reason, from the ``virt_type`` setting.

    ``auto`` picks ``kvm`` if libvirt offers it and the probe passes, else
    ``qemu``, else the first type offered (``test`` for libvirt's test driver).
    An explicit ``kvm``/``qemu``/... is used if libvirt offers it (no probe).
    Raises ``ValueError`` if nothing fits.
    """
    offered = caps.domain_types()
    if not offered:
        raise ValueError(f"libvirt offers no domain type for {caps.arch or 'this host'}")
    if requested != "auto":
        if requested not in offered:
            raise ValueError(f"virt_type {requested!r} is not offered here (offered: {', '.join(offered)})")
        return requested, "set by virt_type"
    if "kvm" in offered:
        if not local:
            why = "KVM cannot be probed over a remote connection; set virt_type=kvm to use it"
        else:
            emulator = caps.emulators.get(caps.arch, "")
            works, why = probe(emulator) if emulator else (False, "no emulator path in the capabilities")
            if works:
                return "kvm", why
    else:
        why = "libvirt does not offer KVM"
    if "qemu" in offered:
        return "qemu", why + "; using software emulation (TCG)"
    return offered[0], f"the only domain type offered is {offered[0]}"
