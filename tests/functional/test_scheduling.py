"""Scheduling end to end in one process: boto3 → API → scheduler → fake agents, on the memory bus.

Each test builds the cloud it needs (hosts, zones, capacity, timings) and plays
failures through the fake hypervisors of ``cloud.aio.agents``.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import func, select

from ocs import errors
from ocs.db import compute as db_compute
from ocs.db import engine as db_engine
from ocs.db import vpcs as db_vpcs
from ocs.db.models.compute import Host, Instance
from ocs.db.models.images import Image
from ocs.scheduler.core import Ratios
from ocs.scheduler.rpcapi import ScheduleInstances, SchedulerApi
from ocs.scheduler.service import SchedulerService
from tests.dbfixtures import throwaway_database
from tests.framework.cloud import Cloud

MANAGE = str(Path(sys.executable).with_name("ocs-manage"))
ZONE = "us-east-1a"


# --- helpers -----------------------------------------------------------------------------


def wait_for(what: Callable[[], Any], timeout: float = 10.0, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.02)


def describe(ec2: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=ids)
    return {i["InstanceId"]: i for page in pages for r in page["Reservations"] for i in r["Instances"]}


def states(ec2: Any, ids: list[str]) -> dict[str, str]:
    return {k: v["State"]["Name"] for k, v in describe(ec2, ids).items()}


def wait_states(ec2: Any, ids: list[str], want: str, timeout: float = 10.0) -> dict[str, dict[str, Any]]:
    wait_for(lambda: set(states(ec2, ids).values()) == {want}, timeout, f"{ids} {want}")
    return describe(ec2, ids)


def image_id(ec2: Any) -> str:
    return ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"][0]["ImageId"]


def run(
    ec2: Any, count: int = 1, min_count: int | None = None, zone: str | None = ZONE, **kw: Any
) -> list[str]:
    if zone:
        kw["Placement"] = {"AvailabilityZone": zone}
    out = ec2.run_instances(
        ImageId=image_id(ec2), InstanceType="t3.micro", MinCount=min_count or count, MaxCount=count, **kw
    )
    return [i["InstanceId"] for i in out["Instances"]]


def hosts_of(cloud: Cloud, ids: list[str]) -> dict[str, str | None]:
    with cloud.session() as s:
        return dict(s.execute(select(Instance.id, Instance.host).where(Instance.id.in_(ids))).all())


def host_rows(cloud: Cloud) -> dict[str, Host]:
    with cloud.session() as s:
        return {h.name: h for h in s.scalars(select(Host))}


def alive(cloud: Cloud, name: str, down_after: float) -> bool:
    beat = host_rows(cloud)[name].last_heartbeat
    return beat is not None and (dt.datetime.now(dt.UTC) - beat).total_seconds() <= down_after


def manage(cloud: Cloud, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MANAGE, "--config-file", str(cloud.aio.conf_file), *args], capture_output=True, text=True, timeout=60
    )


class DbCloud(Cloud):
    """A cloud on the database of ``[database] connection`` (the framework's
    helpers assume the all-in-one's SQLite file)."""

    def session(self):  # type: ignore[no-untyped-def]
        url = self.conf.database.connection or db_engine.default_url(str(self.state_dir))
        return db_engine.transaction(db_engine.session_factory(db_engine.make_engine(url, pool_size=1)))


def new_cloud(tmp_path: Path, **groups: dict[str, Any]) -> Cloud:
    overrides: dict[str, dict[str, Any]] = {"compute": {"availability_zone": ZONE}}
    for group, values in groups.items():
        overrides.setdefault(group, {}).update(values)
    return DbCloud(tmp_path, overrides).start()


@pytest.fixture
def make_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Cloud]]:
    made: list[Cloud] = []

    def make(**groups: dict[str, Any]) -> Cloud:
        made.append(new_cloud(tmp_path_factory.mktemp("cloud"), **groups))
        return made[-1]

    yield make
    for c in made:
        c.stop()


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """Three fake hosts, one per availability zone."""
    c = Cloud(tmp_path_factory.mktemp("three"), {"compute": {"fake_hosts": 3}}).start()
    yield c
    c.stop()


# --- the whole path ------------------------------------------------------------------------


def test_run_instances_reach_running_and_terminate(three):
    ec2 = three.client()
    ids = run(ec2, 3, zone="us-east-1b")
    assert set(states(ec2, ids).values()) <= {"pending", "running"}
    items = wait_states(ec2, ids, "running")
    assert {i["Placement"]["AvailabilityZone"] for i in items.values()} == {"us-east-1b"}
    assert set(hosts_of(three, ids).values()) == {"fake-2"}  # the host of that zone
    used = host_rows(three)["fake-2"]
    assert (used.instance_count, used.vcpus_used) == (3, 3 * 2)
    console = ec2.get_console_output(InstanceId=ids[0])
    assert f"instance-id: {ids[0]}" in console["Output"]  # botocore decodes the base64
    ec2.terminate_instances(InstanceIds=ids)
    items = wait_states(ec2, ids, "terminated")
    assert all("PrivateIpAddress" not in i for i in items.values())
    host = host_rows(three)["fake-2"]
    assert (host.instance_count, host.vcpus_used, host.memory_mib_used) == (0, 0, 0)
    assert three.aio.agent("fake-2").driver.list_guests() == []


def test_fake_hosts_are_spread_over_the_zones(three):
    rows = host_rows(three)
    assert {n: h.availability_zone for n, h in rows.items()} == {
        "fake-1": "us-east-1a",
        "fake-2": "us-east-1b",
        "fake-3": "us-east-1c",
    }
    assert all(h.enabled and h.last_heartbeat is not None for h in rows.values())


def test_instances_spread_over_the_hosts_of_a_zone(make_cloud):
    cloud = make_cloud(compute={"fake_hosts": 3})
    ec2 = cloud.client()
    ids = run(ec2, 6)
    wait_states(ec2, ids, "running")
    assert Counter(hosts_of(cloud, ids).values()) == {"fake-1": 2, "fake-2": 2, "fake-3": 2}


def test_pack_fills_one_host_first(make_cloud):
    cloud = make_cloud(compute={"fake_hosts": 3}, scheduler={"weigher": "pack"})
    ec2 = cloud.client()
    ids = run(ec2, 4)
    wait_states(ec2, ids, "running")
    assert len(set(hosts_of(cloud, ids).values())) == 1


def test_capacity_limits_max_count_and_min_count_fails_cleanly(make_cloud):
    # two hosts of 4 vCPUs without overcommit: room for four 2-vCPU instances
    cloud = make_cloud(compute={"fake_hosts": 2, "fake_vcpus": 4}, scheduler={"cpu_allocation_ratio": 1.0})
    ec2 = cloud.client()
    with pytest.raises(ClientError) as exc:
        run(ec2, 5, min_count=5)
    assert exc.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
    assert "vCPU" in exc.value.response["Error"]["Message"]
    assert ec2.describe_instances()["Reservations"] == []  # nothing left behind
    assert all(h.vcpus_used == 0 for h in host_rows(cloud).values())
    ids = run(ec2, 10, min_count=1)
    assert len(ids) == 4
    wait_states(ec2, ids, "running")
    assert all(h.vcpus_used == 4 for h in host_rows(cloud).values())


# --- failures ---------------------------------------------------------------------------------


def test_a_failed_build_is_rescheduled_on_another_host(make_cloud):
    cloud = make_cloud(compute={"fake_hosts": 3}, scheduler={"max_attempts": 3})
    for name in ("fake-1", "fake-2"):  # empty hosts tie: fake-1, then fake-2, are tried first
        cloud.aio.agent(name).driver.faults.spawn_failures = 1
    ec2 = cloud.client()
    [iid] = run(ec2)
    item = wait_states(ec2, [iid], "running")[iid]
    assert "StateReason" not in item
    with cloud.session() as s:
        row = s.get(Instance, iid)
        assert (row.host, row.hosts_tried) == ("fake-3", ["fake-1", "fake-2"])
    rows = host_rows(cloud)
    assert [rows[n].instance_count for n in ("fake-1", "fake-2", "fake-3")] == [0, 0, 1]


def test_a_build_that_fails_everywhere_ends_terminated_with_a_reason(make_cloud):
    cloud = make_cloud(compute={"fake_hosts": 3}, scheduler={"max_attempts": 2})
    for agent in cloud.aio.agents:
        agent.driver.faults.spawn_failures = 5
        agent.driver.faults.spawn_failure_reason = "simulated disk failure"
    ec2 = cloud.client()
    [iid] = run(ec2)
    item = wait_states(ec2, [iid], "terminated")[iid]
    assert item["StateReason"]["Code"] == "Server.InternalError"
    assert item["StateReason"]["Message"].startswith("Server.InternalError: Internal error on launch")
    assert "simulated disk failure" in item["StateReason"]["Message"]
    with cloud.session() as s:
        assert len(s.get(Instance, iid).hosts_tried) == 2  # max_attempts hosts, no more
    assert all(h.instance_count == 0 and h.vcpus_used == 0 for h in host_rows(cloud).values())


def test_a_build_nobody_else_can_take_is_not_retried_forever(make_cloud):
    cloud = make_cloud(compute={"fake_hosts": 1}, scheduler={"max_attempts": 5})
    cloud.aio.agents[0].driver.faults.spawn_failures = 1
    ec2 = cloud.client()
    [iid] = run(ec2)
    item = wait_states(ec2, [iid], "terminated")[iid]
    assert "no other host" in item["StateReason"]["Message"]


def test_a_silent_host_gets_no_new_instances(make_cloud):
    cloud = make_cloud(compute={"fake_hosts": 2, "heartbeat_interval": 1}, scheduler={"service_down_time": 2})
    silent = cloud.aio.agent("fake-1")
    silent.stop()
    wait_for(lambda: not alive(cloud, "fake-1", 2), 6, "fake-1 down")
    ec2 = cloud.client()
    ids = run(ec2, 4)
    assert set(hosts_of(cloud, ids).values()) == {"fake-2"}
    wait_states(ec2, ids, "running")
    listed = json.loads(manage(cloud, "host", "list", "--json").stdout)
    assert {h["name"]: h["up"] for h in listed} == {"fake-1": False, "fake-2": True}
    services = json.loads(manage(cloud, "service", "list", "--json").stdout)
    assert {(r["service"], r["host"], r["up"]) for r in services if r["service"] == "compute"} == {
        ("compute", "fake-1", False),
        ("compute", "fake-2", True),
    }
    silent.start()  # it reports at once and takes instances again
    wait_for(lambda: alive(cloud, "fake-1", 1), 6, "fake-1 up")
    more = run(ec2, 4)
    assert "fake-1" in set(hosts_of(cloud, more).values())


def test_a_disabled_host_gets_no_new_instances(make_cloud):
    cloud = make_cloud(compute={"fake_hosts": 2})
    ec2 = cloud.client()
    before = run(ec2, 2)
    wait_states(ec2, before, "running")
    out = manage(cloud, "host", "disable", "fake-2", "--reason", "firmware upgrade")
    assert out.returncode == 0, out.stderr
    assert "disabled (firmware upgrade)" in out.stdout
    ids = run(ec2, 4)
    assert set(hosts_of(cloud, ids).values()) == {"fake-1"}
    assert set(states(ec2, before).values()) == {"running"}  # what it runs keeps running
    shown = json.loads(manage(cloud, "host", "show", "fake-2", "--json").stdout)
    assert (shown["enabled"], shown["disabled_reason"], shown["up"]) == (False, "firmware upgrade", True)
    assert shown["instance_states"] == {"running": 1}
    table = manage(cloud, "host", "list").stdout
    assert "disabled up" in table and "enabled up" in table
    assert manage(cloud, "host", "enable", "fake-2").returncode == 0
    ids = run(ec2, 6)
    assert "fake-2" in set(hosts_of(cloud, ids).values())


def test_host_commands_explain_errors_in_one_line(three):
    out = manage(three, "host", "show", "nosuch")
    assert out.returncode == 1
    assert out.stderr.strip() == "ocs-manage: error: The host 'nosuch' does not exist"


# --- several schedulers at once ------------------------------------------------------------------


def _check_claims(sessions: Any, limits: Ratios) -> dict[str, Host]:
    """Every host's claims equal what its live instances use, within its limits."""
    with db_engine.transaction(sessions) as s:
        rows = {h.name: h for h in s.scalars(select(Host))}
        live = dict(
            s.execute(
                select(Instance.host, func.sum(Instance.vcpus))
                .where(Instance.host.is_not(None), Instance.state != "terminated")
                .group_by(Instance.host)
            ).all()
        )
    for name, host in rows.items():
        assert host.vcpus_used <= host.vcpus * limits.cpu, name
        assert host.vcpus_used == (live.get(name) or 0), name
    return rows


def _second_scheduler(cloud: Cloud, sessions: Any) -> tuple[SchedulerService, Counter[str]]:
    """Another scheduler service on the same queue and database; counts who scheduled what."""
    aio = cloud.aio
    second = SchedulerService(aio.bus, sessions, aio.scheduler.endpoint.settings)
    calls: Counter[str] = Counter()
    for name, service in (("first", aio.scheduler), ("second", second)):
        served = service.endpoint.schedule_instances

        def counted(req: Any, served: Any = served, name: str = name) -> Any:
            calls[name] += 1
            return served(req)

        service.endpoint.schedule_instances = counted  # type: ignore[method-assign]
    second.start()
    return second, calls


def _pending_batches(cloud: Cloud, sessions: Any, batches: int) -> list[list[str]]:
    """``batches`` RunInstances' worth of pending instances (1 or 2 each), made by the API's repository."""
    cloud.client().describe_instances()  # the account's default network
    with db_engine.transaction(sessions) as s:
        subnet = db_vpcs.default_subnet_for_az(s, cloud.admin.account_id, ZONE)
        assert subnet is not None
        image = s.scalars(select(Image).where(Image.name == "ocs-demo")).one()
        spec = db_compute.LaunchSpec(
            image_id=image.id,
            instance_type="t3.micro",
            vcpus=2,
            memory_mib=1024,
            disk_gib=8,
            architecture="x86_64",
            availability_zone=ZONE,
            subnet_id=subnet.id,
            subnet_cidr=subnet.cidr_block,
            vpc_id=subnet.vpc_id,
            security_group_ids=(),
            root_device_name="/dev/sda1",
        )
        made = [db_compute.launch(s, cloud.admin.account_id, spec, 1 + n % 2)[1] for n in range(batches)]
        return [[i.id for i in group] for group in made]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_schedulers_never_overcommit(tmp_path, backend):
    """Two scheduler services on one queue, 50 concurrent requests for 75 instances,
    room for 12: every claim is backed by an instance and no host goes past its limit."""
    with throwaway_database(backend) as url:
        if backend == "sqlite":
            url = db_engine.default_url(str(tmp_path))
        cloud = new_cloud(
            tmp_path,
            database={"connection": url},
            compute={"fake_hosts": 3, "fake_vcpus": 8},
            scheduler={"cpu_allocation_ratio": 1.0, "host_subset_size": 2},
        )
        engine = db_engine.make_engine(url, pool_size=8)
        sessions = db_engine.session_factory(engine)
        second, calls = _second_scheduler(cloud, sessions)
        try:
            batches = _pending_batches(cloud, sessions, 50)
            client = SchedulerApi(cloud.aio.bus)

            def schedule(ids: list[str]) -> list[str]:
                try:
                    return client.schedule_instances(ScheduleInstances(ids, min_count=1)).placed
                except errors.InsufficientInstanceCapacity:
                    return []

            with ThreadPoolExecutor(50) as pool:
                placed = [i for ids in pool.map(schedule, batches) for i in ids]
            assert len(placed) == 12  # 3 hosts x 8 vCPUs / 2 vCPUs: all the room, never more
            assert calls["first"] and calls["second"], calls  # both took their share
            ec2 = cloud.client()
            wait_states(ec2, placed, "running", timeout=30)
            rows = _check_claims(sessions, Ratios(1.0, 1.0, 1.0))
            assert sum(h.instance_count for h in rows.values()) == 12
            with db_engine.transaction(sessions) as s:  # the unplaced ones are gone
                assert s.scalar(select(func.count()).select_from(Instance)) == 12
            for agent in cloud.aio.agents:  # and no build failed for want of room
                assert agent.driver.host_resources().vcpus_used == 8
        finally:
            second.stop()
            cloud.stop()
            engine.dispose()


def test_two_schedulers_behind_fifty_concurrent_run_instances(tmp_path):
    cloud = new_cloud(
        tmp_path,
        compute={"fake_hosts": 3, "fake_vcpus": 8},
        scheduler={"cpu_allocation_ratio": 1.0, "host_subset_size": 2},
    )
    engine = db_engine.make_engine(db_engine.default_url(str(tmp_path)))
    sessions = db_engine.session_factory(engine)
    second, calls = _second_scheduler(cloud, sessions)
    try:
        ec2 = cloud.client(max_pool_connections=50)
        image = image_id(ec2)

        def launch(n: int) -> list[str]:
            try:
                out = ec2.run_instances(
                    ImageId=image,
                    InstanceType="t3.micro",
                    MinCount=1,
                    MaxCount=1 + n % 2,
                    Placement={"AvailabilityZone": ZONE},
                )
            except ClientError as exc:
                # no room left, or the default quota of 20 instances counts pending ones
                assert exc.response["Error"]["Code"] in (
                    "InsufficientInstanceCapacity",
                    "InstanceLimitExceeded",
                )
                return []
            return [i["InstanceId"] for i in out["Instances"]]

        with ThreadPoolExecutor(50) as pool:
            launched = [i for ids in pool.map(launch, range(50)) for i in ids]
        assert 1 <= len(launched) <= 12
        wait_states(ec2, launched, "running", timeout=30)
        rows = _check_claims(sessions, Ratios(1.0, 1.0, 1.0))
        assert sum(h.instance_count for h in rows.values()) == len(launched)
    finally:
        second.stop()
        cloud.stop()
        engine.dispose()


# --- the all-in-one's lifecycle ------------------------------------------------------------------


def test_stop_leaves_no_thread_behind(tmp_path):
    before = {t.ident for t in threading.enumerate()}
    cloud = new_cloud(tmp_path, compute={"fake_hosts": 3})
    ec2 = cloud.client()
    wait_states(ec2, run(ec2, 2), "running")
    cloud.stop()

    def leftovers() -> list[str]:
        return [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]

    wait_for(lambda: not leftovers(), 5, "threads to end")
    assert cloud.aio.bus is None and cloud.aio.agents == []


def test_all_in_one_command_runs_several_fake_hosts_and_stops_on_sigterm(tmp_path):
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [MANAGE, "all-in-one", "--state-dir", str(state), "--listen", "127.0.0.1:0", "--fake-hosts", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while "Stop it with" not in (line := proc.stdout.readline() if proc.stdout else ""):
            assert line and time.monotonic() < deadline, "".join(lines)
            lines.append(line)
        assert any("compute hosts    fake-1, fake-2, fake-3" in x for x in lines), "".join(lines)
        out = subprocess.run(
            [MANAGE, "--config-file", str(state / "ocs.conf"), "host", "list", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        listed = json.loads(out.stdout)
        assert [(h["name"], h["availability_zone"], h["up"]) for h in listed] == [
            ("fake-1", "us-east-1a", True),
            ("fake-2", "us-east-1b", True),
            ("fake-3", "us-east-1c", True),
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    assert "OCS all-in-one stopped." in rest and "Traceback" not in rest


def test_fake_hosts_must_be_a_positive_number(tmp_path):
    out = subprocess.run(
        [MANAGE, "all-in-one", "--state-dir", str(tmp_path), "--fake-hosts", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "--fake-hosts: must be between 1 and 1000, not 0" in out.stderr
