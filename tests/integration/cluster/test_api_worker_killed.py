"""kill -9 of ocs-api's gunicorn workers while clients hammer RunInstances,
CreateSecurityGroup and AllocateAddress, on a real multi-process cluster
(``ocs-manage devcluster``: ocs-api under gunicorn with 2 workers, 2 schedulers,
ocs-network, 2 fake compute hosts; the machine's RabbitMQ and PostgreSQL).

Proves: whatever a killed worker was doing, the database holds no half-created
resource (every instance has its reservation and, unless terminated, its network
interface; no interface without its instance; no address row without its
interface; every security group has its rules); no instance stays pending (those
whose RunInstances died after committing are placed by the scheduler's periodic
tasks, ``orphan_timeout``); a RunInstances retried with its ClientToken after its
worker died answers the same reservation (nothing doubled); gunicorn replaced every
killed worker and the API serves on.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ocs import devcluster as dc
from ocs.db.engine import make_engine
from tests.framework.devcluster import DevCluster, dev_cluster
from tests.integration.cluster.faults import Outcome, attempt, demo_image, describe, ec2_client

ZONE = "us-east-1a"
KILLS = 3
ORPHAN_TIMEOUT = 3
SETTLE_WITHIN = 30.0

CONFIG = f"""
[compute]
heartbeat_interval = 1
availability_zone = {ZONE}
fake_boot_delay = 0.2
fake_vcpus = 512

[scheduler]
periodic_interval = 1
orphan_timeout = {ORPHAN_TIMEOUT}

[network]
public_address_pool = 198.51.100.0/24,203.0.113.0/24
elastic_ips_per_account = 300

[api]
throttling = false
"""

#: Rows that only a half-done creation would leave (each query lists offenders).
ORPHANS = {
    "instance without its reservation": """
        SELECT i.id FROM instances i LEFT JOIN reservations r ON r.id = i.reservation_id
        WHERE r.id IS NULL""",
    "live instance without its network interface": """
        SELECT i.id FROM instances i WHERE i.state <> 'terminated'
        AND NOT EXISTS (SELECT 1 FROM network_interfaces n WHERE n.instance_id = i.id)""",
    "interface of a missing instance": """
        SELECT n.id FROM network_interfaces n WHERE n.instance_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = n.instance_id)""",
    "interface of no instance (none was created alone)": """
        SELECT n.id FROM network_interfaces n WHERE n.instance_id IS NULL""",
    "private address of a missing interface": """
        SELECT a.address FROM interface_addresses a
        WHERE NOT EXISTS (SELECT 1 FROM network_interfaces n WHERE n.id = a.network_interface_id)""",
    "public address of a missing interface": """
        SELECT e.id FROM elastic_addresses e WHERE e.network_interface_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM network_interfaces n WHERE n.id = e.network_interface_id)""",
    "security group without its rules": """
        SELECT g.id FROM security_groups g
        WHERE NOT EXISTS (SELECT 1 FROM security_group_rules r WHERE r.group_id = g.id)""",
}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DevCluster]:
    started = time.monotonic()
    with dev_cluster(
        tmp_path / "dc", "--hosts", "2", "--schedulers", "2", "--api-workers", "2", config_text=CONFIG
    ) as c:
        print(f"dev cluster up in {time.monotonic() - started:.1f} s")
        try:
            yield c
        finally:
            print(c.log_tails())


def workers(cluster: DevCluster) -> list[int]:
    api = cluster.process("api")
    return [pid for pid in dc.members(api) if pid != api.pid]


class Hammer:
    """Clients calling one action in a loop until stopped; every outcome kept."""

    def __init__(self, cluster: DevCluster, image: str) -> None:
        self.cluster, self.image = cluster, image
        self.outcomes: list[Outcome] = []
        self.launches: dict[str, list[str]] = {}  # ClientToken -> instance ids once answered
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(action,), daemon=True)
            for action in ("RunInstances", "RunInstances", "CreateSecurityGroup", "AllocateAddress")
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _loop(self, action: str) -> None:
        ec2 = ec2_client(self.cluster, 30)
        while not self._stop.is_set():
            if action == "RunInstances":
                self._launch(ec2)
            elif action == "CreateSecurityGroup":
                name = f"hammer-{uuid.uuid4().hex[:10]}"
                self.outcomes.append(
                    attempt(
                        action, lambda n=name: ec2.create_security_group(GroupName=n, Description="hammered")
                    )
                )
            else:
                self.outcomes.append(attempt(action, lambda: ec2.allocate_address(Domain="vpc")))

    def _launch(self, ec2: Any) -> None:
        token = uuid.uuid4().hex
        for _ in range(20):  # retried with its token, as the SDKs do, until answered
            out = attempt(
                "RunInstances",
                lambda: ec2.run_instances(
                    ImageId=self.image, InstanceType="t3.micro", MinCount=2, MaxCount=2, ClientToken=token,
                    Placement={"AvailabilityZone": ZONE},
                ),
            )  # fmt: skip
            self.outcomes.append(out)
            if out.ok:
                ids = [i["InstanceId"] for i in out.value["Instances"]]
                assert self.launches.setdefault(token, ids) == ids
                return
            time.sleep(0.2)


def offenders(url: str) -> dict[str, list[Any]]:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            found = {what: list(conn.execute(text(q)).scalars()) for what, q in ORPHANS.items()}
    finally:
        engine.dispose()
    return {what: rows for what, rows in found.items() if rows}


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return {
                t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in ("instances", "network_interfaces", "security_groups", "elastic_addresses")
            }
    finally:
        engine.dispose()


@pytest.mark.slow
def test_api_workers_killed_mid_request_leave_nothing_half_made(cluster: DevCluster) -> None:
    t0 = time.monotonic()
    cluster.manage("quota", "set", "admin", "--instances", "400", "--vcpus", "1600")
    image = demo_image(cluster)
    before = workers(cluster)
    assert len(before) == 2, before
    hammer = Hammer(cluster, image)
    hammer.start()
    killed: list[int] = []
    try:
        time.sleep(2)
        for _ in range(KILLS):
            victim = workers(cluster)[0]
            os.kill(victim, signal.SIGKILL)  # by its PID: one gunicorn worker of the cluster
            killed.append(victim)
            time.sleep(2.5)
    finally:
        hammer.stop()
    burst = time.monotonic()

    # gunicorn replaced every killed worker; the API serves on
    deadline = time.monotonic() + 20
    while len(set(workers(cluster)) - set(killed)) < 2:
        assert time.monotonic() < deadline, (workers(cluster), killed)
        time.sleep(0.2)
    assert not set(workers(cluster)) & set(killed)
    ec2 = ec2_client(cluster, 30)
    assert ec2.describe_security_groups()["SecurityGroups"]

    outcomes = hammer.outcomes
    failed = Counter((o.action, o.code) for o in outcomes if not o.ok)
    cut = sum(
        n
        for (_, code), n in failed.items()
        if code in ("ConnectionClosedError", "ReadTimeoutError", "EndpointConnectionError")
    )
    assert cut, f"no request was cut by a kill: the test proved nothing ({failed})"
    unanswered = [t for t, ids in hammer.launches.items() if not ids]
    assert not unanswered

    # every launch settles: those answered and those whose worker died after committing
    engine = make_engine(cluster.database_url, pool_size=1)
    try:
        deadline = time.monotonic() + SETTLE_WITHIN
        while True:
            with engine.connect() as conn:
                rows = dict(conn.execute(text("SELECT id, state FROM instances")).all())
                tokens = Counter(conn.execute(text("SELECT client_token FROM instances")).scalars())
            unsettled = {i: s for i, s in rows.items() if s not in ("running", "terminated")}
            if not unsettled:
                break
            assert time.monotonic() < deadline, (
                f"still pending {SETTLE_WITHIN:g} s after the burst: {unsettled}"
            )
            time.sleep(0.5)
    finally:
        engine.dispose()
    settled = time.monotonic()
    answered = [i for ids in hammer.launches.values() for i in ids]
    assert set(answered) <= set(rows), "an answered instance is gone"
    assert all(n == 2 for n in tokens.values()), f"a ClientToken launched twice: {tokens}"
    items = describe(ec2, list(rows))
    for iid, item in items.items():
        if item["State"]["Name"] == "terminated":
            assert item["StateReason"]["Code"], iid

    found = offenders(cluster.database_url)
    assert not found, f"half-created resources: {found}"
    sizes = counts(cluster.database_url)
    ok = Counter(o.action for o in outcomes if o.ok)
    print(
        f"{len(outcomes)} requests ({dict(ok)} answered; failed {dict(failed)}), {len(killed)} workers "
        f"killed ({killed}); database: {sizes}, {len(rows)} instances of which {len(rows) - len(answered)} "
        f"never answered (their worker died), all settled {settled - burst:.1f} s after the burst; "
        f"no orphans; test body {time.monotonic() - t0:.1f} s"
    )
