"""The libvirt driver against libvirt's built-in test driver (``test:///default``).

No daemon and no QEMU: the test driver keeps domains in memory (shared by every
connection of this process) and emits lifecycle events. ``qemu-img`` is still
needed for the overlays. The whole driver contract runs here, plus what is
particular to libvirt: foreign domains, files on disk, clean-up after failures.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.services import services_required

try:
    import libvirt
except ImportError:  # CI installs the libvirt extra: there, its absence is an error
    if services_required():
        raise
    pytest.skip("libvirt-python is not installed (pip install 'ocs[libvirt]')", allow_module_level=True)

from ocs import ids
from ocs.compute_agent import domain_xml
from ocs.compute_agent.driver import (
    Driver,
    DriverError,
    GuestEvent,
    GuestNotFound,
    GuestSpec,
    ImageRef,
    InvalidGuestState,
    PowerState,
    SpawnFailed,
    VolumeAttachment,
)
from ocs.compute_agent.libvirt.driver import LibvirtDriver
from tests.unit.compute_agent.contract import DriverContract, EventLog, wait_for

URI = "test:///default"
pytestmark = pytest.mark.skipif(
    shutil.which("qemu-img") is None, reason="qemu-img is not installed (apt-get install qemu-utils)"
)


def make_image(directory: Path) -> ImageRef:
    directory.mkdir(parents=True, exist_ok=True)
    data = b"OCS-TEST-IMAGE-ROOT-DISK v1\n".ljust(1024 * 1024, b"\0")
    path = directory / "image.raw"
    path.write_bytes(data)
    return ImageRef("ami-0123456789abcdef0", str(path), "raw", "sha256:" + hashlib.sha256(data).hexdigest())


def foreign_domain(name: str, metadata: str = "") -> str:
    return (
        f"<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        f"<metadata>{metadata}</metadata><os><type arch='x86_64'>hvm</type></os></domain>"
    )


@pytest.fixture(scope="module", autouse=True)
def test_host() -> Iterator[Any]:
    """A connection held open for the module: test:///default lives while one is open,
    as a real hypervisor outlives the agent's connections."""
    conn = libvirt.open(URI)
    yield conn
    conn.close()


class TestLibvirtTestDriverContract(DriverContract):
    @pytest.fixture(autouse=True)
    def _paths(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.image = make_image(tmp_path / "images")

    def spec(self, instance_id: str | None = None, **changes: Any) -> GuestSpec:
        # libvirt's test host is an i686 machine
        return replace(super().spec(instance_id), image=self.image, architecture="i386", **changes)

    @pytest.fixture
    def make_driver(self, tmp_path: Path) -> Callable[[], Driver]:
        return lambda: LibvirtDriver(
            "test-host",
            uri=URI,
            instances_path=str(tmp_path / "instances"),
            image_cache_path=str(tmp_path / "cache"),
        )

    def stop_from_inside(self, driver: Driver, instance_id: str) -> None:
        conn = libvirt.open(URI)  # another connection: the same in-memory host
        try:
            conn.lookupByName(domain_xml.domain_name(instance_id)).shutdown()
        finally:
            conn.close()

    # libvirt's test driver (libvirt 9) does not implement virDomainAttachDeviceFlags,
    # so device hot-plug is covered by the QEMU tests (tests/integration/libvirt).
    _NO_HOTPLUG = "libvirt's test driver cannot attach devices; see tests/integration/libvirt"

    @pytest.mark.skip(reason=_NO_HOTPLUG)
    def test_attach_and_detach_volume(self) -> None: ...

    @pytest.mark.skip(reason=_NO_HOTPLUG)
    def test_volumes_attach_to_a_stopped_guest(self) -> None: ...

    @pytest.mark.skip(reason=_NO_HOTPLUG)
    def test_a_device_name_is_used_once(self) -> None: ...

    @pytest.mark.skip(reason=_NO_HOTPLUG)
    def test_attach_and_detach_interface(self) -> None: ...


# --- what is particular to libvirt ------------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[LibvirtDriver, EventLog]]:
    driver = LibvirtDriver(
        "test-host",
        uri=URI,
        instances_path=str(tmp_path / "instances"),
        image_cache_path=str(tmp_path / "cache"),
    )
    events = EventLog()
    driver.init_host(events)
    yield driver, events
    for guest in driver.list_guests():
        driver.destroy(guest.instance_id)
    driver.close()


def a_spec(tmp_path: Path, **changes: Any) -> GuestSpec:
    base = GuestSpec(
        instance_id=changes.pop("instance_id", None) or ids.new_id("instance"),
        vcpus=1,
        memory_mib=128,
        disk_gib=1,
        image=make_image(tmp_path / "images"),
        architecture="i386",
    )
    return replace(base, **changes)


def test_the_test_host_gets_its_own_domain_type(host: tuple[LibvirtDriver, EventLog]) -> None:
    driver, _ = host
    assert driver.virt_type == "test"
    resources = driver.host_resources()
    assert resources.hypervisor_type == "test" and resources.architectures[0] == "i386"
    assert (resources.vcpus, resources.memory_mib) == (16, 3072)


def test_a_virt_type_the_host_does_not_offer_is_refused(tmp_path: Path) -> None:
    driver = LibvirtDriver(
        uri=URI, instances_path=str(tmp_path / "i"), image_cache_path=str(tmp_path / "c"), virt_type="kvm"
    )
    with pytest.raises(DriverError, match="virt_type 'kvm' is not offered"):
        driver.init_host()


def test_an_unreachable_libvirt_is_a_driver_error(tmp_path: Path) -> None:
    driver = LibvirtDriver(uri="qemu+unix:///system?socket=/nonexistent/sock", instances_path=str(tmp_path))
    with pytest.raises(DriverError, match="cannot connect"):
        driver.init_host()


def test_a_guest_has_its_files_and_destroy_removes_them(
    host: tuple[LibvirtDriver, EventLog], tmp_path: Path
) -> None:
    driver, events = host
    spec = a_spec(tmp_path, config_drive=True)
    driver.spawn(spec)
    home = tmp_path / "instances" / spec.instance_id
    assert sorted(p.name for p in home.iterdir()) == ["config.iso", "console.log", "disk"]
    assert wait_for(lambda: GuestEvent.STARTED in events.of(spec.instance_id))
    xml = libvirt.open(URI).lookupByName(domain_xml.domain_name(spec.instance_id)).XMLDesc(0)
    assert "<acpi/>" in xml and domain_xml.METADATA_NS in xml
    driver.destroy(spec.instance_id)
    assert not home.exists()


def test_without_force_config_drive_only_guests_that_ask_get_one(tmp_path: Path) -> None:
    driver = LibvirtDriver(
        uri=URI,
        instances_path=str(tmp_path / "instances"),
        image_cache_path=str(tmp_path / "cache"),
        force_config_drive=False,
    )
    driver.init_host()
    try:
        plain, asks = a_spec(tmp_path), a_spec(tmp_path, config_drive=True)
        driver.spawn(plain)
        driver.spawn(asks)
        assert not (tmp_path / "instances" / plain.instance_id / "config.iso").exists()
        assert (tmp_path / "instances" / asks.instance_id / "config.iso").exists()
    finally:
        for spec in (plain, asks):
            driver.destroy(spec.instance_id)
        driver.close()


def test_a_bad_image_fails_the_spawn_and_leaves_nothing(
    host: tuple[LibvirtDriver, EventLog], tmp_path: Path
) -> None:
    driver, _ = host
    spec = a_spec(tmp_path)
    bad = replace(spec, image=replace(spec.image, checksum="sha256:" + "0" * 64))
    with pytest.raises(SpawnFailed, match="checksum mismatch") as failed:
        driver.spawn(bad)
    assert not failed.value.retryable
    assert not (tmp_path / "instances" / spec.instance_id).exists()
    with pytest.raises(GuestNotFound):
        driver.guest_info(spec.instance_id)


def test_an_image_larger_than_the_disk_is_refused(
    host: tuple[LibvirtDriver, EventLog], tmp_path: Path
) -> None:
    driver, _ = host
    spec = a_spec(tmp_path)
    big = tmp_path / "big.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "5G"], check=True)
    with pytest.raises(SpawnFailed, match="more than the instance's 1 GiB disk"):
        driver.spawn(replace(spec, image=ImageRef("ami-big", str(big))))


def test_unusable_requests_fail_before_anything_is_made(
    host: tuple[LibvirtDriver, EventLog], tmp_path: Path
) -> None:
    driver, _ = host
    cases = {
        "not valid base64": a_spec(tmp_path, user_data="%%%"),
        "is not a device name": a_spec(tmp_path, volumes=(VolumeAttachment("vol-1", "sdf", "file", "/x"),)),
        "architecture arm64": a_spec(tmp_path, architecture="arm64"),
        "needs 99999 MiB of memory": a_spec(tmp_path, memory_mib=99999),
    }
    for reason, spec in cases.items():
        with pytest.raises(SpawnFailed, match=reason):
            driver.spawn(spec)
    assert list((tmp_path / "instances").iterdir()) == []


class SlowOpener:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, url: str, timeout: float) -> Any:
        self.entered.set()
        assert self.release.wait(10)
        return io.BytesIO(self.data)


def test_a_guest_destroyed_while_spawning_ends_the_spawn(
    host: tuple[LibvirtDriver, EventLog], tmp_path: Path
) -> None:
    driver, _ = host
    opener = SlowOpener(b"disk")
    driver.images._open_url = opener
    spec = a_spec(tmp_path, image=ImageRef("ami-slow", "http://images.invalid/slow.img"))
    outcome: list[BaseException | object] = []

    def spawn() -> None:
        try:
            outcome.append(driver.spawn(spec))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=spawn)
    thread.start()
    assert opener.entered.wait(10)
    info = driver.guest_info(spec.instance_id)
    assert info.power_state is PowerState.NOSTATE
    assert spec.instance_id in [g.instance_id for g in driver.list_guests()]
    with pytest.raises(InvalidGuestState):
        driver.power_off(spec.instance_id, force=True)
    assert driver.console_output(spec.instance_id) == b""
    destroyer = threading.Thread(target=driver.destroy, args=(spec.instance_id,))
    destroyer.start()
    time.sleep(0.1)
    opener.release.set()
    thread.join(10)
    destroyer.join(10)
    assert isinstance(outcome[0], SpawnFailed) and "deleted while" in outcome[0].reason
    assert not (tmp_path / "instances" / spec.instance_id).exists()
    with pytest.raises(GuestNotFound):
        driver.guest_info(spec.instance_id)


def test_foreign_domains_are_not_listed_or_destroyed(
    host: tuple[LibvirtDriver, EventLog], test_host: Any
) -> None:
    driver, _ = host
    impostor = "i-00000000000000f00"
    dom = test_host.defineXML(foreign_domain(domain_xml.domain_name(impostor)))
    try:
        assert impostor not in [g.instance_id for g in driver.list_guests()]
        assert "test" not in [g.instance_id for g in driver.list_guests()]  # the test host's own domain
        driver.destroy(impostor)
        assert test_host.lookupByName(domain_xml.domain_name(impostor)).name()
        with pytest.raises(GuestNotFound):
            driver.power_on(impostor)
    finally:
        dom.undefine()


def test_hosts_sharing_one_libvirtd_see_and_touch_only_their_own_guests(
    host: tuple[LibvirtDriver, EventLog], tmp_path: Path
) -> None:
    """Several agents (a dev cluster, two clouds, two test runs) may share one libvirtd:
    each lists, reconciles and destroys only the guests it made itself."""
    driver, _ = host
    neighbour = LibvirtDriver(
        "neighbour-host",
        uri=URI,
        instances_path=str(tmp_path / "neighbour"),
        image_cache_path=str(tmp_path / "neighbour-cache"),
    )
    neighbour.init_host()
    try:
        spec = a_spec(tmp_path)
        driver.spawn(spec)
        assert wait_for(lambda: driver.guest_info(spec.instance_id).power_state is PowerState.RUNNING)
        xml = libvirt.open(URI).lookupByName(domain_xml.domain_name(spec.instance_id)).XMLDesc(0)
        assert domain_xml.parse_domain(xml).host == "test-host"  # type: ignore[union-attr]

        assert spec.instance_id in [g.instance_id for g in driver.list_guests()]
        assert spec.instance_id not in [g.instance_id for g in neighbour.list_guests()]
        with pytest.raises(GuestNotFound):
            neighbour.guest_info(spec.instance_id)
        with pytest.raises(GuestNotFound):
            neighbour.power_off(spec.instance_id)
        neighbour.destroy(spec.instance_id)  # not its guest: nothing happens
        assert driver.guest_info(spec.instance_id).power_state is PowerState.RUNNING
    finally:
        neighbour.close()


def test_orphaned_instance_directories_are_removed_at_start(tmp_path: Path) -> None:
    orphan = tmp_path / "instances" / "i-0123456789abcdef0"
    orphan.mkdir(parents=True)
    (orphan / "disk").write_bytes(b"left by a crashed spawn")
    unrelated = tmp_path / "instances" / "lost+found"
    unrelated.mkdir()
    driver = LibvirtDriver(
        uri=URI, instances_path=str(tmp_path / "instances"), image_cache_path=str(tmp_path / "c")
    )
    driver.init_host()
    driver.close()
    assert not orphan.exists() and unrelated.exists()


def test_a_closed_driver_refuses_work(tmp_path: Path) -> None:
    driver = LibvirtDriver(uri=URI, instances_path=str(tmp_path / "i"), image_cache_path=str(tmp_path / "c"))
    with pytest.raises(DriverError, match="not connected"):
        driver.spawn(a_spec(tmp_path))
    driver.close()


def test_a_dropped_connection_is_reopened_with_its_events(
    host: tuple[LibvirtDriver, EventLog], tmp_path: Path
) -> None:
    driver, events = host
    connection = driver._conn
    assert connection is not None
    connection._dropped(connection._conn, libvirt.VIR_CONNECT_CLOSE_REASON_EOF, None)  # as libvirt reports it
    spec = a_spec(tmp_path)
    driver.spawn(spec)  # on a new connection
    assert wait_for(lambda: GuestEvent.STARTED in events.of(spec.instance_id))
