"""PostgreSQL stopped and started again under a real multi-process cluster
(``ocs-manage devcluster``: ocs-api under gunicorn with 2 workers, 2 schedulers,
ocs-network, 2 fake compute hosts) whose database server is a private PostgreSQL of
the test's own (:mod:`tests.framework.outages`; the machine's server is never
touched), on the machine's RabbitMQ.

Proves: while the database is down the API answers every request with EC2's server error
``Unavailable`` (503, EC2's XML; clients retry it), never an InternalError,
each within its timeout, never a hang; once the server is back, with no process
restarted (same PIDs, gunicorn's workers included), DescribeInstances works at once,
the instance launched before the outage is still there and running, the compute
hosts are up again and a new launch runs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.framework.devcluster import DevCluster, dev_cluster
from tests.framework.outages import PrivatePostgres
from tests.integration.cluster.faults import (
    SERVER_FAULTS,
    Outcome,
    attempt,
    demo_image,
    ec2_client,
    pids,
    require_private,
    wait_states,
)

ZONE = "us-east-1a"
#: What a client waits for an answer; the API must answer well within it.
READ_TIMEOUT = 20.0
ANSWER_WITHIN = 10.0
OUTAGE = 8.0
RECOVER_WITHIN = 15.0  # seconds after the server is back until DescribeInstances answers

CONFIG = f"""
[compute]
heartbeat_interval = 1
availability_zone = {ZONE}
fake_boot_delay = 0.5

[scheduler]
service_down_time = 30
periodic_interval = 1

[api]
throttling = false
"""


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    require_private("postgres")
    with PrivatePostgres() as server:
        print(f"private PostgreSQL on port {server.port} up in {server.start():.1f} s")
        try:
            yield server
        finally:
            print(server.log_tail())


@pytest.fixture
def cluster(tmp_path: Path, postgres: PrivatePostgres) -> Iterator[DevCluster]:
    started = time.monotonic()
    with dev_cluster(
        tmp_path / "dc", "--hosts", "2", "--schedulers", "2", "--api-workers", "2",
        config_text=CONFIG, postgres_url=postgres.url(),
    ) as c:  # fmt: skip
        print(f"dev cluster up in {time.monotonic() - started:.1f} s")
        try:
            yield c
        finally:
            print(c.log_tails(40))


@pytest.mark.slow
def test_postgres_restart(cluster: DevCluster, postgres: PrivatePostgres) -> None:
    t0 = time.monotonic()
    image = demo_image(cluster)
    ec2 = ec2_client(cluster, READ_TIMEOUT)
    old = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    old_id = old["Instances"][0]["InstanceId"]
    assert wait_states(ec2, [old_id], time.monotonic() + 30) == {old_id: "running"}
    before = pids(cluster)

    stop_took = postgres.stop()
    down_at = time.monotonic()
    during: list[Outcome] = []
    while time.monotonic() - down_at < OUTAGE:
        during.append(attempt("DescribeInstances", lambda: ec2.describe_instances(InstanceIds=[old_id])))
        during.append(
            attempt(
                "RunInstances",
                lambda: ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1),
            )
        )
        during.append(attempt("DescribeImages", lambda: ec2.describe_images(Owners=["self"])))
    start_took = postgres.start()
    up_at = time.monotonic()

    # EC2's answer to a server that cannot serve now (503 Unavailable), which SDKs retry
    wrong = [t for t in during if t.ok or (t.status, t.code) != (503, "Unavailable")]
    assert not wrong, f"answers while the database was down that are not EC2 server errors: {wrong}"
    slow = [t for t in during if t.took > ANSWER_WITHIN]
    assert not slow, f"answers slower than {ANSWER_WITHIN} s: {slow}"

    while True:
        out = attempt("DescribeInstances", lambda: ec2.describe_instances(InstanceIds=[old_id]))
        if out.ok:
            break
        assert out.status >= 500 and out.code in SERVER_FAULTS, out
        assert time.monotonic() - up_at < RECOVER_WITHIN, f"the API did not recover: {out}"
        time.sleep(0.2)
    recovered = time.monotonic()
    items = [i for r in out.value["Reservations"] for i in r["Instances"]]
    assert [(i["InstanceId"], i["State"]["Name"]) for i in items] == [(old_id, "running")]

    after = pids(cluster)
    assert after == before, f"processes changed: {before} -> {after}"
    new = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    new_id = new["Instances"][0]["InstanceId"]
    assert wait_states(ec2, [new_id], time.monotonic() + 30) == {new_id: "running"}
    deadline = time.monotonic() + 15
    while True:
        hosts = cluster.status()["hosts"]
        if all(h["up"] for h in hosts):
            break
        assert time.monotonic() < deadline, hosts
        time.sleep(0.5)

    print(
        f"{len(during)} requests while the database was down: "
        f"{dict(Counter((t.action, t.status, t.code) for t in during))}; slowest "
        f"{max(t.took for t in during):.2f} s; server stop {stop_took:.2f} s, down {up_at - down_at:.1f} s, "
        f"start {start_took:.2f} s; the API answered again {recovered - up_at:.2f} s after the start; "
        f"test body {time.monotonic() - t0:.1f} s"
    )
