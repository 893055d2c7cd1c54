"""What only a real guest shows: it boots, reads its config drive, runs user-data,
obeys ACPI, reports stopping by itself, and leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ocs.compute_agent import domain_xml
from ocs.compute_agent.driver import GuestEvent, GuestNotFound, PowerState, SpawnFailed, VolumeAttachment
from ocs.compute_agent.libvirt.driver import LibvirtDriver
from tests.framework.guest_image import MARK_INIT, MARK_READY, MARK_SHUTDOWN, GuestImage
from tests.unit.compute_agent.contract import EventLog, wait_for

pytestmark = pytest.mark.slow

BOOT_TIMEOUT = 60.0


@pytest.fixture
def events() -> EventLog:
    return EventLog()


@pytest.fixture
def driver(libvirt_uri: str, workdir: Path, events: EventLog) -> Iterator[LibvirtDriver]:
    driver = LibvirtDriver(
        f"itest-{os.getpid()}",
        uri=libvirt_uri,
        instances_path=str(workdir / "instances"),
        image_cache_path=str(workdir / "cache"),
    )
    driver.init_host(events)
    before = {g.instance_id for g in driver.list_guests()}
    yield driver
    for guest in driver.list_guests():
        if guest.instance_id not in before:
            driver.destroy(guest.instance_id)
    driver.close()


def console(driver: LibvirtDriver, instance_id: str) -> bytes:
    return driver.console_output(instance_id)


def wait_console(driver: LibvirtDriver, instance_id: str, marker: bytes, count: int = 1) -> bytes:
    assert wait_for(lambda: console(driver, instance_id).count(marker) >= count, timeout=BOOT_TIMEOUT), (
        f"{marker!r} x{count} not on the console of {instance_id}:\n"
        + console(driver, instance_id)[-3000:].decode("utf-8", "replace")
    )
    return console(driver, instance_id)


def libvirt_domain(driver: LibvirtDriver, instance_id: str) -> object | None:
    import libvirt

    conn = libvirt.open(driver.uri)
    try:
        return conn.lookupByName(domain_xml.domain_name(instance_id)).name()
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


def test_the_host_runs_guests_with_a_probed_domain_type(driver: LibvirtDriver) -> None:
    assert driver.virt_type in ("kvm", "qemu")
    assert driver.host_resources().hypervisor_type == driver.virt_type


def test_a_guest_boots_reads_its_config_drive_and_runs_user_data(
    driver: LibvirtDriver, test_image: GuestImage, events: EventLog
) -> None:
    spec = test_image.spec(user_data="#!/bin/sh\necho user-data says $((6 * 7))\n", hostname="web-1")
    driver.spawn(spec)
    out = wait_console(driver, spec.instance_id, b"OCS-TEST-IMAGE: user-data exit=0")
    assert MARK_INIT in out and MARK_READY in out
    assert f"config-drive instance-id={spec.instance_id} hostname=web-1".encode() in out
    assert b"OCS-TEST-IMAGE: root disk /dev/vda 1024 MiB" in out, "the overlay has the instance's size"
    assert b"user-data says 42" in out
    assert GuestEvent.STARTED in events.of(spec.instance_id)
    assert driver.guest_info(spec.instance_id).console_bytes == len(out)


def test_stop_is_a_clean_acpi_shutdown_and_start_boots_again(
    driver: LibvirtDriver, test_image: GuestImage
) -> None:
    iid = driver.spawn(test_image.spec()).instance_id
    wait_console(driver, iid, MARK_READY)
    started = time.monotonic()
    driver.power_off(iid, timeout=30.0)
    assert time.monotonic() - started < 30.0, "the guest obeyed ACPI (it was not destroyed after the timeout)"
    assert MARK_SHUTDOWN in console(driver, iid)
    assert driver.guest_info(iid).power_state is PowerState.SHUTDOWN
    driver.power_on(iid)
    out = wait_console(driver, iid, MARK_READY, count=2)
    assert out.count(MARK_INIT) == 2, "the console log keeps both boots"


def test_a_guest_that_powers_itself_off_is_reported_stopped(
    driver: LibvirtDriver, test_image: GuestImage, events: EventLog
) -> None:
    iid = driver.spawn(test_image.spec(user_data="#!/bin/sh\npoweroff\n")).instance_id
    assert wait_for(lambda: GuestEvent.STOPPED in events.of(iid), timeout=BOOT_TIMEOUT)
    assert driver.guest_info(iid).power_state is PowerState.SHUTDOWN
    assert MARK_SHUTDOWN in console(driver, iid)


def test_soft_reboot_goes_through_the_guest(driver: LibvirtDriver, test_image: GuestImage) -> None:
    iid = driver.spawn(test_image.spec()).instance_id
    wait_console(driver, iid, MARK_READY)
    started = time.monotonic()
    driver.reboot(iid, timeout=30.0)
    assert time.monotonic() - started < 30.0, "the guest rebooted itself (no reset after the timeout)"
    assert driver.guest_info(iid).power_state is PowerState.RUNNING
    out = wait_console(driver, iid, MARK_READY, count=2)
    assert out.count(MARK_SHUTDOWN) == 1 and out.count(MARK_INIT) == 2


def test_destroy_leaves_no_domain_and_no_file(
    driver: LibvirtDriver, test_image: GuestImage, workdir: Path
) -> None:
    iid = driver.spawn(test_image.spec()).instance_id
    home = workdir / "instances" / iid
    assert {p.name for p in home.iterdir()} == {"disk", "config.iso", "console.log"}
    assert libvirt_domain(driver, iid) is not None
    driver.destroy(iid)
    assert not home.exists()
    assert libvirt_domain(driver, iid) is None
    with pytest.raises(GuestNotFound):
        driver.guest_info(iid)


def test_a_spawn_that_fails_half_way_leaves_nothing(
    driver: LibvirtDriver, test_image: GuestImage, workdir: Path
) -> None:
    before = driver.list_guests()
    # fails when QEMU starts, after the images, the overlay and the domain were made
    missing = VolumeAttachment(
        "vol-0000000000000dead", "/dev/sdf", "file", str(workdir / "no-such-volume.img")
    )
    spec = test_image.spec(volumes=(missing,))
    with pytest.raises(SpawnFailed) as failed:
        driver.spawn(spec)
    assert failed.value.retryable
    # fails while fetching: the kernel does not match its checksum
    assert spec.kernel is not None
    bad = test_image.spec(kernel=replace(spec.kernel, checksum="sha256:" + hashlib.sha256(b"x").hexdigest()))
    with pytest.raises(SpawnFailed, match="checksum mismatch"):
        driver.spawn(bad)
    assert driver.list_guests() == before
    for iid in (spec.instance_id, bad.instance_id):
        assert not (workdir / "instances" / iid).exists()
        assert libvirt_domain(driver, iid) is None


def test_foreign_domains_are_never_listed_or_touched(driver: LibvirtDriver) -> None:
    import libvirt

    impostor = "i-00000000000000f00"  # named like OCS's, but without OCS's metadata
    conn = libvirt.open(driver.uri)
    try:
        for name in ("not-ocs-vm", domain_xml.domain_name(impostor)):
            conn.defineXML(
                f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>"
                "<os><type arch='x86_64'>hvm</type></os></domain>"
            )
        listed = {g.instance_id for g in driver.list_guests()}
        assert impostor not in listed and "not-ocs-vm" not in listed
        driver.destroy(impostor)
        with pytest.raises(GuestNotFound):
            driver.guest_info(impostor)
        assert conn.lookupByName(domain_xml.domain_name(impostor)).name()
    finally:
        for name in ("not-ocs-vm", domain_xml.domain_name(impostor)):
            conn.lookupByName(name).undefine()
        conn.close()


def test_a_volume_attached_at_boot_is_in_the_guest(
    driver: LibvirtDriver, test_image: GuestImage, workdir: Path
) -> None:
    path = workdir / "boot-volume.img"
    path.write_bytes(b"\0" * 2 * 1024 * 1024)
    volume = VolumeAttachment("vol-0000000000000b007", "/dev/sdf", "file", str(path))
    iid = driver.spawn(test_image.spec(volumes=(volume,))).instance_id
    out = wait_console(driver, iid, MARK_READY)
    assert re.search(rb"\[vd[b-y]\] 4096 512-byte logical blocks", out), "the guest sees the 2 MiB volume"
    assert driver.guest_info(iid).volumes == (volume.volume_id,)


def test_a_kernel_panic_is_reported_as_a_crash(
    driver: LibvirtDriver, test_image: GuestImage, events: EventLog
) -> None:
    iid = driver.spawn(test_image.spec(user_data="#!/bin/sh\necho c > /proc/sysrq-trigger\n")).instance_id
    assert wait_for(lambda: GuestEvent.CRASHED in events.of(iid), timeout=BOOT_TIMEOUT), console(driver, iid)[
        -2000:
    ]
    assert driver.guest_info(iid).power_state is PowerState.CRASHED
    assert b"Kernel panic" in console(driver, iid)
    driver.reboot(iid, hard=True)  # how a crashed guest is recovered
    assert driver.guest_info(iid).power_state is PowerState.RUNNING
