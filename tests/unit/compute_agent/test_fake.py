"""The fake hypervisor: the driver contract, plus its knobs (capacity, time, faults, events)."""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from ocs.compute_agent.driver import (
    CONSOLE_MAX_BYTES,
    Driver,
    DriverError,
    GuestEvent,
    GuestNotFound,
    InvalidGuestState,
    PowerState,
    SpawnFailed,
)
from ocs.compute_agent.drivers.fake import FakeDriver, FaultPlan, ManualClock
from tests.unit.compute_agent.contract import DriverContract, EventLog, used


class TestFakeDriverContract(DriverContract):
    @pytest.fixture
    def make_driver(self) -> Callable[[], Driver]:
        clock = ManualClock()
        return lambda: FakeDriver(
            "host-1", vcpus=64, memory_mib=65536, disk_gib=512, boot_delay=2.0, clock=clock, sleep=clock.sleep
        )

    def stop_from_inside(self, driver: Driver, instance_id: str) -> None:
        assert isinstance(driver, FakeDriver)
        driver.simulate_shutdown(instance_id)


# --- helpers -------------------------------------------------------------------

SPECS = TestFakeDriverContract()


def spec(instance_id: str | None = None, **changes: Any):
    return SPECS.spec(instance_id, **changes)


def fake(**settings: Any) -> tuple[FakeDriver, ManualClock, EventLog]:
    clock = ManualClock()
    settings.setdefault("vcpus", 8)
    settings.setdefault("memory_mib", 8192)
    settings.setdefault("disk_gib", 100)
    driver = FakeDriver("host-1", clock=clock, sleep=clock.sleep, **settings)
    events = EventLog()
    driver.init_host(events)
    return driver, clock, events


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Gate:
    """A ``sleep`` that blocks until released: lets a test look inside a wait."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, seconds: float) -> None:
        self.entered.set()
        assert self.release.wait(5.0)


def in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    results: list[object] = []

    def run() -> None:
        try:
            results.append(fn())
        except BaseException as exc:
            results.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, results


# --- construction and connection ----------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [{"vcpus": 0}, {"memory_mib": -1}, {"disk_gib": 0}, {"boot_delay": -1.0}, {"shutdown_delay": -0.5}],
)
def test_constructor_rejects_nonsense(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FakeDriver("h", **settings)


def test_driver_needs_init_host() -> None:
    driver = FakeDriver("h")
    with pytest.raises(DriverError, match="init_host"):
        driver.spawn(spec())
    driver.init_host()
    assert driver.host_resources().guests == 0
    assert repr(driver) == "FakeDriver('h')"


def test_init_host_can_be_made_to_fail() -> None:
    driver = FakeDriver("h", faults=FaultPlan(operation_failures={"init_host": 1}))
    with pytest.raises(DriverError):
        driver.init_host()
    driver.init_host()


def test_host_resources_describe_the_configured_host() -> None:
    driver, _, _ = fake(vcpus=4, memory_mib=2048, disk_gib=40)
    res = driver.host_resources()
    assert (res.hostname, res.hypervisor_type) == ("host-1", "fake")
    assert (res.vcpus, res.memory_mib, res.disk_gib) == (4, 2048, 40)
    assert used(res) == (0, 0, 0, 0)
    assert res.architectures == ("x86_64", "i386")
    assert (res.vcpus_free, res.memory_mib_free, res.disk_gib_free) == (4, 2048, 40)


def test_hosts_in_one_process_share_nothing() -> None:
    a, _, _ = fake()
    b, _, _ = fake()
    s = spec()
    a.spawn(s)
    assert b.list_guests() == []
    b.spawn(s)  # the same instance id on another host is another guest
    a.destroy(s.instance_id)
    assert b.guest_info(s.instance_id).power_state is PowerState.RUNNING


# --- capacity and validation -------------------------------------------------------


def test_capacity_is_enforced_honestly() -> None:
    driver, _, _ = fake(vcpus=4, memory_mib=1024, disk_gib=100)
    first = spec(vcpus=3, memory_mib=512)
    driver.spawn(first)
    with pytest.raises(SpawnFailed) as failed:
        driver.spawn(spec(vcpus=2, memory_mib=512))
    assert "insufficient capacity on host" in failed.value.reason
    assert "needs 2 vCPUs, 1 free" in failed.value.reason
    assert failed.value.retryable
    driver.spawn(spec(vcpus=1, memory_mib=512))  # exactly full
    assert driver.host_resources().vcpus_free == 0
    driver.power_off(first.instance_id, force=True)
    with pytest.raises(SpawnFailed):
        driver.spawn(spec(vcpus=1, memory_mib=1))
    driver.destroy(first.instance_id)
    driver.spawn(spec(vcpus=3, memory_mib=512))


def test_architecture_must_fit_the_host() -> None:
    driver, _, _ = fake()
    driver.spawn(spec(architecture="i386"))
    with pytest.raises(SpawnFailed, match="arm64") as failed:
        driver.spawn(spec(architecture="arm64"))
    assert failed.value.retryable
    arm, _, _ = fake(architecture="aarch64")
    assert arm.spawn(spec(architecture="arm64")).power_state is PowerState.RUNNING


@pytest.mark.parametrize("changes", [{"user_data": "not base64!"}, {"vcpus": 0}, {"memory_mib": -1}])
def test_bad_requests_fail_for_good(changes: dict[str, Any]) -> None:
    driver, _, _ = fake()
    with pytest.raises(SpawnFailed) as failed:
        driver.spawn(spec(**changes))
    assert not failed.value.retryable
    assert driver.list_guests() == []


# --- time ------------------------------------------------------------------------


def test_boot_delay_passes_on_the_injected_clock_only() -> None:
    driver, clock, events = fake(boot_delay=3600.0)
    s = spec()
    start = time.perf_counter()
    info = driver.spawn(s)
    assert time.perf_counter() - start < 1.0
    assert info.power_state is PowerState.RUNNING
    assert clock.sleeps == [3600.0] and clock() == 3600.0
    assert events.of(s.instance_id) == [GuestEvent.STARTED]


def test_a_guest_being_spawned_is_listed_and_holds_its_capacity() -> None:
    gate = Gate()
    driver = FakeDriver("h", vcpus=4, boot_delay=10.0, sleep=gate)
    driver.init_host()
    s = spec(vcpus=4)
    thread, results = in_thread(lambda: driver.spawn(s))
    assert gate.entered.wait(5.0)
    assert driver.guest_info(s.instance_id).power_state is PowerState.NOSTATE
    assert driver.host_resources().vcpus_free == 0
    with pytest.raises(InvalidGuestState):
        driver.power_on(s.instance_id)
    with pytest.raises(InvalidGuestState):
        driver.attach_interface(s.instance_id, SPECS.nic())
    assert driver.console_output(s.instance_id) == b""
    gate.release.set()
    thread.join()
    assert results[0].power_state is PowerState.RUNNING  # type: ignore[attr-defined]


def test_destroy_during_spawn_wins() -> None:
    gate = Gate()
    driver = FakeDriver("h", boot_delay=10.0, sleep=gate)
    driver.init_host()
    s = spec()
    thread, results = in_thread(lambda: driver.spawn(s))
    assert gate.entered.wait(5.0)
    driver.destroy(s.instance_id)
    gate.release.set()
    thread.join()
    assert isinstance(results[0], SpawnFailed) and "deleted" in results[0].reason
    assert driver.list_guests() == [] and driver.host_resources().guests == 0


def test_graceful_power_off_takes_the_shutdown_delay() -> None:
    driver, clock, _ = fake(shutdown_delay=5.0)
    s = spec()
    driver.spawn(s)
    driver.power_off(s.instance_id, timeout=60.0)
    assert clock.sleeps == [5.0]
    driver.power_on(s.instance_id)
    driver.power_off(s.instance_id, force=True)
    assert clock.sleeps == [5.0], "forcing does not wait"
    driver.power_on(s.instance_id)
    driver.power_off(s.instance_id, timeout=2.0)
    assert clock.sleeps == [5.0, 2.0], "a guest slower than the timeout is forced off"
    assert b"terminating on signal 15" in driver.console_output(s.instance_id)


def test_a_guest_ignoring_acpi_is_forced_off_after_the_timeout() -> None:
    s = spec()
    driver, clock, events = fake(faults=FaultPlan(ignore_acpi={s.instance_id}))
    driver.spawn(s)
    driver.power_off(s.instance_id, timeout=30.0)
    assert clock.sleeps == [30.0]
    assert driver.guest_info(s.instance_id).power_state is PowerState.SHUTDOWN
    assert events.of(s.instance_id) == [GuestEvent.STARTED, GuestEvent.STOPPED]
    driver.power_on(s.instance_id)
    driver.reboot(s.instance_id, timeout=20.0)
    assert clock.sleeps == [30.0, 20.0]
    assert b"qemu: system reset" in driver.console_output(s.instance_id)


def test_a_guest_destroyed_while_shutting_down_is_not_found() -> None:
    gate = Gate()
    driver = FakeDriver("h", shutdown_delay=5.0, sleep=gate)
    driver.init_host()
    s = spec()
    gate.release.set()
    driver.spawn(s)
    gate.release.clear()
    gate.entered.clear()
    thread, results = in_thread(lambda: driver.power_off(s.instance_id))
    assert gate.entered.wait(5.0)
    driver.destroy(s.instance_id)
    gate.release.set()
    thread.join()
    assert isinstance(results[0], GuestNotFound)


def test_negative_timeouts_are_refused() -> None:
    driver, _, _ = fake()
    s = spec()
    driver.spawn(s)
    with pytest.raises(ValueError):
        driver.power_off(s.instance_id, timeout=-1.0)
    with pytest.raises(ValueError):
        driver.reboot(s.instance_id, timeout=-1.0)


# --- faults -------------------------------------------------------------------------


def test_failed_spawns_are_cleaned_up_after_the_boot_delay() -> None:
    driver, clock, events = fake(boot_delay=4.0, faults=FaultPlan(spawn_failures=2))
    for _ in range(2):
        s = spec()
        with pytest.raises(SpawnFailed) as failed:
            driver.spawn(s)
        assert failed.value.reason == "simulated hypervisor failure" and failed.value.retryable
        assert events.of(s.instance_id) == []
    assert clock() == 8.0, "the failure shows after the guest was partly made"
    assert driver.list_guests() == [] and used(driver.host_resources()) == (0, 0, 0, 0)
    assert driver.faults.spawn_failures == 0
    assert driver.spawn(spec()).power_state is PowerState.RUNNING


def test_spawns_of_chosen_instances_fail() -> None:
    bad = spec()
    plan = FaultPlan(failing_instances={bad.instance_id}, spawn_failure_reason="disk on fire")
    plan.spawn_failure_retryable = False
    driver, _, _ = fake(faults=plan)
    driver.spawn(spec())
    for _ in range(2):
        with pytest.raises(SpawnFailed, match="disk on fire") as failed:
            driver.spawn(bad)
        assert not failed.value.retryable
    assert len(driver.list_guests()) == 1


def test_random_spawn_failures_are_repeatable_with_a_seed() -> None:
    def outcomes(seed: int) -> list[bool]:
        plan = FaultPlan(spawn_failure_rate=0.5, rng=random.Random(seed))
        driver, _, _ = fake(vcpus=1000, memory_mib=10**6, disk_gib=10**4, faults=plan)
        results = []
        for _ in range(200):
            try:
                driver.spawn(spec())
                results.append(True)
            except SpawnFailed:
                results.append(False)
        assert driver.host_resources().guests == sum(results)
        return results

    first = outcomes(7)
    assert first == outcomes(7)
    assert 60 < sum(first) < 140


def test_any_operation_can_be_made_to_fail_without_effect() -> None:
    driver, _, _ = fake(faults=FaultPlan(operation_failures={"power_on": 1, "destroy": 1}))
    s = spec()
    driver.spawn(s)
    driver.power_off(s.instance_id, force=True)
    with pytest.raises(DriverError, match="power_on"):
        driver.power_on(s.instance_id)
    assert driver.guest_info(s.instance_id).power_state is PowerState.SHUTDOWN
    driver.power_on(s.instance_id)
    with pytest.raises(DriverError):
        driver.destroy(s.instance_id)
    assert driver.guest_info(s.instance_id).power_state is PowerState.RUNNING
    driver.destroy(s.instance_id)
    driver.faults.operation_failures["console_output"] = 1
    driver.destroy(s.instance_id)  # a missing guest never fails


@pytest.mark.parametrize(
    "plan", [{"operation_failures": {"spawn": 1}}, {"spawn_failure_rate": 1.5}, {"spawn_failures": -1}]
)
def test_fault_plans_are_checked(plan: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FaultPlan(**plan)


# --- events ---------------------------------------------------------------------------


def test_simulated_shutdown_and_crash_are_reported() -> None:
    driver, _, events = fake()
    a, b = spec(), spec()
    driver.spawn(a)
    driver.spawn(b)
    driver.simulate_shutdown(a.instance_id)
    driver.simulate_crash(b.instance_id)
    assert driver.guest_info(a.instance_id).power_state is PowerState.SHUTDOWN
    assert driver.guest_info(b.instance_id).power_state is PowerState.CRASHED
    assert events.of(a.instance_id) == [GuestEvent.STARTED, GuestEvent.STOPPED]
    assert events.of(b.instance_id) == [GuestEvent.STARTED, GuestEvent.CRASHED]
    assert b"Kernel panic" in driver.console_output(b.instance_id)
    with pytest.raises(InvalidGuestState):
        driver.simulate_crash(a.instance_id)
    driver.power_off(b.instance_id)  # a crashed guest is off already
    driver.reboot(b.instance_id, hard=True)
    assert events.of(b.instance_id)[-1] is GuestEvent.STARTED
    with pytest.raises(GuestNotFound):
        driver.simulate_shutdown("i-00000000000000404")


def test_driver_calls_report_their_transitions_too() -> None:
    driver, _, events = fake()
    s = spec()
    driver.spawn(s)
    driver.power_off(s.instance_id)
    driver.power_off(s.instance_id)
    driver.power_on(s.instance_id)
    driver.reboot(s.instance_id)
    driver.destroy(s.instance_id)
    assert events.of(s.instance_id) == [
        GuestEvent.STARTED,
        GuestEvent.STOPPED,
        GuestEvent.STARTED,
        GuestEvent.STOPPED,
    ]


def test_the_event_handler_may_call_the_driver_and_may_fail(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[PowerState] = []
    driver = FakeDriver("h")

    def handler(instance_id: str, event: GuestEvent) -> None:
        seen.append(driver.guest_info(instance_id).power_state)  # no deadlock: called without the lock
        raise RuntimeError("handler bug")

    driver.init_host(handler)
    s = spec()
    with caplog.at_level(logging.ERROR):
        driver.spawn(s)
        driver.simulate_shutdown(s.instance_id)
    assert seen == [PowerState.RUNNING, PowerState.SHUTDOWN]
    assert "handler bug" in caplog.text
    driver.close()
    driver.init_host()
    driver.power_on(s.instance_id)
    assert len(seen) == 2, "close() unregisters the handler"


# --- console ----------------------------------------------------------------------------


def test_console_shows_a_boot_log_with_user_data() -> None:
    driver, _, _ = fake()
    script = "#!/bin/sh\necho hello from $(hostname)\necho 'two words'\ntouch /tmp/x\n"
    s = spec(user_data=b64(script), key_name="my-key", nics=(SPECS.nic(),), hostname="web-1")
    driver.spawn(s)
    text = driver.console_output(s.instance_id).decode()
    assert s.instance_id in text and "web-1 login:" in text and "host-1" in text
    assert "running user-data script /bin/sh" in text
    assert "hello from $(hostname)" in text and "two words" in text and "touch" not in text
    assert "'my-key'" in text and "10.0.0.5" in text and "02:00:0a:00:00:05" in text
    assert driver.guest_info(s.instance_id).console_bytes == len(text.encode())


@pytest.mark.parametrize(
    ("user_data", "expected"),
    [("", "no user-data"), (b64("#cloud-config\npackages: []\n"), "cloud-config"), (b64("xyz"), "ignored")],
)
def test_console_describes_other_user_data(user_data: str, expected: str) -> None:
    driver, _, _ = fake()
    s = spec(user_data=user_data)
    driver.spawn(s)
    assert expected in driver.console_output(s.instance_id).decode()


def test_console_keeps_the_last_64_kib_across_reboots() -> None:
    driver, clock, _ = fake()
    s = spec()
    driver.spawn(s)
    for _ in range(200):
        clock.advance(1.0)
        driver.reboot(s.instance_id, hard=True)
    output = driver.console_output(s.instance_id)
    assert len(output) == CONSOLE_MAX_BYTES
    assert output.endswith(b"guest login: \r\n")
    assert b"boot=201\r\n" in output and b"boot=1\r\n" not in output


def test_console_lines_are_stamped_with_uptime() -> None:
    driver, clock, _ = fake()
    s = spec()
    driver.spawn(s)
    clock.advance(12.5)
    driver.power_off(s.instance_id)
    assert b"[   12.500000] ACPI: power button pressed" in driver.console_output(s.instance_id)


# --- devices ---------------------------------------------------------------------------


def test_boot_volumes_and_interfaces_come_from_the_spec(tmp_path: Any) -> None:
    driver, _, _ = fake()
    volume = SPECS.volume(tmp_path)
    s = spec(volumes=(volume,), nics=(SPECS.nic(),))
    info = driver.spawn(s)
    assert info.volumes == (volume.volume_id,) and info.interfaces == ("02:00:0a:00:00:05",)
    with pytest.raises(DriverError, match="already attached"):
        driver.attach_volume(s.instance_id, SPECS.volume(tmp_path, device="/dev/sdg"))


# --- threads ---------------------------------------------------------------------------


def test_concurrent_spawns_never_overcommit() -> None:
    driver, _, _ = fake(vcpus=50, memory_mib=10**6, disk_gib=10**4)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(6):
            try:
                driver.spawn(spec())
                ok = True
            except SpawnFailed as exc:
                assert "insufficient capacity" in exc.reason
                ok = False
            with lock:
                outcomes.append(ok)

    threads = [threading.Thread(target=work) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(True) == 50 and outcomes.count(False) == 10
    res = driver.host_resources()
    assert (res.vcpus_used, res.guests) == (50, 50)
