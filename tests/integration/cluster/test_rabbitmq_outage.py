"""RabbitMQ stopped and started again during a RunInstances burst, on a real
multi-process cluster (``ocs-manage devcluster``: ocs-api under gunicorn with 2
workers, 2 schedulers, ocs-network, 3 fake compute hosts) whose broker is a private
RabbitMQ node of the test's own (:mod:`tests.framework.outages`; the machine's
broker is never touched), on the machine's PostgreSQL.

Proves: every RunInstances that succeeded (its client retrying with its ClientToken,
as the SDKs do) has its instances end ``running``, none stays pending past the
deadline; the database holds exactly the instances the API returned (nothing doubled,
nothing orphaned by a failed call); a request during the outage got an EC2 server
error (5xx) or its answer, never a hang past its timeout; and every process of the
cluster recovered by itself (same PIDs, gunicorn's workers included) and serves a
new launch.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.framework.devcluster import DevCluster, dev_cluster
from tests.framework.outages import PrivateRabbit
from tests.integration.cluster.faults import (
    SERVER_FAULTS,
    Burst,
    demo_image,
    ec2_client,
    instance_rows,
    pids,
    require_private,
    wait_states,
)

ZONE = "us-east-1a"
HOSTS = 3
#: The scheduler call of RunInstances times out after 30 s (SchedulerApi); a request
#: must be answered within that and some slack.
API_TIMEOUT = 30.0
READ_TIMEOUT = API_TIMEOUT + 15
OUTAGE = 3.0  # seconds the node stays stopped (its stop and start add to the outage)
BUILD_TIMEOUT = 60
PENDING_DEADLINE = 45.0  # after the broker is back and the burst is over

CONFIG = f"""
[compute]
heartbeat_interval = 1
availability_zone = {ZONE}
fake_boot_delay = 0.5
# room for the whole burst: the fake hosts do not overcommit (see fake_vcpus)
fake_vcpus = 512

[scheduler]
service_down_time = 30
periodic_interval = 1
build_timeout = {BUILD_TIMEOUT}
# launches answered without a placement (a reply lost with the broker) are placed by then
orphan_timeout = 35

[bus]
reconnect_interval = 0.5

[api]
throttling = false
"""


@pytest.fixture
def rabbit() -> Iterator[PrivateRabbit]:
    require_private("rabbitmq")
    with PrivateRabbit() as node:
        print(f"private RabbitMQ node {node.node} up in {node.start():.1f} s")
        try:
            yield node
        finally:
            print(node.log_tail())


@pytest.fixture
def cluster(tmp_path: Path, rabbit: PrivateRabbit) -> Iterator[DevCluster]:
    started = time.monotonic()
    with dev_cluster(
        tmp_path / "dc",
        "--hosts", str(HOSTS), "--schedulers", "2", "--api-workers", "2",
        config_text=CONFIG, transport_url=rabbit.url,
    ) as c:  # fmt: skip
        print(f"dev cluster up in {time.monotonic() - started:.1f} s")
        try:
            yield c
        finally:
            print(c.log_tails(40))


@pytest.mark.slow
def test_rabbitmq_restart_during_a_burst(cluster: DevCluster, rabbit: PrivateRabbit) -> None:
    t0 = time.monotonic()
    cluster.manage("quota", "set", "admin", "--instances", "400", "--vcpus", "1600")
    image = demo_image(cluster)
    before = pids(cluster)
    burst = Burst(
        cluster, image, ZONE, clients=6, per_call=2, read_timeout=READ_TIMEOUT, give_up=API_TIMEOUT * 3
    )
    burst.start()
    time.sleep(3)
    assert any(t.ok for t in burst.tries), f"nothing launched before the outage: {burst.tries}"
    down_at = time.monotonic()
    stop_took = rabbit.stop()
    time.sleep(OUTAGE)
    start_took = rabbit.start()
    up_at = time.monotonic()
    time.sleep(5)  # the burst goes on after the broker is back
    burst.stop(timeout=READ_TIMEOUT * 2)
    burst_done = time.monotonic()

    tries = burst.tries
    # every request was answered within its timeout: a result, or an EC2 server error
    slow = [t for t in tries if t.took > API_TIMEOUT + 5]
    assert not slow, f"answers past the API's timeout: {slow}"
    bad = [t for t in tries if not t.ok and not (t.status >= 500 and t.code in SERVER_FAULTS)]
    assert not bad, f"failures that are not EC2 server errors: {bad}"
    during = [t for t in tries if t.began < up_at and t.ended > down_at]
    assert during, "no request overlapped the outage: the test proved nothing"
    unfinished = [launch for launch in burst.launches if not launch.ids]
    assert not unfinished, f"launches that never succeeded on retry: {unfinished}"

    returned = [i for launch in burst.launches for i in launch.ids]
    assert len(returned) == len(set(returned))
    ec2 = ec2_client(cluster, READ_TIMEOUT)
    states = wait_states(ec2, returned, burst_done + PENDING_DEADLINE)
    settled = time.monotonic()
    not_running = {i: s for i, s in states.items() if s != "running"}
    assert len(states) == len(returned) and not not_running, (
        f"{len(returned) - len(states)} lost, not running {PENDING_DEADLINE} s after the burst: {not_running}"
    )
    rows = instance_rows(cluster.database_url)
    extra = {i: r for i, r in rows.items() if i not in set(returned)}
    assert not extra, f"instances in the database that no successful RunInstances returned: {extra}"

    # recovered by itself: the same processes (workers too), and a new launch runs
    after = pids(cluster)
    assert after == before, f"processes changed: {before} -> {after}"
    new = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    new_id = new["Instances"][0]["InstanceId"]
    assert wait_states(ec2, [new_id], time.monotonic() + 30) == {new_id: "running"}
    status = cluster.status()
    assert all(h["up"] for h in status["hosts"]), status["hosts"]

    failed = [t for t in tries if not t.ok]
    print(
        f"{len(burst.launches)} launches ({len(returned)} instances, all running), {len(tries)} requests, "
        f"{len(failed)} failed {dict(Counter((t.status, t.code) for t in failed))}, "
        f"{len(during)} during the outage; slowest answer {max(t.took for t in tries):.1f} s; "
        f"broker stop {stop_took:.1f} s + down {OUTAGE:g} s + start {start_took:.1f} s = "
        f"outage {up_at - down_at:.1f} s; settled {settled - burst_done:.1f} s after the burst; "
        f"test body {time.monotonic() - t0:.1f} s"
    )
