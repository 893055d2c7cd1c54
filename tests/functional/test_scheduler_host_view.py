"""The scheduler's cached host view never places on a host changed since it was read."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from ocs.db import accounts
from ocs.db import compute as repo
from ocs.db import engine as db_engine
from ocs.db import hosts as db_hosts
from ocs.db.models.compute import Host, Instance
from ocs.scheduler.core import NoValidHost
from ocs.scheduler.rpcapi import ScheduleInstances
from ocs.scheduler.service import SchedulerEndpoint, SchedulerSettings
from tests.dbfixtures import *  # noqa: F403

ZONE = "us-east-1a"


class _NoAgents:
    def __init__(self) -> None:
        self.spawned: list[str] = []

    def spawn(self, message: object) -> None:
        self.spawned.append(message.spec.instance_id)  # type: ignore[attr-defined]


def _cloud(url: str, hosts: int, ttl: float) -> tuple[SchedulerEndpoint, object, str, _NoAgents]:
    sessions = db_engine.session_factory(db_engine.make_engine(url))
    with db_engine.transaction(sessions) as s:
        account = accounts.create_account(s, "view").id
        for i in range(hosts):
            db_hosts.upsert_host(s, db_hosts.HostFacts(
                name=f"h{i}", availability_zone=ZONE, hypervisor_type="fake", hypervisor_version="1",
                architectures=("x86_64",), vcpus=8, memory_mib=8192, disk_gib=1000,
            ))  # fmt: skip
    agents = _NoAgents()
    settings = SchedulerSettings(service_down_time=3600.0, host_view_ttl=ttl)
    return SchedulerEndpoint(sessions, agents, settings), sessions, account, agents  # type: ignore[arg-type]


def _launch(sessions, account: str, count: int = 1) -> list[str]:
    spec = repo.LaunchSpec(
        image_id="ami-00000000000000001", instance_type="t3.micro", vcpus=2, memory_mib=1024,
        disk_gib=8, architecture="x86_64", availability_zone=ZONE, subnet_id="subnet-00000000000000001",
        subnet_cidr="10.0.0.0/8", vpc_id="vpc-00000000000000001", security_group_ids=(),
        root_device_name="/dev/sda1",
    )  # fmt: skip
    with db_engine.transaction(sessions) as s:
        return [i.id for i in repo.launch(s, account, spec, count)[1]]


def _host_of(sessions, iid: str) -> str | None:
    with db_engine.transaction(sessions) as s:
        return s.get(Instance, iid).host


@pytest.mark.parametrize("change", ["disabled", "shrunk"])
def test_a_host_changed_after_the_view_was_read_gets_nothing(db_url, change):
    endpoint, sessions, account, agents = _cloud(db_url, 2, ttl=3600.0)
    first = _launch(sessions, account)
    endpoint.schedule_instances(ScheduleInstances(first, min_count=1))
    loads = endpoint.view.loads
    with db_engine.transaction(sessions) as s:  # the view would pick h1 next (spread)
        values = {"enabled": False} if change == "disabled" else {"vcpus": 2, "memory_mib": 512}
        s.execute(update(Host).where(Host.name == "h1").values(**values))
    for _ in range(3):
        ids = _launch(sessions, account)
        assert endpoint.schedule_instances(ScheduleInstances(ids, min_count=1)).placed == ids
        assert _host_of(sessions, ids[0]) == "h0"
    assert endpoint.view.loads > loads  # the lost claim made it read the hosts again
    assert len(agents.spawned) == 4
    assert _host_of(sessions, first[0]) == "h0"
    with db_engine.transaction(sessions) as s:
        assert s.get(Host, "h1").instance_count == 0


def test_room_made_elsewhere_is_used_within_the_ttl_and_refusals_read_fresh_states(db_url):
    endpoint, sessions, account, _ = _cloud(db_url, 1, ttl=3600.0)
    ids = _launch(sessions, account, 4)  # 8 vCPUs x ratio 4 / 2: 16 fit; 8 GiB / 1 GiB: 8 fit
    assert len(endpoint.schedule_instances(ScheduleInstances(ids, min_count=4)).placed) == 4
    with db_engine.transaction(sessions) as s:  # the agent reports more memory: the view is stale
        s.execute(update(Host).where(Host.name == "h0").values(memory_mib=16384))
    ids = _launch(sessions, account, 10)  # the view says 4 fit; the fresh read says 10 do
    assert len(endpoint.schedule_instances(ScheduleInstances(ids, min_count=10)).placed) == 10
    with pytest.raises(NoValidHost):
        endpoint.schedule_instances(ScheduleInstances(_launch(sessions, account, 3), min_count=3))
