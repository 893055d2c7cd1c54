"""Two schedulers racing for the last capacity never overcommit a host, on a real
multi-process cluster (``ocs-manage devcluster``: ocs-api under gunicorn with 2
workers, 2 ``ocs-scheduler`` processes on one queue, ocs-network, one fake compute
host; the machine's RabbitMQ and PostgreSQL).

The host has room for exactly ``N`` t3.micro (2 vCPUs each, no CPU overcommit);
``2N`` clients each ask for one at the same moment, while a reader polls the
``hosts`` table.

Proves: exactly ``N`` RunInstances succeed and their instances run; every other one
is refused with ``InsufficientInstanceCapacity`` (or, launched, ends ``terminated``
with a StateReason); the host's claims never went past its capacity at any poll,
and at the end equal what its live instances use.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ocs.db.engine import make_engine, session_factory, transaction
from ocs.db.models.compute import Host, Instance
from tests.framework.devcluster import DevCluster, dev_cluster
from tests.integration.cluster.faults import Outcome, attempt, demo_image, describe, ec2_client

ZONE = "us-east-1a"
N = 8  # instances the host holds
VCPUS = 2 * N  # t3.micro: 2 vCPUs

CONFIG = f"""
[compute]
heartbeat_interval = 1
availability_zone = {ZONE}
fake_boot_delay = 0.3
fake_vcpus = {VCPUS}

[scheduler]
cpu_allocation_ratio = 1.0
periodic_interval = 1

[api]
throttling = false
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DevCluster]:
    started = time.monotonic()
    with dev_cluster(
        tmp_path / "dc", "--hosts", "1", "--schedulers", "2", "--api-workers", "2", config_text=CONFIG
    ) as c:
        print(f"dev cluster up in {time.monotonic() - started:.1f} s")
        try:
            yield c
        finally:
            print(c.log_tails())


class HostWatch:
    """Polls the hosts table until stopped; records the highest claims seen."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, pool_size=1)
        self.sessions = session_factory(self.engine)
        self.peak_vcpus = self.peak_count = self.polls = self.capacity = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def hosts(self) -> list[Host]:
        with transaction(self.sessions) as s:
            rows = list(s.scalars(select(Host)))
            s.expunge_all()
            return rows

    def _run(self) -> None:
        while not self._stop.is_set():
            for h in self.hosts():
                self.capacity = h.vcpus
                self.peak_vcpus = max(self.peak_vcpus, h.vcpus_used)
                self.peak_count = max(self.peak_count, h.instance_count)
            self.polls += 1
            time.sleep(0.01)

    def __enter__(self) -> HostWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)
        self.engine.dispose()


def live_instances(url: str) -> list[str]:
    engine = make_engine(url, pool_size=1)
    try:
        with transaction(session_factory(engine)) as s:
            return list(s.scalars(select(Instance.id).where(Instance.state != "terminated")))
    finally:
        engine.dispose()


@pytest.mark.slow
def test_two_schedulers_racing_for_the_last_capacity_never_overcommit(cluster: DevCluster) -> None:
    t0 = time.monotonic()
    cluster.manage("quota", "set", "admin", "--instances", "100", "--vcpus", "400")
    image = demo_image(cluster)
    clients = [ec2_client(cluster, 45) for _ in range(2 * N)]
    gate = threading.Barrier(2 * N)
    outcomes: list[Outcome] = []

    def one(ec2: Any) -> None:
        gate.wait(30)
        outcomes.append(
            attempt(
                "RunInstances",
                lambda: ec2.run_instances(
                    ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                    Placement={"AvailabilityZone": ZONE},
                ),
            )
        )  # fmt: skip

    with HostWatch(cluster.database_url) as watch:
        threads = [threading.Thread(target=one, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        burst = time.monotonic() - t0
        ok = [o for o in outcomes if o.ok]
        refused = Counter(o.code for o in outcomes if not o.ok)
        launched = [i["InstanceId"] for o in ok for i in o.value["Instances"]]
        assert len(outcomes) == 2 * N
        assert set(refused) <= {"InsufficientInstanceCapacity"}, refused
        ec2 = clients[0]
        deadline = time.monotonic() + 30
        while True:
            items = describe(ec2, launched) if launched else {}
            states = Counter(item["State"]["Name"] for item in items.values())
            if set(states) <= {"running", "terminated"}:
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.3)
        [host] = watch.hosts()
    running = [i for i, item in items.items() if item["State"]["Name"] == "running"]
    for item in items.values():
        if item["State"]["Name"] == "terminated":
            assert item["StateReason"]["Code"], item
    assert len(running) == N, (len(running), states, refused)
    assert watch.capacity == VCPUS
    assert watch.peak_vcpus <= VCPUS and watch.peak_count <= N, (watch.peak_vcpus, watch.peak_count)
    assert host.vcpus_used == VCPUS and host.instance_count == N
    assert sorted(live_instances(cluster.database_url)) == sorted(running)
    print(
        f"{2 * N} concurrent RunInstances for a host of {N}: {len(ok)} answered, {dict(refused)} refused; "
        f"{len(running)} running; peak claims {watch.peak_vcpus}/{VCPUS} vCPUs, {watch.peak_count}/{N} "
        f"instances over {watch.polls} polls; burst {burst:.1f} s, test body {time.monotonic() - t0:.1f} s"
    )
