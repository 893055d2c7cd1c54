"""The driver contract: the same tests for every hypervisor driver.

A subclass provides the ``make_driver`` fixture (a factory of unconnected
drivers of one host) and may override the hooks below for what is particular
to its hypervisor: a spec it can boot (``spec``), one it must refuse
(``unspawnable_spec``), a volume and an interface it can attach, and a way to
make a guest stop from the inside. ``tests/unit/compute_agent`` runs the
contract on the fake driver; the libvirt driver's tests reuse it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ocs import ids
from ocs.compute_agent.driver import (
    CONSOLE_MAX_BYTES,
    Driver,
    DriverError,
    GuestEvent,
    GuestExists,
    GuestNotFound,
    GuestSpec,
    HostResources,
    ImageRef,
    InvalidGuestState,
    NicSpec,
    PowerState,
    SpawnFailed,
    VolumeAttachment,
)

MISSING = "i-0000000000000dead"

#: Every method that names a guest, called on ``MISSING`` (destroy is not here: it is idempotent).
GUEST_CALLS: dict[str, Callable[[Driver], object]] = {
    "guest_info": lambda d: d.guest_info(MISSING),
    "power_off": lambda d: d.power_off(MISSING, timeout=1.0),
    "power_on": lambda d: d.power_on(MISSING),
    "reboot": lambda d: d.reboot(MISSING),
    "console_output": lambda d: d.console_output(MISSING),
    "attach_volume": lambda d: d.attach_volume(MISSING, VolumeAttachment("vol-1", "/dev/sdf", "file", "/x")),
    "detach_volume": lambda d: d.detach_volume(MISSING, "vol-1"),
    "attach_interface": lambda d: d.attach_interface(MISSING, NicSpec("02:00:00:00:00:01", "br0")),
    "detach_interface": lambda d: d.detach_interface(MISSING, "02:00:00:00:00:01"),
}


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until true (events of a real hypervisor arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


class EventLog:
    """An event handler that records what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, GuestEvent]] = []
        self._lock = threading.Lock()

    def __call__(self, instance_id: str, event: GuestEvent) -> None:
        with self._lock:
            self.events.append((instance_id, event))

    def of(self, instance_id: str) -> list[GuestEvent]:
        with self._lock:
            return [e for i, e in self.events if i == instance_id]


def used(resources: HostResources) -> tuple[int, int, int, int]:
    return (resources.vcpus_used, resources.memory_mib_used, resources.disk_gib_used, resources.guests)


class DriverContract:
    """Tests every driver passes. Subclasses provide ``make_driver``."""

    #: How many guests the concurrency test spawns, and from how many threads.
    concurrent_guests = 50
    concurrent_threads = 10

    # --- hooks ---------------------------------------------------------------

    def spec(self, instance_id: str | None = None, **changes: Any) -> GuestSpec:
        """A small guest this driver can boot."""
        base = GuestSpec(
            instance_id=instance_id or ids.new_id("instance"),
            vcpus=1,
            memory_mib=128,
            disk_gib=1,
            image=ImageRef("ami-0123456789abcdef0", "/images/ami-0123456789abcdef0", "raw"),
            hostname="guest",
        )
        return replace(base, **changes)

    def unspawnable_spec(self, driver: Driver) -> GuestSpec:
        """A spec this driver must refuse: by default, more vCPUs than the host has."""
        return self.spec(vcpus=driver.host_resources().vcpus + 1)

    def volume(self, tmp_path: Path, volume_id: str = "vol-0123456789abcdef0", device: str = "/dev/sdf"):
        path = tmp_path / f"{volume_id}.img"
        path.write_bytes(b"\0" * 1024 * 1024)
        return VolumeAttachment(volume_id, device, "file", str(path))

    def nic(self, mac: str = "02:00:0a:00:00:05") -> NicSpec:
        return NicSpec(mac=mac, bridge="br-ocs-test", ip="10.0.0.5", interface_id="eni-0123456789abcdef0")

    def stop_from_inside(self, driver: Driver, instance_id: str) -> None:
        """Make the guest power itself off (as if it ran ``poweroff``)."""
        raise NotImplementedError

    # --- fixtures -------------------------------------------------------------

    @pytest.fixture
    def events(self) -> EventLog:
        return EventLog()

    @pytest.fixture
    def driver(self, make_driver: Callable[[], Driver], events: EventLog) -> Iterator[Driver]:
        driver = make_driver()
        driver.init_host(events)
        before = {g.instance_id for g in driver.list_guests()}
        yield driver
        driver.init_host(events)  # a test may have closed it
        for guest in driver.list_guests():
            if guest.instance_id not in before:
                driver.destroy(guest.instance_id)
        driver.close()

    @pytest.fixture
    def guest(self, driver: Driver) -> str:
        return driver.spawn(self.spec()).instance_id

    # --- inventory -------------------------------------------------------------

    def test_host_resources_are_consistent(self, driver: Driver) -> None:
        res = driver.host_resources()
        assert res.hostname and res.hypervisor_type and res.architectures
        assert min(res.vcpus, res.memory_mib, res.disk_gib) > 0
        assert min(res.vcpus_used, res.memory_mib_used, res.disk_gib_used) >= 0
        assert res.guests == len(driver.list_guests())

    def test_spawn_returns_a_running_guest(self, driver: Driver) -> None:
        spec = self.spec()
        info = driver.spawn(spec)
        assert info.instance_id == spec.instance_id
        assert info.power_state is PowerState.RUNNING
        assert (info.vcpus, info.memory_mib, info.disk_gib) == (spec.vcpus, spec.memory_mib, spec.disk_gib)
        assert driver.guest_info(spec.instance_id) == driver.guest_info(spec.instance_id)
        assert driver.guest_info(spec.instance_id).power_state is PowerState.RUNNING
        assert spec.instance_id in [g.instance_id for g in driver.list_guests()]

    def test_list_guests_is_sorted_by_instance_id(self, driver: Driver) -> None:
        for _ in range(3):
            driver.spawn(self.spec())
        listed = [g.instance_id for g in driver.list_guests()]
        assert listed == sorted(listed)

    def test_guests_use_capacity_until_destroyed(self, driver: Driver) -> None:
        before = used(driver.host_resources())
        spec = self.spec(vcpus=2, memory_mib=256, disk_gib=2)
        driver.spawn(spec)
        during = used(driver.host_resources())
        assert during == (before[0] + 2, before[1] + 256, before[2] + 2, before[3] + 1)
        driver.power_off(spec.instance_id, force=True)
        assert used(driver.host_resources()) == during, "a stopped guest keeps its place"
        driver.destroy(spec.instance_id)
        assert used(driver.host_resources()) == before

    def test_spawning_an_existing_instance_leaves_it_alone(self, driver: Driver, guest: str) -> None:
        with pytest.raises(GuestExists):
            driver.spawn(self.spec(guest))
        assert driver.guest_info(guest).power_state is PowerState.RUNNING
        assert [g.instance_id for g in driver.list_guests()].count(guest) == 1

    def test_failed_spawn_leaves_nothing_behind(self, driver: Driver) -> None:
        before_guests = driver.list_guests()
        before = used(driver.host_resources())
        spec = self.unspawnable_spec(driver)
        with pytest.raises(SpawnFailed) as failed:
            driver.spawn(spec)
        assert failed.value.instance_id == spec.instance_id
        assert failed.value.reason and isinstance(failed.value.reason, str)
        assert isinstance(failed.value, DriverError)
        assert driver.list_guests() == before_guests
        assert used(driver.host_resources()) == before
        with pytest.raises(GuestNotFound):
            driver.guest_info(spec.instance_id)

    # --- destroy ----------------------------------------------------------------

    def test_destroy_removes_the_guest(self, driver: Driver, guest: str) -> None:
        driver.destroy(guest)
        assert guest not in [g.instance_id for g in driver.list_guests()]
        with pytest.raises(GuestNotFound) as missing:
            driver.guest_info(guest)
        assert missing.value.instance_id == guest

    def test_destroy_is_idempotent(self, driver: Driver, guest: str) -> None:
        driver.destroy(guest)
        driver.destroy(guest)
        driver.destroy(MISSING)

    def test_destroy_works_on_a_stopped_guest(self, driver: Driver, guest: str) -> None:
        driver.power_off(guest, force=True)
        driver.destroy(guest)
        assert guest not in [g.instance_id for g in driver.list_guests()]

    def test_an_instance_id_can_be_spawned_again_after_destroy(self, driver: Driver, guest: str) -> None:
        driver.destroy(guest)
        assert driver.spawn(self.spec(guest)).power_state is PowerState.RUNNING

    @pytest.mark.parametrize("call", sorted(GUEST_CALLS))
    def test_methods_on_a_missing_guest_raise_guest_not_found(self, driver: Driver, call: str) -> None:
        with pytest.raises(GuestNotFound):
            GUEST_CALLS[call](driver)

    # --- power -------------------------------------------------------------------

    def test_power_off_and_on(self, driver: Driver, guest: str) -> None:
        driver.power_off(guest, timeout=5.0)
        assert driver.guest_info(guest).power_state is PowerState.SHUTDOWN
        driver.power_on(guest)
        assert driver.guest_info(guest).power_state is PowerState.RUNNING

    def test_forced_power_off(self, driver: Driver, guest: str) -> None:
        driver.power_off(guest, force=True)
        assert driver.guest_info(guest).power_state is PowerState.SHUTDOWN

    def test_power_operations_are_idempotent(self, driver: Driver, guest: str) -> None:
        driver.power_on(guest)
        assert driver.guest_info(guest).power_state is PowerState.RUNNING
        driver.power_off(guest, force=True)
        driver.power_off(guest, force=True)
        driver.power_off(guest, timeout=1.0)
        assert driver.guest_info(guest).power_state is PowerState.SHUTDOWN

    def test_soft_and_hard_reboot_leave_the_guest_running(self, driver: Driver, guest: str) -> None:
        driver.reboot(guest, timeout=5.0)
        assert driver.guest_info(guest).power_state is PowerState.RUNNING
        driver.reboot(guest, hard=True)
        assert driver.guest_info(guest).power_state is PowerState.RUNNING

    def test_soft_reboot_needs_a_running_guest(self, driver: Driver, guest: str) -> None:
        driver.power_off(guest, force=True)
        with pytest.raises(InvalidGuestState) as invalid:
            driver.reboot(guest)
        assert invalid.value.state is PowerState.SHUTDOWN
        assert driver.guest_info(guest).power_state is PowerState.SHUTDOWN

    def test_hard_reboot_starts_a_stopped_guest(self, driver: Driver, guest: str) -> None:
        driver.power_off(guest, force=True)
        driver.reboot(guest, hard=True)
        assert driver.guest_info(guest).power_state is PowerState.RUNNING

    # --- console and devices -------------------------------------------------------

    def test_console_output_is_bytes_within_the_ec2_limit(self, driver: Driver, guest: str) -> None:
        output = driver.console_output(guest)
        assert isinstance(output, bytes)
        assert len(output) <= CONSOLE_MAX_BYTES

    def test_console_output_survives_power_off(self, driver: Driver, guest: str) -> None:
        before = driver.console_output(guest)
        driver.power_off(guest, force=True)
        after = driver.console_output(guest)
        assert before[-200:] in after

    def test_attach_and_detach_volume(self, driver: Driver, guest: str, tmp_path: Path) -> None:
        volume = self.volume(tmp_path)
        driver.attach_volume(guest, volume)
        driver.attach_volume(guest, volume)
        assert driver.guest_info(guest).volumes == (volume.volume_id,)
        driver.detach_volume(guest, volume.volume_id)
        driver.detach_volume(guest, volume.volume_id)
        assert driver.guest_info(guest).volumes == ()

    def test_volumes_attach_to_a_stopped_guest(self, driver: Driver, guest: str, tmp_path: Path) -> None:
        driver.power_off(guest, force=True)
        volume = self.volume(tmp_path)
        driver.attach_volume(guest, volume)
        driver.power_on(guest)
        assert driver.guest_info(guest).volumes == (volume.volume_id,)

    def test_a_device_name_is_used_once(self, driver: Driver, guest: str, tmp_path: Path) -> None:
        driver.attach_volume(guest, self.volume(tmp_path, "vol-0000000000000000a"))
        with pytest.raises(DriverError):
            driver.attach_volume(guest, self.volume(tmp_path, "vol-0000000000000000b"))
        assert driver.guest_info(guest).volumes == ("vol-0000000000000000a",)

    def test_attach_and_detach_interface(self, driver: Driver, guest: str) -> None:
        nic = self.nic()
        driver.attach_interface(guest, nic)
        driver.attach_interface(guest, nic)
        assert nic.mac in driver.guest_info(guest).interfaces
        driver.detach_interface(guest, nic.mac)
        driver.detach_interface(guest, nic.mac)
        assert nic.mac not in driver.guest_info(guest).interfaces

    # --- events and connection -------------------------------------------------------

    def test_a_guest_that_stops_by_itself_is_reported(
        self, driver: Driver, guest: str, events: EventLog
    ) -> None:
        self.stop_from_inside(driver, guest)
        assert wait_for(lambda: GuestEvent.STOPPED in events.of(guest))
        assert driver.guest_info(guest).power_state is PowerState.SHUTDOWN

    def test_closed_driver_refuses_work_and_reconnects(self, driver: Driver, guest: str) -> None:
        driver.close()
        driver.close()
        with pytest.raises(DriverError):
            driver.list_guests()
        driver.init_host()
        assert driver.guest_info(guest).power_state is PowerState.RUNNING, "guests outlive the agent"

    def test_concurrent_spawns_and_destroys_add_up(self, driver: Driver) -> None:
        before = used(driver.host_resources())
        specs = [self.spec() for _ in range(self.concurrent_guests)]
        errors: list[BaseException] = []

        def work(chunk: list[GuestSpec]) -> None:
            try:
                for spec in chunk:
                    driver.spawn(spec)
                    driver.guest_info(spec.instance_id)
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=work, args=(specs[i :: self.concurrent_threads],))
            for i in range(self.concurrent_threads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        n = self.concurrent_guests
        assert used(driver.host_resources()) == (
            before[0] + n,
            before[1] + 128 * n,
            before[2] + n,
            before[3] + n,
        )
        destroyers = [threading.Thread(target=driver.destroy, args=(s.instance_id,)) for s in specs]
        for thread in destroyers:
            thread.start()
        for thread in destroyers:
            thread.join()
        assert used(driver.host_resources()) == before
