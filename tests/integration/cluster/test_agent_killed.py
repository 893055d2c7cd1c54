"""kill -9 of a compute agent during a 50-instance RunInstances burst, on a real
multi-process cluster (``ocs-manage devcluster``: ocs-api under gunicorn with 2
workers, 2 schedulers, ocs-network, 4 fake compute hosts; RabbitMQ, PostgreSQL).

Every instance ends ``running`` (the builds the dead host had in flight are rebuilt
on a live one) or ``terminated`` with a StateReason; none stays pending past the
deadline the configuration sets; the dead host is shown down; nothing is lost or
doubled, and the hosts' claims add up.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ocs.db.engine import make_engine, session_factory, transaction
from ocs.db.models.compute import Host, Instance
from tests.framework.devcluster import DevCluster, dev_cluster

ZONE = "us-east-1a"
HOSTS = 4
CALLS, PER_CALL = 5, 10  # 50 instances
HEARTBEAT, DOWN_AFTER, BUILD_TIMEOUT, BOOT = 1, 4, 30, 1.5
#: No instance may still be pending this long after the last RunInstances returned.
PENDING_DEADLINE = BUILD_TIMEOUT + DOWN_AFTER + 10

CONFIG = f"""
[compute]
heartbeat_interval = {HEARTBEAT}
availability_zone = {ZONE}
fake_boot_delay = {BOOT}

[scheduler]
service_down_time = {DOWN_AFTER}
periodic_interval = 1
build_timeout = {BUILD_TIMEOUT}

[api]
throttling = false
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DevCluster]:
    started = time.monotonic()
    with dev_cluster(
        tmp_path / "dc", "--hosts", str(HOSTS), "--schedulers", "2", "--api-workers", "2", config_text=CONFIG
    ) as c:
        print(f"dev cluster up in {time.monotonic() - started:.1f} s")
        try:
            yield c
        finally:
            print(c.log_tails())  # shown when the test fails


class Db:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, pool_size=1)
        self.sessions = session_factory(self.engine)

    def instances(self, ids: list[str]) -> dict[str, Instance]:
        with transaction(self.sessions) as s:
            rows = s.scalars(select(Instance).where(Instance.id.in_(ids))).all()
            s.expunge_all()
            return {r.id: r for r in rows}

    def hosts(self) -> dict[str, Host]:
        with transaction(self.sessions) as s:
            rows = s.scalars(select(Host)).all()
            s.expunge_all()
            return {h.name: h for h in rows}


def run_batch(cluster: DevCluster, calls: int) -> list[str]:
    def one(_: int) -> list[str]:
        ec2 = cluster.ec2()
        image = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"][0]
        out = ec2.run_instances(
            ImageId=image["ImageId"],
            InstanceType="t3.micro",
            MinCount=PER_CALL,
            MaxCount=PER_CALL,
            Placement={"AvailabilityZone": ZONE},
        )
        return [i["InstanceId"] for i in out["Instances"]]

    with ThreadPoolExecutor(calls) as pool:
        return [iid for ids in pool.map(one, range(calls)) for iid in ids]


def describe(ec2: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=ids)
    return {i["InstanceId"]: i for page in pages for r in page["Reservations"] for i in r["Instances"]}


@pytest.mark.slow
def test_kill_9_of_a_compute_agent_during_a_burst(cluster: DevCluster) -> None:
    t0 = time.monotonic()
    cluster.manage("quota", "set", "admin", "--instances", "200", "--vcpus", "800")
    db = Db(cluster.database_url)
    try:
        ids = run_batch(cluster, 2)
        building = Counter(
            r.host for r in db.instances(ids).values() if r.state == "pending" and r.host is not None
        )
        assert building, "nothing was being built when the agent was to be killed"
        victim = building.most_common(1)[0][0]
        cluster.kill9(victim)
        killed_at = time.monotonic()
        ids += run_batch(cluster, CALLS - 2)
        burst_done = time.monotonic()
        assert len(ids) == len(set(ids)) == CALLS * PER_CALL

        time.sleep(0.5)  # the events the victim sent before it died are recorded by now
        before = db.instances(ids)
        stranded = {i for i, r in before.items() if r.host == victim and r.state == "pending"}
        ran_there = {i for i, r in before.items() if r.host == victim and r.state == "running"}
        assert stranded, "the victim had no build in flight: the test proved nothing"

        ec2 = cluster.ec2()
        deadline = burst_done + PENDING_DEADLINE
        while True:
            items = describe(ec2, ids)
            left = {i for i, item in items.items() if item["State"]["Name"] not in ("running", "terminated")}
            if not left:
                break
            assert time.monotonic() < deadline, (
                f"still not settled {PENDING_DEADLINE} s after the burst: {left}"
            )
            time.sleep(0.5)
        settled = time.monotonic()

        assert set(items) == set(ids), "instances lost or added"
        for iid, item in items.items():
            if item["State"]["Name"] == "terminated":
                assert item.get("StateReason", {}).get("Code"), f"{iid} terminated without a StateReason"

        after = db.instances(ids)
        rescheduled = set()
        for iid in stranded:
            row = after[iid]
            if row.state == "running":
                assert row.host != victim and victim in (row.hosts_tried or []), (
                    iid,
                    row.host,
                    row.hosts_tried,
                )
                rescheduled.add(iid)
        assert rescheduled, "no build of the dead host was rebuilt elsewhere"
        on_victim = {i for i, r in after.items() if r.host == victim and r.state != "terminated"}
        assert on_victim <= ran_there  # only what ran there before it died

        status = cluster.status()
        procs = {p["name"]: p["alive"] for p in status["processes"]}
        assert procs.pop(victim) is False
        assert all(procs.values()), procs
        ups = {h["name"]: h["up"] for h in status["hosts"]}
        assert ups == {f"host-{i}": f"host-{i}" != victim for i in range(1, HOSTS + 1)}
        assert f"{victim}  {ZONE}  enabled down" in cluster.manage("host", "list")

        # the claims add up: each host holds exactly its live instances
        hosts = db.hosts()
        for name, host in hosts.items():
            mine = [r for r in after.values() if r.host == name and r.state != "terminated"]
            assert host.instance_count == len(mine), (name, host.instance_count, len(mine))
            assert host.vcpus_used == sum(r.vcpus for r in mine)
    finally:
        db.engine.dispose()
    for log in ("api", "scheduler-1", "scheduler-2", "network"):
        assert "Traceback" not in (cluster.state_dir / "logs" / f"{log}.log").read_text(), log
    counts = Counter(r["State"]["Name"] for r in items.values())
    print(
        f"50 instances: {dict(counts)}; {len(stranded)} stranded on {victim}, {len(rescheduled)} rebuilt "
        f"elsewhere; settled {settled - killed_at:.1f} s after the kill; test body {time.monotonic() - t0:.1f} s"
    )
