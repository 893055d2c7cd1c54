"""Two schedulers deciding batches of launches at once on one PostgreSQL database never
overcommit a host nor place an instance twice.

Each scheduler endpoint gets many ``schedule_instances`` calls at the same moment from
threads of its own (as the bus server's workers hand them over), so its combiner decides
them in batches: one transaction of claims for several launches. Both read the hosts once
and keep that view (a long ``host_view_ttl``), so each decides on states the other has
changed: claims are lost and scheduled again, launches that no longer fit are refused.

Proves: every launch is either placed whole (its instances each on one host, one spawn
each) or refused with NoValidHost and deleted; the hosts' claims equal what their live
instances use and never exceed their capacity; exactly as many instances were placed as
the hosts hold; and the batched path ran (some batch held more than one launch).
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import select

from ocs.db import accounts
from ocs.db import compute as repo
from ocs.db import engine as db_engine
from ocs.db import hosts as db_hosts
from ocs.db.models.compute import Host, Instance
from ocs.scheduler.core import NoValidHost, Ratios
from ocs.scheduler.rpcapi import ScheduleInstances
from ocs.scheduler.service import SchedulerEndpoint, SchedulerSettings
from tests.dbfixtures import *  # noqa: F403

ZONE = "us-east-1a"
HOSTS = 3
PER_HOST = 4  # 8 vCPUs, no overcommit, 2 vCPUs each
LAUNCHES = 12  # per scheduler: twice what the hosts hold in all


class _Agents:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spawned: list[tuple[str, str]] = []

    def spawn(self, message: object) -> None:
        with self.lock:
            self.spawned.append((message.spec.instance_id, message.host))  # type: ignore[attr-defined]


def _endpoint(url: str, name: str, agents: _Agents) -> SchedulerEndpoint:
    sessions = db_engine.session_factory(db_engine.make_engine(url, pool_size=LAUNCHES, max_overflow=4))
    settings = SchedulerSettings(
        host=name, service_down_time=3600.0, host_view_ttl=3600.0, ratios=Ratios(1.0, 1.0, 1.0)
    )
    return SchedulerEndpoint(sessions, agents, settings)  # type: ignore[arg-type]


def _launch(sessions, account: str, count: int) -> list[str]:
    spec = repo.LaunchSpec(
        image_id="ami-00000000000000001", instance_type="t3.micro", vcpus=2, memory_mib=1024,
        disk_gib=8, architecture="x86_64", availability_zone=ZONE, subnet_id="subnet-00000000000000001",
        subnet_cidr="10.0.0.0/8", vpc_id="vpc-00000000000000001", security_group_ids=(),
        root_device_name="/dev/sda1",
    )  # fmt: skip
    with db_engine.transaction(sessions) as s:
        return [i.id for i in repo.launch(s, account, spec, count)[1]]


@pytest.mark.parametrize("sizes", [(1,), (1, 2)], ids=["singles", "singles-and-pairs"])
def test_two_schedulers_deciding_batches_at_once_never_overcommit(postgres_url, sizes):
    agents = _Agents()
    first, second = _endpoint(postgres_url, "sched-1", agents), _endpoint(postgres_url, "sched-2", agents)
    sessions = first.sessions
    with db_engine.transaction(sessions) as s:
        account = accounts.create_account(s, "race").id
        for i in range(HOSTS):
            db_hosts.upsert_host(s, db_hosts.HostFacts(
                name=f"h{i}", availability_zone=ZONE, hypervisor_type="fake", hypervisor_version="1",
                architectures=("x86_64",), vcpus=2 * PER_HOST, memory_mib=64 * 1024, disk_gib=1000,
            ))  # fmt: skip
    for endpoint in (first, second):
        endpoint.view._current()  # both read the hosts before any claim, and keep that view
    # Launches of ``sizes`` instances (all or nothing: min_count is the size), half to each scheduler.
    launches = [
        (_launch(sessions, account, sizes[i % len(sizes)]), endpoint)
        for i in range(LAUNCHES)
        for endpoint in (first, second)
    ]
    outcomes: dict[int, object] = {}
    barrier = threading.Barrier(len(launches))

    def run(n: int, ids: list[str], endpoint: SchedulerEndpoint) -> None:
        barrier.wait()
        try:
            outcomes[n] = endpoint.schedule_instances(ScheduleInstances(ids, min_count=len(ids)))
        except NoValidHost as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=run, args=(n, ids, ep)) for n, (ids, ep) in enumerate(launches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(outcomes) == len(launches), "a schedule_instances call did not return"

    with db_engine.transaction(sessions) as s:
        rows = {i.id: i for i in s.scalars(select(Instance))}
        hosts = {h.name: h for h in s.scalars(select(Host))}
    placed: list[str] = []
    for n, (ids, _) in enumerate(launches):
        result = outcomes[n]
        if isinstance(result, NoValidHost):
            assert not any(i in rows for i in ids), "a refused launch left instances behind"
        else:
            assert sorted(result.placed) == sorted(ids), "a launch was placed in part"  # type: ignore[attr-defined]
            assert all(rows[i].host in hosts and rows[i].task == "spawning" for i in ids)
            placed += ids
    if sizes == (1,):  # claims are never given back: a refusal means the hosts were full
        assert len(placed) == HOSTS * PER_HOST
    else:  # a pair abandoned after claiming one host gives it back, maybe after another's refusal
        assert HOSTS * PER_HOST // 2 <= len(placed) <= HOSTS * PER_HOST
    assert sorted(i for i, _ in agents.spawned) == sorted(placed)  # one spawn each, none for the refused
    assert all(rows[i].host == host for i, host in agents.spawned)
    live = Counter(rows[i].host for i in placed)
    for name, host in hosts.items():
        assert host.instance_count == live[name] <= PER_HOST
        assert host.vcpus_used == 2 * live[name] <= host.vcpus
        assert host.memory_mib_used == 1024 * live[name]
    assert max(first.combiner.largest, second.combiner.largest) > 1  # the batched path decided
