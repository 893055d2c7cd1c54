"""What the hypervisors do by themselves, and how the database follows: guests
that power off or crash, guests nobody knows, lost events, restarts, timeouts
and the purge of terminated instances. One process, memory bus, fake hosts.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from ocs.compute_agent.driver import GuestSpec, ImageRef, PowerState
from ocs.db import hosts as db_hosts
from ocs.db.models.compute import Host, Instance
from ocs.scheduler.periodic import Periodic
from ocs.scheduler.service import SchedulerEndpoint
from tests.framework.cloud import Cloud
from tests.functional.test_scheduling import (
    describe,
    hosts_of,
    new_cloud,
    run,
    states,
    wait_for,
    wait_states,
)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    c = new_cloud(
        tmp_path_factory.mktemp("reconcile"),
        compute={"fake_hosts": 2, "heartbeat_interval": 1},
        scheduler={"periodic_interval": 1},
    )
    yield c
    c.stop()


@pytest.fixture(scope="module")
def ec2(cloud: Cloud) -> Any:
    return cloud.client()


def running_on(cloud: Cloud, ec2: Any, **kw: Any) -> tuple[str, Any]:
    """A new running instance and the fake hypervisor it runs on."""
    [iid] = run(ec2, **kw)
    wait_states(ec2, [iid], "running")
    host = hosts_of(cloud, [iid])[iid]
    assert host is not None
    return iid, cloud.aio.agent(host).driver


def heartbeat(cloud: Cloud) -> None:
    for agent in cloud.aio.agents:
        assert agent.report()


def settle(cloud: Cloud) -> None:
    """Let the reconcile grace pass, then make every host report."""
    time.sleep(cloud.aio.scheduler.endpoint.settings.reconcile_grace + 0.1)
    heartbeat(cloud)


# --- guests that act by themselves ---------------------------------------------------------


def test_a_guest_that_powers_off_stops_its_instance(cloud, ec2):
    iid, driver = running_on(cloud, ec2)
    driver.simulate_shutdown(iid)
    item = wait_states(ec2, [iid], "stopped")[iid]
    assert item["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    assert item["StateReason"]["Message"] == "Client.InstanceInitiatedShutdown: Instance initiated shutdown"
    assert item["StateTransitionReason"].startswith("User initiated (")
    ec2.start_instances(InstanceIds=[iid])
    item = wait_states(ec2, [iid], "running")[iid]
    assert "StateReason" not in item
    assert driver.guest_info(iid).power_state is PowerState.RUNNING


def test_a_guest_that_powers_off_with_terminate_behaviour_is_terminated(cloud, ec2):
    iid, driver = running_on(cloud, ec2, InstanceInitiatedShutdownBehavior="terminate")
    driver.simulate_shutdown(iid)
    item = wait_states(ec2, [iid], "terminated")[iid]
    assert item["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    wait_for(lambda: iid not in {g.instance_id for g in driver.list_guests()}, 5, "guest destroyed")


def test_a_crashed_guest_stops_its_instance_with_a_server_error(cloud, ec2):
    iid, driver = running_on(cloud, ec2)
    driver.simulate_crash(iid)
    item = wait_states(ec2, [iid], "stopped")[iid]
    assert item["StateReason"]["Code"] == "Server.InternalError"
    ec2.start_instances(InstanceIds=[iid])  # a hard start brings it back
    wait_states(ec2, [iid], "running")


def test_stop_and_start_keep_the_instance_on_its_host(cloud, ec2):
    iid, driver = running_on(cloud, ec2)
    host = hosts_of(cloud, [iid])[iid]
    ec2.stop_instances(InstanceIds=[iid])
    item = wait_states(ec2, [iid], "stopped")[iid]
    assert item["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    assert driver.guest_info(iid).power_state is PowerState.SHUTDOWN
    ec2.start_instances(InstanceIds=[iid])
    wait_states(ec2, [iid], "running")
    assert hosts_of(cloud, [iid])[iid] == host


def test_reboot_keeps_the_instance_running(cloud, ec2):
    iid, driver = running_on(cloud, ec2)
    boots = driver._guests[iid].boots
    ec2.reboot_instances(InstanceIds=[iid])
    wait_for(lambda: driver._guests[iid].boots == boots + 1, 5, "reboot")
    assert states(ec2, [iid]) == {iid: "running"}


# --- what the heartbeat repairs -----------------------------------------------------------------


def test_a_guest_nobody_knows_is_destroyed(cloud):
    driver = cloud.aio.agent("fake-1").driver
    stray = "i-0123456789abcdef0"
    driver.spawn(
        GuestSpec(instance_id=stray, vcpus=1, memory_mib=256, disk_gib=1, image=ImageRef("ami-1", ""))
    )
    heartbeat(cloud)
    wait_for(lambda: stray not in {g.instance_id for g in driver.list_guests()}, 5, "stray guest destroyed")


def test_a_guest_the_host_lost_stops_its_instance_and_start_builds_it_again(cloud, ec2):
    iid, driver = running_on(cloud, ec2)
    with driver._lock:  # the hypervisor forgets the guest, without any event
        del driver._guests[iid]
    settle(cloud)
    item = wait_states(ec2, [iid], "stopped")[iid]
    assert item["StateReason"]["Code"] == "Server.InternalError"
    assert "lost" in item["StateReason"]["Message"]
    ec2.start_instances(InstanceIds=[iid])
    wait_states(ec2, [iid], "running")
    assert driver.guest_info(iid).power_state is PowerState.RUNNING


def test_a_guest_started_behind_the_clouds_back_is_stopped_again(cloud, ec2):
    iid, driver = running_on(cloud, ec2)
    ec2.stop_instances(InstanceIds=[iid])
    wait_states(ec2, [iid], "stopped")
    driver.power_on(iid)  # someone powers it on by hand on the host
    settle(cloud)
    wait_for(lambda: driver.guest_info(iid).power_state is PowerState.SHUTDOWN, 5, "guest stopped again")
    assert states(ec2, [iid]) == {iid: "stopped"}


def test_a_lost_spawned_event_is_repaired_by_the_heartbeat(cloud, ec2):
    endpoints = [agent.endpoint for agent in cloud.aio.agents]
    originals = [ep.tell for ep in endpoints]

    def forgetful(told: Any) -> Any:
        def tell(instance_id: str, event: str, *args: Any, **kw: Any) -> None:
            if event != "spawned":
                told(instance_id, event, *args, **kw)

        return tell

    for ep, told in zip(endpoints, originals, strict=True):
        ep.tell = forgetful(told)  # type: ignore[method-assign]
    try:
        [iid] = run(ec2)
        host = hosts_of(cloud, [iid])[iid]
        driver = cloud.aio.agent(host).driver
        wait_for(lambda: iid in {g.instance_id for g in driver.list_guests()}, 5, "guest built")
        assert states(ec2, [iid]) == {iid: "pending"}
    finally:
        for ep, told in zip(endpoints, originals, strict=True):
            ep.tell = told  # type: ignore[method-assign]
    settle(cloud)
    wait_states(ec2, [iid], "running")


# --- timeouts and the purge ----------------------------------------------------------------------


def test_a_build_that_takes_too_long_is_given_up(cloud, ec2):
    agents = cloud.aio.agents
    for agent in agents:
        agent.driver.boot_delay = 1.5
    try:
        [iid] = run(ec2)
        host = hosts_of(cloud, [iid])[iid]
        ep = cloud.aio.scheduler.endpoint
        later = SchedulerEndpoint(
            ep.sessions,
            ep.compute,
            ep.settings,
            now=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ep.settings.build_timeout + 1),
        )
        assert Periodic(later).give_up_stuck() >= 1
        item = describe(ec2, [iid])[iid]
        assert item["State"]["Name"] == "terminated"
        assert item["StateReason"]["Code"] == "Server.InternalError"
        assert "took too long" in item["StateReason"]["Message"]
        # the guest that appears after all is destroyed
        driver = cloud.aio.agent(host).driver
        wait_for(lambda: iid not in {g.instance_id for g in driver.list_guests()}, 5, "late guest destroyed")
    finally:
        for agent in agents:
            agent.driver.boot_delay = 0.0


def test_a_build_on_a_host_that_went_silent_is_rescheduled_and_its_late_guest_destroyed(tmp_path):
    """The agent of the host building an instance stops reporting (as if killed): after
    service_down_time the periodic task builds it on the other host; when the silent
    host finishes its build after all, that guest is destroyed."""
    cloud = new_cloud(
        tmp_path,
        compute={"fake_hosts": 2, "heartbeat_interval": 1},
        scheduler={"periodic_interval": 1, "service_down_time": 2},
    )
    try:
        ec2 = cloud.client()
        slow, other = cloud.aio.agents
        slow.driver.boot_delay = 6.0
        with cloud.session() as s:
            db_hosts.set_enabled(s, other.settings.host, False)
        [iid] = run(ec2)
        with cloud.session() as s:
            db_hosts.set_enabled(s, other.settings.host, True)
        assert hosts_of(cloud, [iid])[iid] == slow.settings.host
        beat = slow.report
        slow.report = lambda: True  # type: ignore[method-assign]  # silent from now on
        try:
            item = wait_states(ec2, [iid], "running", timeout=10)[iid]
        finally:
            slow.report = beat  # type: ignore[method-assign]
        assert "StateReason" not in item or item["StateReason"]["Code"] != "Server.InternalError"
        with cloud.session() as s:
            row = s.get(Instance, iid)
            assert (row.host, row.hosts_tried) == (other.settings.host, [slow.settings.host])
            assert s.get(Host, slow.settings.host).instance_count == 0  # its claim was released
        wait_for(
            lambda: iid not in {g.instance_id for g in slow.driver.list_guests()}, 15, "late guest destroyed"
        )
        assert iid in {g.instance_id for g in other.driver.list_guests()}
        assert states(ec2, [iid]) == {iid: "running"}
    finally:
        cloud.stop()


def test_terminated_instances_are_purged_after_the_ttl(tmp_path):
    cloud = new_cloud(tmp_path, scheduler={"periodic_interval": 1}, ec2={"terminated_instance_ttl": 1})
    try:
        ec2 = cloud.client()
        ids = run(ec2, 2)
        ec2.create_tags(Resources=ids, Tags=[{"Key": "k", "Value": "v"}])
        wait_states(ec2, ids, "running")
        ec2.terminate_instances(InstanceIds=ids)
        wait_states(ec2, ids, "terminated")
        wait_for(lambda: ec2.describe_instances()["Reservations"] == [], 10, "purge")
        assert ec2.describe_tags()["Tags"] == []
        with cloud.session() as s:
            assert s.scalars(select(Instance)).all() == []
    finally:
        cloud.stop()


# --- restart ------------------------------------------------------------------------------------


def test_restart_keeps_every_instance_and_start_builds_them_again(tmp_path):
    overrides = {"compute": {"fake_hosts": 2}}
    first = new_cloud(tmp_path, **overrides)
    ec2 = first.client()
    running = run(ec2, 2)
    stopped = run(ec2, 1)
    wait_states(ec2, running + stopped, "running")
    ec2.stop_instances(InstanceIds=stopped)
    wait_states(ec2, stopped, "stopped")
    placed = hosts_of(first, running + stopped)
    first.stop()

    again = new_cloud(tmp_path, **overrides)
    try:
        ec2 = again.client()
        assert all(a.driver.list_guests() == [] for a in again.aio.agents)  # empty hypervisors
        settle(again)
        items = wait_states(ec2, running + stopped, "stopped")
        for iid in running:
            assert items[iid]["StateReason"]["Code"] == "Server.InternalError"
        assert items[stopped[0]]["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
        ec2.start_instances(InstanceIds=running + stopped)
        wait_states(ec2, running + stopped, "running")
        assert hosts_of(again, running + stopped) == placed
        guests = {g.instance_id for a in again.aio.agents for g in a.driver.list_guests()}
        assert guests == set(running + stopped)
    finally:
        again.stop()
