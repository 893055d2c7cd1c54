"""The libvirt host: capabilities, the KVM probe and the choice of domain type; states and events."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ocs.compute_agent.driver import GuestEvent, PowerState
from tests.services import services_required

try:
    import libvirt
except ImportError:  # CI installs the libvirt extra: there, its absence is an error
    if services_required():
        raise
    pytest.skip("libvirt-python is not installed (pip install 'ocs[libvirt]')", allow_module_level=True)

from ocs.compute_agent.libvirt import host
from ocs.compute_agent.libvirt.connection import guest_event, power_state
from ocs.compute_agent.libvirt.host import HostCapabilities, ProbeResult

QEMU_CAPS = """<capabilities>
  <host><cpu><arch>x86_64</arch></cpu></host>
  <guest><os_type>hvm</os_type>
    <arch name='i686'><emulator>/usr/bin/qemu-system-i386</emulator>
      <domain type='qemu'/><domain type='kvm'/></arch></guest>
  <guest><os_type>hvm</os_type>
    <arch name='x86_64'><emulator>/usr/bin/qemu-system-x86_64</emulator>
      <domain type='qemu'/><domain type='kvm'/></arch></guest>
  <guest><os_type>xen</os_type><arch name='x86_64'><domain type='xen'/></arch></guest>
</capabilities>"""


def caps(*types: str) -> HostCapabilities:
    return HostCapabilities("x86_64", {"x86_64": types}, {"x86_64": "/usr/bin/qemu-system-x86_64"})


def test_capabilities_are_parsed() -> None:
    parsed = host.parse_capabilities(QEMU_CAPS)
    assert parsed.arch == "x86_64"
    assert parsed.guests == {"i686": ("qemu", "kvm"), "x86_64": ("qemu", "kvm")}
    assert parsed.emulators["x86_64"] == "/usr/bin/qemu-system-x86_64"
    assert parsed.domain_types() == ("qemu", "kvm")
    assert parsed.architectures() == ("x86_64", "i386")


def test_kvm_is_chosen_only_when_the_probe_passes() -> None:
    passes = lambda emulator: (True, "passed")  # noqa: E731
    fails = lambda emulator: (False, "hangs")  # noqa: E731
    assert host.choose_virt_type("auto", caps("qemu", "kvm"), local=True, probe=passes) == ("kvm", "passed")
    virt, why = host.choose_virt_type("auto", caps("qemu", "kvm"), local=True, probe=fails)
    assert virt == "qemu" and "hangs" in why and "software emulation" in why


def test_without_kvm_or_a_local_probe_the_type_is_qemu() -> None:
    def never(emulator: str) -> tuple[bool, str]:
        raise AssertionError("no probe expected")

    assert host.choose_virt_type("auto", caps("qemu"), local=True, probe=never)[0] == "qemu"
    virt, why = host.choose_virt_type("auto", caps("qemu", "kvm"), local=False, probe=never)
    assert virt == "qemu" and "remote" in why


def test_an_explicit_virt_type_is_used_if_offered() -> None:
    assert host.choose_virt_type("kvm", caps("qemu", "kvm"), local=True) == ("kvm", "set by virt_type")
    with pytest.raises(ValueError, match="not offered"):
        host.choose_virt_type("kvm", caps("qemu"), local=True)
    with pytest.raises(ValueError, match="no domain type"):
        host.choose_virt_type("auto", caps(), local=True)
    assert host.choose_virt_type("auto", caps("test"), local=True)[0] == "test"


def test_the_probe_compares_kvm_with_software_emulation(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[tuple[str, float]] = []

    def fake(times: dict[str, ProbeResult]):  # type: ignore[no-untyped-def]
        def probe(emulator: str, accel: str, deadline: float) -> ProbeResult:
            runs.append((accel, deadline))
            return times[accel]

        return probe

    monkeypatch.setattr(host.os, "access", lambda path, mode: True)
    fast = ProbeResult(True, 0.2, "ok")
    works, _ = host.probe_kvm("qemu", fake({"tcg": fast, "kvm": ProbeResult(True, 0.1, "ok")}))
    assert works and runs == [("tcg", 10.0), ("kvm", 1.0)]
    works, why = host.probe_kvm("qemu", fake({"tcg": fast, "kvm": ProbeResult(False, 1.0, "no result")}))
    assert not works and "KVM failed the probe (no result" in why
    works, why = host.probe_kvm("qemu", fake({"tcg": ProbeResult(False, 0.0, "cannot run"), "kvm": fast}))
    assert not works and "does not boot even without KVM" in why


def test_no_dev_kvm_means_no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host.os, "access", lambda path, mode: False)
    assert host.probe_kvm("qemu") == (False, "/dev/kvm is missing or not accessible")


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU is not installed")
def test_the_probe_guest_reaches_long_mode_under_software_emulation() -> None:
    result = host.run_probe(shutil.which("qemu-system-x86_64") or "", "tcg", 10.0)
    assert result.booted, result.detail


def test_a_missing_emulator_fails_the_probe(tmp_path: Path) -> None:
    result = host.run_probe(str(tmp_path / "no-qemu"), "tcg", 1.0)
    assert not result.booted and "cannot run" in result.detail


def test_the_probe_is_a_boot_sector() -> None:
    assert len(host.PROBE_BOOT_SECTOR) == 512 and host.PROBE_BOOT_SECTOR.endswith(b"\x55\xaa")


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("qemu:///system", True),
        ("qemu:///session", True),
        ("test:///default", True),
        ("qemu+ssh://h/system", False),
    ],
)
def test_local_uris(uri: str, local: bool) -> None:
    assert host.is_local_uri(uri) is local


@pytest.mark.parametrize(
    ("state", "reason", "power"),
    [
        (libvirt.VIR_DOMAIN_RUNNING, 1, PowerState.RUNNING),
        (libvirt.VIR_DOMAIN_BLOCKED, 0, PowerState.RUNNING),
        (libvirt.VIR_DOMAIN_SHUTDOWN, 0, PowerState.RUNNING),
        (libvirt.VIR_DOMAIN_PAUSED, 0, PowerState.PAUSED),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN, PowerState.SHUTDOWN),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED, PowerState.SHUTDOWN),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_CRASHED, PowerState.CRASHED),
        (libvirt.VIR_DOMAIN_CRASHED, 0, PowerState.CRASHED),
        (libvirt.VIR_DOMAIN_NOSTATE, 0, PowerState.NOSTATE),
    ],
)
def test_power_states(state: int, reason: int, power: PowerState) -> None:
    assert power_state(state, reason) is power


@pytest.mark.parametrize(
    ("event", "detail", "expected"),
    [
        (libvirt.VIR_DOMAIN_EVENT_STARTED, 0, GuestEvent.STARTED),
        (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN, GuestEvent.STOPPED),
        (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED, GuestEvent.STOPPED),
        (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED, GuestEvent.CRASHED),
        (libvirt.VIR_DOMAIN_EVENT_CRASHED, 0, GuestEvent.CRASHED),
        (libvirt.VIR_DOMAIN_EVENT_SHUTDOWN, 0, None),  # the guest began to shut down: STOPPED follows
        (libvirt.VIR_DOMAIN_EVENT_DEFINED, 0, None),
        (libvirt.VIR_DOMAIN_EVENT_RESUMED, 0, None),
    ],
)
def test_lifecycle_events(event: int, detail: int, expected: GuestEvent | None) -> None:
    assert guest_event(event, detail) is expected
